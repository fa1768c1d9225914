package replica

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/raftnode/memnet"
	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/internal/storage"
)

// cluster is three replica managers over an in-memory network, each
// hosting one partition with replicas 1, 2 and 3.
type cluster struct {
	t     *testing.T
	hub   *memnet.Hub
	nodes map[uint64]*node
	parts map[uint64]*Partition
}

var clusterTP = TopicPartition{"t", 0}

func newCluster(t *testing.T, cfg Config, s Settings) *cluster {
	t.Helper()
	c := &cluster{t: t, hub: memnet.New(), nodes: map[uint64]*node{}, parts: map[uint64]*Partition{}}
	for id := uint64(1); id <= 3; id++ {
		st, err := storage.Open(t.TempDir(), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		host := raftnode.NewHost(raftnode.Config{NodeID: id, TickInterval: 10 * time.Millisecond, ElectionTicks: 10}, c.hub.Transport(id))
		c.hub.Attach(id, host)
		ns := s
		ns.NodeID = id
		mgr := NewManager(ns, st, host, slog.New(slog.DiscardHandler), nil)
		c.nodes[id] = &node{st, host, mgr}
		p, err := mgr.Open(clusterTP, Identity{TopicID: [16]byte{1}, Group: 100}, []uint64{1, 2, 3}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.parts[id] = p
	}
	t.Cleanup(func() {
		for id, n := range c.nodes {
			c.hub.Detach(id)
			n.stop()
		}
	})
	return c
}

// leader waits for a ready leader among the nodes not excluded.
func (c *cluster) leader(excluded ...uint64) *Partition {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for id := uint64(1); id <= 3; id++ {
			skip := false
			for _, x := range excluded {
				skip = skip || x == id
			}
			if p := c.nodes[id].mgr.Get(clusterTP); !skip && p.CheckLeader() == nil {
				return p
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("no ready leader")
	return nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func produceAsync(p *Partition, b []byte, acks int16) chan ProduceResult {
	ch := make(chan ProduceResult, 1)
	p.Produce(b, acks, 10*time.Second, func(r ProduceResult) { ch <- r })
	return ch
}

// TestAcksAllWaitsForMinInsyncReplicas: with min.insync.replicas 3 of 3, an
// acks=all batch committed by a raft quorum (two) is not answered until
// the third replica has it too; if that replica leaves the ISR instead,
// the batch fails with NOT_ENOUGH_REPLICAS_AFTER_APPEND, and the next ones
// are refused with NOT_ENOUGH_REPLICAS at once, as in Kafka.
func TestAcksAllWaitsForMinInsyncReplicas(t *testing.T) {
	cfg := testConfig()
	cfg.MinInsyncReplicas = 3
	const lagMax = 300 * time.Millisecond
	c := newCluster(t, cfg, Settings{LagMax: lagMax})
	lead := c.leader()
	waitUntil(t, "a full ISR", func() bool { return len(lead.View().ISR) == 3 })
	if r := produce(lead, batch(-1, -1, -1, 1), -1); r.Err != nil {
		t.Fatalf("acks=all with every replica in sync: %v", r.Err)
	}
	var slow uint64
	for _, id := range []uint64{1, 2, 3} {
		if id != lead.View().Leader {
			slow = id
			break
		}
	}
	// The slow replica stops receiving appends (heartbeats still flow).
	c.hub.Drop(func(e raftnode.Envelope) bool { return e.Msg.To == slow && e.Msg.Type == raftpb.MsgApp })
	res := produceAsync(lead, batch(-1, -1, -1, 1), -1)
	waitUntil(t, "the batch to commit on a quorum", func() bool { return lead.Log().HighWatermark() == 2 })
	// The answer comes once the slow replica leaves the ISR, which it does
	// only after LagMax without catching up: an answer sooner came while
	// it was in sync and lacked the batch. (The time is taken from the
	// leader's own record of when the replica last caught up, not from a
	// fixed wait, which a slow machine could outlast.)
	r := <-res
	answered := time.Now()
	var caughtUp time.Time
	for _, f := range lead.View().Followers {
		if f.ID == slow {
			caughtUp = f.CaughtUp
		}
	}
	if lagged := answered.Sub(caughtUp); lagged < lagMax {
		t.Fatalf("answered %+v when replica %d had lagged only %v, while it was one of the 3 in sync min.insync.replicas asks for", r, slow, lagged)
	}
	if !errors.Is(r.Err, kerr.NotEnoughReplicasAfterAppend) {
		t.Fatalf("after the ISR shrank: %v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", r.Err)
	}
	if r := produce(lead, batch(-1, -1, -1, 1), -1); !errors.Is(r.Err, kerr.NotEnoughReplicas) {
		t.Fatalf("with 2 of 3 in sync: %v, want NOT_ENOUGH_REPLICAS", r.Err)
	}
	c.hub.Drop(nil)
	waitUntil(t, "the slow replica back in the ISR", func() bool { return len(lead.View().ISR) == 3 })
	if r := produce(lead, batch(-1, -1, -1, 1), -1); r.Err != nil {
		t.Fatalf("acks=all after the heal: %v", r.Err)
	}
}

// TestNewLeaderISRHoldsOnlyCaughtUpReplicas: a new leader's ISR never
// names a replica it has not seen catch up; a dead one stays out.
func TestNewLeaderISRHoldsOnlyCaughtUpReplicas(t *testing.T) {
	cfg := testConfig()
	cfg.MinInsyncReplicas = 2
	c := newCluster(t, cfg, Settings{})
	old := c.leader()
	oldID := old.View().Leader
	if r := produce(old, batch(-1, -1, -1, 1), -1); r.Err != nil {
		t.Fatalf("%v (ISR %v)", r.Err, old.View().ISR)
	}
	var dead uint64
	for _, id := range []uint64{1, 2, 3} {
		if id != oldID {
			dead = id
			break
		}
	}
	c.hub.Cut(dead, true)
	// Leadership moves to the third node.
	third := 6 - oldID - dead
	old.group.Do(func(l raftnode.Loop) { l.TransferLeader(third) })
	lead := c.leader(oldID, dead)
	if lead.View().Leader != third {
		t.Fatalf("leader %d, want %d", lead.View().Leader, third)
	}
	for _, id := range lead.View().ISR {
		if id == dead {
			t.Fatalf("the new leader's ISR %v holds replica %d, which it never heard from", lead.View().ISR, dead)
		}
	}
	waitUntil(t, "the old leader to rejoin the ISR", func() bool { return len(lead.View().ISR) == 2 })
	if r := produce(lead, batch(-1, -1, -1, 1), -1); r.Err != nil {
		t.Fatalf("acks=all with 2 of 3 in sync (min 2): %v", r.Err)
	}
}

// TestAbandonedProducesOnLostLeadership: a leader cut off from its
// followers loses leadership; its acks=all produce never commits there and
// is answered NOT_LEADER_OR_FOLLOWER when it steps down, and raft replaces
// the entry: it is in no replica's committed log.
func TestAbandonedProducesOnLostLeadership(t *testing.T) {
	c := newCluster(t, testConfig(), Settings{})
	old := c.leader()
	oldID := old.View().Leader
	c.hub.Cut(oldID, true)
	res := produceAsync(old, batch(-1, -1, -1, 1), -1)
	lead := c.leader(oldID)
	if r := produce(lead, batch(-1, -1, -1, 1), -1); r.Err != nil {
		t.Fatal(r.Err)
	}
	c.hub.Cut(oldID, false)
	r := <-res
	if !errors.Is(r.Err, kerr.NotLeaderForPartition) {
		t.Fatalf("the cut-off leader answered %+v, want NOT_LEADER_OR_FOLLOWER", r)
	}
	// Every replica, the third too, must have learnt the new leader's
	// commit before its committed log is read.
	waitUntil(t, "every replica to hold the new leader's log", func() bool {
		for _, p := range c.parts {
			if p.Log().HighWatermark() != lead.Log().HighWatermark() || p.Log().LastIndex() != lead.Log().LastIndex() {
				return false
			}
		}
		return true
	})
	for id, p := range c.parts {
		res, err := c.nodes[id].mgr.Get(clusterTP).Log().Read(0, 1<<20, p.Log().HighWatermark(), true)
		if err != nil {
			t.Fatal(err)
		}
		if res.Count != 1 {
			t.Fatalf("node %d holds %d committed batches, want only the new leader's", id, res.Count)
		}
	}
}

// TestMinInsyncCappedAtReplicas: a topic whose min.insync.replicas is
// larger than its replication factor is not a trap: acks=all works.
func TestMinInsyncCappedAtReplicas(t *testing.T) {
	n := startNode(t, t.TempDir())
	defer n.stop()
	cfg := testConfig()
	cfg.MinInsyncReplicas = 2
	p, err := n.mgr.Open(TopicPartition{"rf1", 0}, Identity{TopicID: [16]byte{9}, Group: 9}, []uint64{1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "leader", func() bool { return p.CheckLeader() == nil })
	if r := produce(p, batch(-1, -1, -1, 1), -1); r.Err != nil {
		t.Fatalf("acks=all on a 1-replica topic with min.insync.replicas 2: %v", r.Err)
	}
}

// TestIdleProducersExpire: kafka.producer_id_expiration_ms drops the
// state of a producer idle that long; its next batch is judged as from a
// producer never seen (sequence 0 only).
func TestIdleProducersExpire(t *testing.T) {
	st, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host := raftnode.NewHost(raftnode.Config{NodeID: 1, TickInterval: 10 * time.Millisecond}, nil)
	mgr := NewManager(Settings{NodeID: 1, ProducerIDExpiration: 300 * time.Millisecond}, st, host, slog.New(slog.DiscardHandler), nil)
	n := &node{st, host, mgr}
	defer n.stop()
	p := openReady(t, n)
	if r := produce(p, batch(7, 0, 0, 2), -1); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := produce(p, batch(7, 0, 2, 1), -1); r.Err != nil {
		t.Fatalf("the producer's next batch: %v", r.Err)
	}
	waitUntil(t, "the idle producer to expire", func() bool { return p.View().Producers == 0 })
	if r := produce(p, batch(7, 0, 3, 1), -1); !errors.Is(r.Err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("a batch continuing an expired producer's sequence: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", r.Err)
	}
	if r := produce(p, batch(7, 0, 0, 1), -1); r.Err != nil {
		t.Fatalf("the expired producer starting afresh: %v", r.Err)
	}
}

// TestProducerStateSavedAcrossRestarts: a replica stopped cleanly saves its
// producer table, and opening it again replays only what came after (here
// a damaged early segment, which a full read would stop at, does not keep
// it from opening); the producers' dedupe state survives. The background
// scrub still finds the damage and reports it.
func TestProducerStateSavedAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	cfg := testConfig()
	cfg.Log.SegmentBytes = 2048
	tp, id := TopicPartition{"p", 0}, Identity{TopicID: [16]byte{5}, Group: 5}
	p, err := n.mgr.Open(tp, id, []uint64{1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "leader", func() bool { return p.CheckLeader() == nil })
	var last ProduceResult
	for seq := range int32(50) {
		if last = produce(p, batch(5, 0, seq, 1), -1); last.Err != nil {
			t.Fatal(last.Err)
		}
	}
	if p.Log().SegmentCount() < 3 {
		t.Fatalf("%d segments, want several", p.Log().SegmentCount())
	}
	first := filepath.Join(p.Log().Dir(), fmt.Sprintf("%020d.log", 1))
	n.stop()

	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(first, b, 0o644); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, dir)
	defer n.stop()
	if p, err = n.mgr.Open(tp, id, []uint64{1}, cfg); err != nil {
		t.Fatalf("reopen read the whole log (and met the damage) instead of the saved producer state: %v", err)
	}
	waitUntil(t, "leader", func() bool { return p.CheckLeader() == nil })
	if r := produce(p, batch(5, 0, 49, 1), -1); r.Err != nil || r.BaseOffset != last.BaseOffset {
		t.Fatalf("retry of the last batch after the restart: %+v, want its original offset %d", r, last.BaseOffset)
	}
	if r := produce(p, batch(5, 0, 50, 1), -1); r.Err != nil {
		t.Fatalf("the producer's next batch after the restart: %v", r.Err)
	}
	waitUntil(t, "the scrub to find the damage", func() bool { return p.Damaged() > 0 })
}

// TestUncommittedBudgetPushesBack: a leader whose batches do not commit
// (its followers get no appends) takes at most the node's budget of
// uncommitted bytes; a produce beyond it waits and times out instead of
// growing the node's memory, and commits give the budget back.
func TestUncommittedBudgetPushesBack(t *testing.T) {
	const limit = 64 << 10
	c := newCluster(t, testConfig(), Settings{MaxUncommittedBytes: limit})
	lead := c.leader()
	mgr := c.nodes[lead.View().Leader].mgr
	c.hub.Drop(func(e raftnode.Envelope) bool { return e.Msg.Type == raftpb.MsgApp })
	value := make([]byte, 8<<10)
	big := func() []byte {
		return recordbatchOf(value)
	}
	n := 0
	for mgr.BudgetStats().Used+int64(len(big())) <= limit {
		ch := make(chan ProduceResult, 1)
		lead.Produce(big(), 1, time.Second, func(r ProduceResult) { ch <- r })
		if r := <-ch; r.Err != nil {
			t.Fatalf("produce %d within the budget: %v", n, r.Err)
		}
		n++
	}
	ch := make(chan ProduceResult, 1)
	lead.Produce(big(), 1, 200*time.Millisecond, func(r ProduceResult) { ch <- r })
	if r := <-ch; !errors.Is(r.Err, kerr.RequestTimedOut) {
		t.Fatalf("a produce beyond the budget (%d bytes used of %d): %v, want REQUEST_TIMED_OUT", mgr.BudgetStats().Used, limit, r.Err)
	}
	if st := mgr.BudgetStats(); st.Used > limit || st.Waits == 0 {
		t.Fatalf("budget %+v", st)
	}
	c.hub.Drop(nil)
	waitUntil(t, "the budget back once the batches commit", func() bool { return mgr.BudgetStats().Used == 0 })
	if r := produce(lead, big(), -1); r.Err != nil {
		t.Fatalf("produce after the commits: %v", r.Err)
	}
}

func recordbatchOf(value []byte) []byte {
	return recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Value: value}}})
}

// TestReadOfDamageMovesLeadership damages the leader's log under entries
// a consumer then reads: the read fails with KAFKA_STORAGE_ERROR, and the
// leader stops so that another replica leads and serves every record;
// reopened, the damaged replica refetches what it lost. A read that only
// failed left the partition led by the damaged replica, and consumers
// stuck at the damage until the next restart or scrub.
func TestReadOfDamageMovesLeadership(t *testing.T) {
	cfg := testConfig()
	cfg.Log.SegmentBytes = 2048
	// The scrub would find the damage too; here only the read may.
	c := newCluster(t, cfg, Settings{ScrubStart: time.Hour})
	lead := c.leader()
	const records = 30
	for range records {
		if r := produce(lead, batch(-1, -1, -1, 1), -1); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	damaged := lead.View().Leader
	seg := filepath.Join(lead.Log().Dir(), fmt.Sprintf("%020d.log", 1))
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("DAMAGE"), 1024); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// count reads every record through read, checking each batch.
	count := func(read func(off int64) ([]byte, int64, error)) (int, error) {
		n := 0
		for off := int64(0); off < records; {
			batches, next, err := read(off)
			if err != nil {
				return n, err
			}
			for b := batches; len(b) > 0; {
				size := recordbatch.Size(b)
				if size < 0 || size > len(b) {
					return n, fmt.Errorf("a batch cut short at offset %d", off)
				}
				h, err := recordbatch.Validate(b[:size])
				if err != nil {
					return n, err
				}
				n += int(h.LastOffsetDelta) + 1
				b = b[size:]
			}
			off = next
		}
		return n, nil
	}
	fetch := func(p *Partition) func(int64) ([]byte, int64, error) {
		return func(off int64) ([]byte, int64, error) {
			res, err := p.Fetch(off, 1<<20, true)
			return res.Batches, res.NextOffset, err
		}
	}
	// The read stops before the damaged batch; the next one starts at it.
	if n, err := count(fetch(lead)); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("a read through the damaged entries: %d records, then %v; want KAFKA_STORAGE_ERROR", n, err)
	}
	next := c.leader(damaged)
	if n, err := count(fetch(next)); err != nil || n != records {
		t.Fatalf("the new leader served %d records (%v), want %d", n, err, records)
	}
	waitUntil(t, "the damaged replica to be reopened and repaired", func() bool {
		p := c.nodes[damaged].mgr.Get(clusterTP)
		if p.View().Failed != nil || p.Log().HighWatermark() < records {
			return false
		}
		n, err := count(func(off int64) ([]byte, int64, error) {
			res, err := p.Log().Read(off, 1<<20, records, true)
			return res.Batches, res.NextOffset, err
		})
		return err == nil && n == records
	})
}
