package replica

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/goleak"

	"github.com/chronik-stream/chronik/internal/membudget"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/internal/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type node struct {
	store *storage.Store
	host  *raftnode.Host
	mgr   *Manager
}

func startNode(t *testing.T, dir string) *node {
	t.Helper()
	st, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host := raftnode.NewHost(raftnode.Config{NodeID: 1, TickInterval: 10 * time.Millisecond}, nil)
	mgr := NewManager(Settings{NodeID: 1, ScrubStart: 100 * time.Millisecond}, st, host, slog.New(slog.DiscardHandler), nil)
	return &node{st, host, mgr}
}

func (n *node) stop() {
	n.mgr.Close()
	n.host.Stop()
	n.store.Close()
}

func testConfig() Config {
	return Config{MinInsyncReplicas: 1, MaxMessageBytes: 1 << 20, Log: storage.DefaultLogConfig()}
}

func openReady(t *testing.T, n *node) *Partition {
	t.Helper()
	p, err := n.mgr.Open(TopicPartition{"t", 0}, Identity{TopicID: [16]byte{7}, Group: 7}, []uint64{1}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.CheckLeader() != nil {
		if time.Now().After(deadline) {
			t.Fatal("partition never became a ready leader")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return p
}

func produce(p *Partition, b []byte, acks int16) ProduceResult {
	ch := make(chan ProduceResult, 1)
	p.Produce(b, acks, 10*time.Second, func(r ProduceResult) { ch <- r })
	return <-ch
}

func batch(pid int64, epoch int16, seq int32, n int) []byte {
	b := recordbatch.Batch{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}
	for range n {
		b.Records = append(b.Records, recordbatch.Record{Timestamp: time.Now().UnixMilli(), Value: []byte("v")})
	}
	return recordbatch.Build(b)
}

func TestProduceFetchAndIdempotence(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	p := openReady(t, n)
	for i, acks := range []int16{1, -1, 0, -1} {
		r := produce(p, batch(-1, -1, -1, 2), acks)
		if r.Err != nil || r.BaseOffset != int64(2*i) {
			t.Fatalf("produce %d acks=%d: %+v", i, acks, r)
		}
	}
	// Idempotent: in order is fine, a retry gets its original offset, a
	// gap or an old epoch is refused.
	if r := produce(p, batch(5, 0, 0, 3), -1); r.Err != nil || r.BaseOffset != 8 {
		t.Fatalf("first idempotent batch: %+v", r)
	}
	if r := produce(p, batch(5, 0, 3, 3), -1); r.Err != nil || r.BaseOffset != 11 {
		t.Fatalf("second idempotent batch: %+v", r)
	}
	if r := produce(p, batch(5, 0, 0, 3), -1); r.Err != nil || r.BaseOffset != 8 {
		t.Fatalf("duplicate: %+v", r)
	}
	if r := produce(p, batch(5, 0, 9, 1), -1); !errors.Is(r.Err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("gap: %+v", r)
	}
	if r := produce(p, batch(5, 1, 0, 1), -1); r.Err != nil || r.BaseOffset != 14 {
		t.Fatalf("new epoch: %+v", r)
	}
	if r := produce(p, batch(5, 0, 6, 1), -1); !errors.Is(r.Err, kerr.InvalidProducerEpoch) {
		t.Fatalf("old epoch: %+v", r)
	}
	bad := batch(-1, -1, -1, 1)
	bad[len(bad)-1] ^= 1
	if r := produce(p, bad, -1); !errors.Is(r.Err, kerr.CorruptMessage) {
		t.Fatalf("corrupt: %+v", r)
	}
	res, err := p.Fetch(0, 1<<20, true)
	if err != nil || res.HighWatermark != 15 || res.NextOffset != 15 {
		t.Fatalf("fetch: %+v %v", res, err)
	}
	// DeleteRecords moves the log start through raft.
	ch := make(chan int64, 1)
	p.DeleteRecords(4, func(off int64, err error) {
		if err != nil {
			t.Error(err)
		}
		ch <- off
	})
	if got := <-ch; got != 4 {
		t.Fatalf("delete records: low watermark %d", got)
	}
	if _, err := p.Fetch(3, 1<<20, true); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch below the log start: %v", err)
	}
	n.stop()

	// After a restart the producer table is rebuilt from the log.
	n = startNode(t, dir)
	defer n.stop()
	p = openReady(t, n)
	if r := produce(p, batch(5, 1, 0, 1), -1); r.Err != nil || r.BaseOffset != 14 {
		t.Fatalf("duplicate after restart: %+v", r)
	}
	if r := produce(p, batch(5, 1, 1, 1), -1); r.Err != nil || r.BaseOffset != 15 {
		t.Fatalf("next after restart: %+v", r)
	}
	if p.Log().LogStartOffset() != 4 {
		t.Fatalf("log start after restart %d", p.Log().LogStartOffset())
	}
}

// TestProduceDecompressesWithinTheBudget: a compacted partition reads the
// records of each produced batch within the node's decompression budget:
// a batch that fits is taken and gives the budget back, one whose records
// need more than the whole budget is refused with MESSAGE_TOO_LARGE, and
// one that cannot get room before its timeout gets REQUEST_TIMED_OUT.
func TestProduceDecompressesWithinTheBudget(t *testing.T) {
	budget := membudget.NewRequests(8<<20, 8<<20)
	st, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host := raftnode.NewHost(raftnode.Config{NodeID: 1, TickInterval: 10 * time.Millisecond}, nil)
	mgr := NewManager(Settings{NodeID: 1, ScrubStart: time.Hour, Decompress: budget}, st, host, slog.New(slog.DiscardHandler), nil)
	n := &node{st, host, mgr}
	defer n.stop()
	cfg := testConfig()
	cfg.Log.Compact = true
	p, err := mgr.Open(TopicPartition{"t", 0}, Identity{TopicID: [16]byte{7}, Group: 7}, []uint64{1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); p.CheckLeader() != nil; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("partition never became a ready leader")
		}
	}
	keyed := func(size int) []byte {
		o, err := recordbatch.Open(recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Records: []recordbatch.Record{{Key: []byte("k"), Value: make([]byte, size)}}}))
		if err != nil {
			t.Fatal(err)
		}
		b, err := o.Recompress(recordbatch.CompressionZstd)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if r := produce(p, keyed(4<<20), 1); r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("a batch of 4 MiB in a budget of 8: %+v", r)
	}
	if r := produce(p, keyed(16<<20), 1); !errors.Is(r.Err, kerr.MessageTooLarge) {
		t.Fatalf("a batch of 16 MiB in a budget of 8: %+v, want MESSAGE_TOO_LARGE", r)
	}
	if r := budget.Reserved(); r != 0 {
		t.Fatalf("%d bytes of the budget still reserved", r)
	}
	if _, err := budget.Acquire(8<<20, nil); err != nil {
		t.Fatal(err)
	}
	ch := make(chan ProduceResult, 1)
	p.Produce(keyed(4<<20), 1, 50*time.Millisecond, func(r ProduceResult) { ch <- r })
	if r := <-ch; !errors.Is(r.Err, kerr.RequestTimedOut) {
		t.Fatalf("a batch while the budget is spent: %+v, want REQUEST_TIMED_OUT", r)
	}
	budget.Release(8 << 20)
	if r := produce(p, keyed(4<<20), 1); r.Err != nil || r.BaseOffset != 1 {
		t.Fatalf("a batch once the budget is free: %+v", r)
	}
}
