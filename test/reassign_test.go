package test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// TestPartitionReassignment moves a partition's replicas with Kafka's
// AlterPartitionReassignments (franz-go's kadm) while an idempotent
// producer writes to it: first off its leader onto the node that had no
// replica, then, after DeleteRecords dropped the log's start, to two
// replicas one of which is the old leader again (it rejoins empty, from a
// snapshot of the log's start, and votes only once it holds it). Then a move to a stopped node, which
// cannot finish, is cancelled. Throughout, every acknowledged record stays
// readable exactly once, and nodes that lose the partition remove it.
func TestPartitionReassignment(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 4})
	c.Start()
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), smallBatches, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	const topic = "moves"
	ctx := harness.Context(t, 4*time.Minute)
	seg := "4096"
	if res, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"segment.bytes": &seg}, topic); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	lead := int32(waitAdminFullISR(t, c, topic, 0))
	replicas := partitionReplicas(t, adm, topic, 0)
	var outside int32
	for id := int32(1); id <= 4; id++ {
		if !slices.Contains(replicas, id) {
			outside = id
		}
	}

	// An idempotent producer writes throughout; what it was told is
	// written must be there at the end, once.
	w := startWriter(t, ctx, cl, topic, 1)
	w.waitFor(t, 300)

	// 1: off the leader, onto the node without a replica.
	target1 := []int32{outside}
	for _, id := range replicas {
		if id != lead {
			target1 = append(target1, id)
		}
	}
	reassign(t, adm, topic, 0, target1)
	waitReassigned(t, c, adm, topic, 0, target1)
	if !c.Node(int(lead)).WaitLogContains("removing replica of a partition deleted or moved off this node", 30*time.Second) {
		t.Fatalf("node %d kept its replica after leaving the partition", lead)
	}

	// DeleteRecords moves the log's start past the first reassignment's
	// entries; the old leader then rejoins with an empty log.
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	start := end.Offset - 50
	if dr, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: start}}}); err != nil || dr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, dr)
	}
	w.waitFor(t, 200)
	// 2: two replicas (the replication factor changes), the old leader
	// first, so it is the preferred leader.
	target2 := []int32{lead, outside}
	reassign(t, adm, topic, 0, target2)
	waitReassigned(t, c, adm, topic, 0, target2)
	if !c.Node(int(lead)).LogContains("restarted the log from the leader's snapshot") {
		t.Errorf("node %d rejoined without a snapshot of the log's start", lead)
	}
	// It was a voter of the group's first configuration: it stays out of
	// elections until it holds what the leader committed.
	if !c.Node(int(lead)).LogContains("caught up with the group it joined") {
		t.Errorf("node %d rejoined without catching up before it could vote", lead)
	}

	// 3: a move to a stopped node cannot finish; it is cancelled.
	var down int32
	for id := int32(1); id <= 4; id++ {
		if !slices.Contains(target2, id) {
			down = id
			break
		}
	}
	if err := c.Node(int(down)).Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	target3 := append(slices.Clone(target2), down)
	reassign(t, adm, topic, 0, target3)
	lr, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := lr[topic][0]; !ok || !slices.Equal(p.AddingReplicas, []int32{down}) || !slices.Equal(p.Replicas, target3) {
		t.Fatalf("listed reassignment %+v, want replicas %v adding [%d]", lr[topic], target3, down)
	}
	var cancel kadm.AlterPartitionAssignmentsReq
	cancel.CancelAssign(topic, 0)
	if res, err := adm.AlterPartitionAssignments(ctx, cancel); err != nil || res[topic][0].Err != nil {
		t.Fatalf("cancel: %v %v", err, res)
	}
	waitReassigned(t, c, adm, topic, 0, target2)
	// A second cancel has nothing to cancel.
	if res, err := adm.AlterPartitionAssignments(ctx, cancel); err != nil || !errors.Is(res[topic][0].Err, kerr.NoReassignmentInProgress) {
		t.Fatalf("second cancel: %v %+v", err, res)
	}
	c.Node(int(down)).Start()

	want := w.finish()[0]
	got := readFromStart(t, c.Addrs(), topic)
	if got[0].Offset != start {
		t.Fatalf("the log starts at %d, want %d", got[0].Offset, start)
	}
	seen := map[int]bool{}
	prev := -1
	for _, r := range got {
		v, err := strconv.Atoi(*r.Value)
		if err != nil || seen[v] || v <= prev {
			t.Fatalf("record at %d is %q after %d: duplicated or out of order", r.Offset, *r.Value, prev)
		}
		seen[v], prev = true, v
	}
	first, _ := strconv.Atoi(*got[0].Value)
	for _, v := range want {
		if v >= first && !seen[v] {
			t.Fatalf("acknowledged record %d is missing (%d records from %d)", v, len(got), first)
		}
	}
	// Every replica has it all; nodes without the partition hold no log.
	l := int32(-1)
	harness.WaitFor(t, "a leader", 30*time.Second, func() error {
		var err error
		l, err = partitionLeader(t, c, topic, 0)
		return err
	})
	for _, id := range target2 {
		if id != l {
			waitCaughtUp(t, c.Node(int(l)), c.Node(int(id)), topic)
		}
	}
	for id := int32(1); id <= 4; id++ {
		if slices.Contains(target2, id) {
			continue
		}
		n := c.Node(int(id))
		harness.WaitFor(t, fmt.Sprintf("node %d to hold no log of %s", id, topic), 30*time.Second, func() error {
			if _, err := partitionOn(n, topic, 0); err == nil {
				return fmt.Errorf("it hosts a replica")
			}
			matches, _ := filepath.Glob(filepath.Join(n.DataDir, "kafka", topic, "*"))
			if len(matches) > 0 {
				return fmt.Errorf("its data directory has %v", matches)
			}
			return nil
		})
	}
}

func partitionReplicas(t *testing.T, adm *kadm.Client, topic string, p int32) []int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return md.Topics[topic].Partitions[p].Replicas
}

func reassign(t *testing.T, adm *kadm.Client, topic string, p int32, replicas []int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, p, replicas)
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err == nil {
		err = res[topic][p].Err
	}
	if err != nil {
		t.Fatalf("reassign %s/%d to %v: %v", topic, p, replicas, err)
	}
}

// waitReassigned waits until no reassignment of topic/p is listed and
// Metadata gives target as its replicas, all in sync.
func waitReassigned(t *testing.T, c *harness.Cluster, adm *kadm.Client, topic string, p int32, target []int32) {
	t.Helper()
	harness.WaitFor(t, fmt.Sprintf("%s/%d to move to %v", topic, p, target), 2*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lr, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {p: {}}})
		if err != nil {
			return err
		}
		if r, ok := lr[topic][p]; ok {
			return fmt.Errorf("in progress: replicas %v adding %v removing %v", r.Replicas, r.AddingReplicas, r.RemovingReplicas)
		}
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		pm := md.Topics[topic].Partitions[p]
		if !slices.Equal(pm.Replicas, target) || len(pm.ISR) != len(target) {
			return fmt.Errorf("replicas %v, ISR %v, leader %d", pm.Replicas, pm.ISR, pm.Leader)
		}
		l, err := partitionOn(c.Node(int(pm.Leader)), topic, p)
		if err != nil {
			return err
		}
		if len(l.Followers) != len(target)-1 {
			return fmt.Errorf("the leader has followers %v", l.Followers)
		}
		return nil
	})
}

// TestMoveSendsEachEntryOnce moves a partition of large batches (about 1
// MiB each, 200 MiB in all) to a new replica: the leader sends the new
// replica about what its log holds, not many times over. (Without a bound
// on the bytes in flight to one follower, the leader sent hundreds of MiB
// at once, the transport dropped most of it, and the leader read and sent
// it again and again: 68 GB sent in a minute for a move of 1 GB.)
//
// Throttled, an append over the budget is dropped and sent once the new
// replica shows it is missing; reporting the replica unreachable instead
// made raft send again all that was in flight (twice the bytes).
func TestMoveSendsEachEntryOnce(t *testing.T) {
	for _, throttle := range []int{0, 30 << 20} {
		t.Run(fmt.Sprintf("throttle %d MiB/s", throttle>>20), func(t *testing.T) { moveSendsEachEntryOnce(t, throttle) })
	}
}

func moveSendsEachEntryOnce(t *testing.T, throttle int) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 4,
		ExtraConfig: fmt.Sprintf("[cluster.rebalance]\nenabled = false\nthrottle_bytes_per_sec = %d\n", throttle)})
	c.Start()
	const topic = "big"
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerLinger(50*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
	createTopic(t, cl, topic, 1, 3)
	adm := kadm.NewClient(cl)
	replicas := partitionReplicas(t, adm, topic, 0)
	value := make([]byte, 100<<10)
	rand.Read(value) // incompressible, whatever a layer might do
	ctx := harness.Context(t, 3*time.Minute)
	for range 2000 {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var outside int32
	for id := int32(1); id <= 4; id++ {
		if !slices.Contains(replicas, id) {
			outside = id
		}
	}
	target := append(slices.Clone(replicas[:2]), outside)
	reassign(t, adm, topic, 0, target)
	waitReassigned(t, c, adm, topic, 0, target)
	var sent, logBytes int64
	for _, n := range c.Nodes {
		sent += metricValue(n, "chronik_raft_learner_sent_bytes_total")
	}
	logBytes = metricValue(c.Node(int(outside)), fmt.Sprintf(`chronik_log_size_bytes{partition="0",topic="%s"}`, topic))
	t.Logf("FIGURE %s: moved a %d MiB log; the leader sent the new replica %d MiB", t.Name(), logBytes>>20, sent>>20)
	// Each entry sent once is at most about the log's size (entries the
	// replica got once a voter, the last few, are not counted; appends
	// sent before its replica opened are sent again).
	if logBytes < 150<<20 || sent > logBytes*5/4 {
		t.Fatalf("the new replica holds %d bytes; %d bytes were sent to it", logBytes, sent)
	}
}
