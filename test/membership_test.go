package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// metadataVoters asks node n which nodes vote in the metadata group.
func metadataVoters(n *harness.Node) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := adminClient(n).Cluster(ctx)
	if err != nil {
		return nil, err
	}
	var voters []uint64
	for _, ns := range st.Nodes {
		if ns.MetadataVoter {
			voters = append(voters, ns.ID)
		}
	}
	return voters, nil
}

// TestNodesJoinARunningCluster starts a one-node cluster with a topic, and
// two more nodes whose configurations name it: they join (the first
// node's configuration never names them), the metadata group grows to
// three voters, the topic's replication factor goes from one to three by
// reassignment, and the cluster then survives the first node's death: the
// catalog keeps its quorum and the partition a leader with every record.
func TestNodesJoinARunningCluster(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 1})
	c.Start()
	const topic = "grow"
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, topic, 1, 1)
	produceN(t, cl, topic, 0, "before", 100)

	for range 2 {
		n := c.NewJoiningNode()
		n.Start()
		if !n.LogContains("joining the running cluster") {
			t.Fatalf("node %d started without joining the running cluster", n.ID)
		}
	}
	if !c.Node(1).LogContains("added a member to the metadata group as a learner") {
		t.Fatal("node 1 never added a member to the metadata group")
	}
	harness.WaitFor(t, "three metadata voters", 30*time.Second, func() error {
		for _, n := range c.Nodes {
			v, err := metadataVoters(n)
			if err != nil {
				return err
			}
			if !slices.Equal(v, []uint64{1, 2, 3}) {
				return fmt.Errorf("node %d: voters %v", n.ID, v)
			}
		}
		return nil
	})

	adm := kadm.NewClient(clusterClient(t, c))
	reassign(t, adm, topic, 0, []int32{1, 2, 3})
	waitReassigned(t, c, adm, topic, 0, []int32{1, 2, 3})
	produceN(t, cl, topic, 0, "grown", 100)

	c.Node(1).Kill()
	// The catalog changes without node 1: two of its three voters remain.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	survivors := kadm.NewClient(franzClient(t, c.Node(2).Addr(), kgo.RetryTimeout(30*time.Second)))
	harness.WaitFor(t, "a topic created without node 1", time.Minute, func() error {
		res, err := survivors.CreateTopic(ctx, 1, 2, nil, "after")
		if err == nil && res.Err != nil && !errors.Is(res.Err, kerr.TopicAlreadyExists) {
			err = res.Err
		}
		return err
	})
	got := readFromStart(t, []string{c.Node(2).Addr(), c.Node(3).Addr()}, topic)
	if len(got) != 200 || *got[0].Value != "before-0" || *got[199].Value != "grown-99" {
		t.Fatalf("after node 1 died the partition serves %d records", len(got))
	}

	// A joined node restarts as a member (its catalog is on its disk).
	if err := c.Node(2).Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.Node(1).Start()
	c.Node(2).Start()
	if c.Node(2).LogContains("joining the running cluster") {
		t.Fatal("node 2 joined again after a restart")
	}
}

// writer produces to every partition of a topic in turn, one record at a
// time, and keeps what was acknowledged.
type writer struct {
	mu    sync.Mutex
	acked map[int32][]int // values acknowledged, by partition
	n     int
	stop  chan struct{}
	done  chan struct{}
}

// startWriter writes "<i>" records to partitions 0..partitions-1 of topic
// with cl (which must use the manual partitioner) until stopped; a
// produce error that franz-go gave up on fails the test.
func startWriter(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions int32) *writer {
	w := &writer{acked: map[int32][]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			p := int32(i) % partitions
			r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(strconv.Itoa(i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				if ctx.Err() == nil {
					t.Errorf("produce %d to partition %d: %v", i, p, err)
				}
				return
			}
			w.mu.Lock()
			w.acked[p] = append(w.acked[p], i)
			w.n++
			w.mu.Unlock()
		}
	}()
	return w
}

// count returns how many records were acknowledged.
func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// waitFor waits until n more records are acknowledged.
func (w *writer) waitFor(t *testing.T, n int) {
	t.Helper()
	base := w.count()
	harness.WaitFor(t, fmt.Sprintf("%d more acknowledged writes", n), time.Minute, func() error {
		if got := w.count() - base; got < n {
			return fmt.Errorf("%d", got)
		}
		return nil
	})
}

// finish stops the writer and returns what was acknowledged.
func (w *writer) finish() map[int32][]int {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

// checkWritten reads every partition from its start and checks that each
// acknowledged record is there exactly once, in order, and nothing else is.
func checkWritten(t *testing.T, addrs []string, topic string, acked map[int32][]int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[int32][]int{}
	total, want := 0, 0
	for _, a := range acked {
		want += len(a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for total < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d acknowledged records", total, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v, err := strconv.Atoi(string(r.Value))
			if err != nil {
				t.Fatalf("record %q at %d/%d", r.Value, r.Partition, r.Offset)
			}
			got[r.Partition] = append(got[r.Partition], v)
			total++
		})
	}
	for p, a := range acked {
		g := got[p]
		// A record whose acknowledgement was lost (the producer gave up)
		// may be there without being in acked; none is duplicated.
		j := 0
		for _, v := range g {
			if j < len(a) && v == a[j] {
				j++
			}
		}
		if j != len(a) {
			t.Fatalf("partition %d: %d of %d acknowledged records read in order (read %d)", p, j, len(a), len(g))
		}
		if !slices.IsSorted(g) || len(slices.Compact(slices.Clone(g))) != len(g) {
			t.Fatalf("partition %d: records out of order or duplicated", p)
		}
	}
}

// writtenCluster starts a cluster of nodes with topic (partitions, three
// replicas each) led, and a writer producing to it.
func writtenCluster(t *testing.T, nodes int, topic string, partitions int32) (*harness.Cluster, context.Context, *kadm.Client, *writer) {
	t.Helper()
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: nodes})
	c.Start()
	ctx := harness.Context(t, 5*time.Minute)
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, topic, partitions, 3)
	adm := kadm.NewClient(clusterClient(t, c))
	harness.WaitFor(t, "every partition led", 30*time.Second, func() error {
		_, _, err := leaderCounts(ctx, adm, topic)
		return err
	})
	w := startWriter(t, ctx, cl, topic, partitions)
	w.waitFor(t, 300)
	return c, ctx, adm, w
}

// leaderCounts returns how many partitions of topic each broker leads and
// holds, from Metadata.
func leaderCounts(ctx context.Context, adm *kadm.Client, topic string) (leaders, replicas map[int32]int, err error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	leaders, replicas = map[int32]int{}, map[int32]int{}
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader < 0 {
			return nil, nil, fmt.Errorf("partition %d has no leader", p.Partition)
		}
		leaders[p.Leader]++
		for _, r := range p.Replicas {
			replicas[r]++
		}
	}
	return leaders, replicas, nil
}

// TestRebalanceWhenANodeJoins is the roadmap's rebalancer test: nine
// partitions with three replicas on three nodes, an idempotent producer
// and a consumer running throughout; a fourth node joins, the rebalancer
// moves replicas and leaderships to it, and afterwards every node leads
// two or three partitions. Clients see only retriable errors, and nothing
// acknowledged is lost or duplicated.
func TestRebalanceWhenANodeJoins(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	const topic = "test"
	ctx := harness.Context(t, 5*time.Minute)
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, topic, 9, 3)
	adm := kadm.NewClient(clusterClient(t, c))
	harness.WaitFor(t, "every partition led, three per node", 30*time.Second, func() error {
		l, _, err := leaderCounts(ctx, adm, topic)
		if err != nil {
			return err
		}
		for id := int32(1); id <= 3; id++ {
			if l[id] != 3 {
				return fmt.Errorf("leaders %v", l)
			}
		}
		return nil
	})
	w := startWriter(t, ctx, cl, topic, 9)
	var consumerErrs []error
	var cmu sync.Mutex
	consumer := clusterClient(t, c, kgo.ConsumeTopics(topic))
	cctx, stopConsumer := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			consumer.PollFetches(cctx).EachError(func(_ string, _ int32, err error) {
				if cctx.Err() == nil {
					cmu.Lock()
					consumerErrs = append(consumerErrs, err)
					cmu.Unlock()
				}
			})
		}
	}()
	w.waitFor(t, 500)

	n4 := c.NewJoiningNode()
	n4.Start()
	harness.WaitFor(t, "node 4 to take its share", 3*time.Minute, func() error {
		all := kadm.TopicsSet{}
		for p := range int32(9) {
			all.Add(topic, p)
		}
		lr, err := adm.ListPartitionReassignments(ctx, all)
		if err != nil {
			return err
		}
		if len(lr[topic]) > 0 {
			return fmt.Errorf("%d reassignments in progress", len(lr[topic]))
		}
		l, r, err := leaderCounts(ctx, adm, topic)
		if err != nil {
			return err
		}
		for id := int32(1); id <= 4; id++ {
			if l[id] < 2 || l[id] > 3 || r[id] < 6 || r[id] > 7 {
				return fmt.Errorf("leaders %v, replicas %v", l, r)
			}
		}
		return nil
	})
	w.waitFor(t, 500)
	acked := w.finish()
	stopConsumer()
	<-consumed
	cmu.Lock()
	for _, err := range consumerErrs {
		if !kerr.IsRetriable(err) && !errors.Is(err, context.Canceled) {
			t.Errorf("the consumer saw a non-retriable error: %v", err)
		}
	}
	cmu.Unlock()
	checkWritten(t, c.Addrs(), topic, acked)
	if !c.Node(1).LogContains("rebalance: moving a partition") && !c.Node(2).LogContains("rebalance: moving a partition") && !c.Node(3).LogContains("rebalance: moving a partition") {
		t.Fatal("no node logged a rebalance move")
	}
}

// TestDecommissionNode decommissions a node of four with the CLI while a
// producer writes: its replicas and leaderships move to the others, it
// leaves the metadata group and the broker list and stops, and nothing
// acknowledged is lost. A decommission that would leave too few nodes for
// a topic's replicas is refused with the reason; a rebalance dry run then
// shows nothing to do.
func TestDecommissionNode(t *testing.T) {
	const topic = "decom"
	c, ctx, _, w := writtenCluster(t, 4, topic, 4)

	addr := []string{"--admin-addr", c.Node(1).HTTPAddr()}
	out := mustCLI(t, append([]string{"cluster", "decommission", "--node-id", "4", "--wait", "--timeout", "3m"}, addr...)...)
	if !strings.Contains(out, "Node 4 was decommissioned and left the cluster") {
		t.Fatalf("decommission output:\n%s", out)
	}
	if exit, ok := c.Node(4).WaitExit(30 * time.Second); !ok || exit == nil || !c.Node(4).LogContains("node 4 was decommissioned") {
		t.Fatalf("node 4 did not stop once decommissioned (exit %v)", exit)
	}
	// Every remaining node's catalog has it gone (each applies the change
	// in its own time).
	for _, n := range c.Nodes[:3] {
		one := kadm.NewClient(franzClient(t, n.Addr()))
		harness.WaitFor(t, fmt.Sprintf("node %d to drop broker 4", n.ID), 10*time.Second, func() error {
			md, err := one.Metadata(ctx, topic)
			if err != nil {
				return err
			}
			if slices.ContainsFunc(md.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == 4 }) {
				return fmt.Errorf("Metadata lists broker 4")
			}
			for _, p := range md.Topics[topic].Partitions {
				if slices.Contains(p.Replicas, 4) || len(p.Replicas) != 3 {
					return fmt.Errorf("partition %d: replicas %v", p.Partition, p.Replicas)
				}
			}
			return nil
		})
	}
	for _, n := range c.Nodes[:3] {
		if v, err := metadataVoters(n); err != nil || slices.Contains(v, 4) {
			t.Fatalf("node %d: metadata voters %v %v", n.ID, v, err)
		}
	}

	// A node that is not a member, and a live node, cannot be handled.
	if res := runCLI(t, append([]string{"cluster", "decommission", "--node-id", "9"}, addr...)...); res.code == 0 || !strings.Contains(res.stderr, "node 9 is not a member") {
		t.Fatalf("decommissioning node 9: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := runCLI(t, append([]string{"cluster", "replace", "--node-id", "2"}, addr...)...); res.code == 0 || !strings.Contains(res.stderr, "node 2 is live") {
		t.Fatalf("replacing live node 2: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// Three nodes remain for three replicas: none can go.
	res := runCLI(t, append([]string{"cluster", "decommission", "--node-id", "3"}, addr...)...)
	if res.code == 0 || !strings.Contains(res.stderr, "only 2 nodes would remain") {
		t.Fatalf("a decommission leaving 2 nodes for 3 replicas: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if out := mustCLI(t, append([]string{"raft", "rebalance", "--dry-run"}, addr...)...); !strings.Contains(out, "nothing to move") {
		t.Fatalf("rebalance dry run after the decommission:\n%s", out)
	}
	w.waitFor(t, 300)
	checkWritten(t, c.Addrs()[:3], topic, w.finish())
}

// TestReplaceANodeThatLostItsData wipes a node's data directory while a
// producer writes: it is refused when it comes back, until an operator
// runs "cluster replace"; then it rejoins under its id as a new member of
// every group, fills up from the others, votes again, and holds every
// record (the test then stops another node and reads everything back).
func TestReplaceANodeThatLostItsData(t *testing.T) {
	const topic = "replace"
	c, ctx, adm, w := writtenCluster(t, 3, topic, 3)

	n3 := c.Node(3)
	n3.Kill()
	if err := os.RemoveAll(n3.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(n3.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n3.StartNoWait()
	if exit, ok := n3.WaitExit(60 * time.Second); !ok || exit == nil || !n3.LogContains("cluster replace --node-id 3") {
		t.Fatalf("the wiped node was not refused with the way back (exit %v)", exit)
	}
	w.waitFor(t, 200)
	// A live node is not replaced; the cluster notices the death within
	// its liveness timeout.
	harness.WaitFor(t, "the cluster to record node 3 as down", 30*time.Second, func() error {
		st, err := adminClient(c.Node(1)).Cluster(ctx)
		if err != nil {
			return err
		}
		for _, ns := range st.Nodes {
			if ns.ID == 3 && ns.Live {
				return errors.New("node 3 is still live")
			}
		}
		return nil
	})

	addr := []string{"--admin-addr", c.Node(1).HTTPAddr()}
	if out := mustCLI(t, append([]string{"cluster", "replace", "--node-id", "3"}, addr...)...); !strings.Contains(out, "Node 3 is being replaced") {
		t.Fatalf("replace output:\n%s", out)
	}
	n3.Start()
	harness.WaitFor(t, "node 3 to be a member of every group again", 2*time.Minute, func() error {
		st, err := adminClient(c.Node(1)).Cluster(ctx)
		if err != nil {
			return err
		}
		for _, ns := range st.Nodes {
			if ns.ID == 3 && (ns.Replacing || !ns.MetadataVoter) {
				return fmt.Errorf("node 3: %+v", ns)
			}
		}
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		for _, p := range md.Topics[topic].Partitions {
			if !slices.Contains(p.Replicas, 3) || len(p.ISR) != 3 {
				return fmt.Errorf("partition %d: replicas %v ISR %v", p.Partition, p.Replicas, p.ISR)
			}
		}
		return nil
	})
	acked := w.finish()
	c.Node(1).Kill()
	checkWritten(t, []string{c.Node(2).Addr(), n3.Addr()}, topic, acked)
}

// TestStandaloneToCluster moves a node that ran standalone, with topics,
// records and a group's committed offsets, into a three-node cluster: it
// restarts as node 1 of the cluster's configuration, the two new nodes
// join it (all three started at once), its partitions gain replicas by
// reassignment, and every record is then served by the new nodes at its
// old offset, the group's offsets too.
func TestStandaloneToCluster(t *testing.T) {
	ctx := harness.Context(t, 4*time.Minute)
	sa := harness.NewNode(t, harness.NodeOptions{ID: 1})
	sa.Start()
	cl := franzClient(t, sa.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "legacy", 2, 1)
	for p := range int32(2) {
		produceN(t, cl, "legacy", p, fmt.Sprintf("p%d", p), 100)
	}
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "legacy", Partition: 0, At: 42, LeaderEpoch: -1})
	if res, err := kadm.NewClient(cl).CommitOffsets(ctx, "g", offsets); err != nil || res.Error() != nil {
		t.Fatalf("commit: %v %v", err, res)
	}
	cl.Close()
	if err := sa.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Node(1).DataDir = sa.DataDir
	c.Start()
	for _, n := range c.Nodes[1:] {
		if !n.LogContains("joining the running cluster") {
			t.Fatalf("node %d did not join the standalone node's cluster", n.ID)
		}
	}
	adm := kadm.NewClient(clusterClient(t, c))
	var req kadm.AlterPartitionAssignmentsReq
	for _, topic := range []string{"legacy", "__consumer_offsets"} {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range md.Topics[topic].Partitions {
			req.Assign(topic, p.Partition, []int32{1, 2, 3})
		}
	}
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	res.Each(func(r kadm.AlterPartitionAssignmentsResponse) {
		if r.Err != nil {
			t.Fatalf("reassign %s/%d: %v", r.Topic, r.Partition, r.Err)
		}
	})
	harness.WaitFor(t, "every partition on three in-sync replicas", 2*time.Minute, func() error {
		for _, topic := range []string{"legacy", "__consumer_offsets"} {
			md, err := adm.Metadata(ctx, topic)
			if err != nil {
				return err
			}
			for _, p := range md.Topics[topic].Partitions {
				if len(p.Replicas) != 3 || len(p.ISR) != 3 {
					return fmt.Errorf("%s/%d: replicas %v ISR %v", topic, p.Partition, p.Replicas, p.ISR)
				}
			}
		}
		return nil
	})
	harness.WaitFor(t, "three metadata voters", 30*time.Second, func() error {
		if v, err := metadataVoters(c.Node(1)); err != nil || len(v) != 3 {
			return fmt.Errorf("voters %v %v", v, err)
		}
		return nil
	})

	// Without the node that held everything, the new nodes serve it all.
	c.Node(1).Kill()
	rest := []string{c.Node(2).Addr(), c.Node(3).Addr()}
	got := map[int32][]kgo.Record{}
	rd, err := kgo.NewClient(kgo.SeedBrokers(rest...), kgo.ConsumeTopics("legacy"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for n := 0; n < 200; {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of 200 records", n)
		}
		fs.EachRecord(func(r *kgo.Record) { got[r.Partition] = append(got[r.Partition], *r); n++ })
	}
	for p := range int32(2) {
		for i, r := range got[p] {
			if r.Offset != int64(i) || string(r.Value) != fmt.Sprintf("p%d-%d", p, i) {
				t.Fatalf("partition %d record %d: offset %d value %q", p, i, r.Offset, r.Value)
			}
		}
	}
	survivors := kadm.NewClient(franzClient(t, rest[0], kgo.RetryTimeout(30*time.Second)))
	harness.WaitFor(t, "the group's offsets from the new nodes", time.Minute, func() error {
		fo, err := survivors.FetchOffsets(ctx, "g")
		if err != nil {
			return err
		}
		if o, ok := fo.Lookup("legacy", 0); !ok || o.At != 42 {
			return fmt.Errorf("committed offset %+v", o)
		}
		return nil
	})
}

// TestDecommissionADeadNode decommissions a node that is down (its disk
// died, say), a metadata voter: its replicas move to the live nodes
// without it, as each of its partitions keeps a quorum; it leaves the
// metadata group and the broker list, and the learner that remains is
// promoted so the group has three voters again. This is how a dead node is
// replaced by one of another id.
func TestDecommissionADeadNode(t *testing.T) {
	const topic = "dead"
	c, ctx, adm, w := writtenCluster(t, 4, topic, 4)
	c.Node(3).Kill()
	w.waitFor(t, 200)
	if _, err := adminClient(c.Node(1)).Decommission(ctx, 3, false); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "node 3 to leave the cluster", 2*time.Minute, func() error {
		st, err := adminClient(c.Node(1)).Cluster(ctx)
		if err != nil {
			return err
		}
		for _, ns := range st.Nodes {
			if ns.ID == 3 && ns.KafkaAddr != "" {
				return fmt.Errorf("node 3 holds %d replicas", ns.Replicas)
			}
		}
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		for _, p := range md.Topics[topic].Partitions {
			if slices.Contains(p.Replicas, 3) || len(p.ISR) != 3 {
				return fmt.Errorf("partition %d: replicas %v ISR %v", p.Partition, p.Replicas, p.ISR)
			}
		}
		return nil
	})
	harness.WaitFor(t, "voters 1, 2 and 4", 30*time.Second, func() error {
		if v, err := metadataVoters(c.Node(1)); err != nil || !slices.Equal(v, []uint64{1, 2, 4}) {
			return fmt.Errorf("voters %v %v", v, err)
		}
		return nil
	})
	w.waitFor(t, 200)
	checkWritten(t, []string{c.Node(1).Addr(), c.Node(2).Addr(), c.Node(4).Addr()}, topic, w.finish())
}
