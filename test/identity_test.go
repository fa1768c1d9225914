package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/test/harness"
)

// kcatFails runs kcat expecting it to fail, and returns what it printed.
func kcatFails(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, needKcat(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("kcat %v succeeded; want it refused:\n%s", args, out)
	}
	return string(out)
}

// request sends req to the node behind cl and fails the test on a
// transport error.
func request[T kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(T)
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != want.Code {
		t.Errorf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// TestReservedAndInvalidTopicNames: no client can create, write, delete or
// reconfigure a reserved topic, names follow Kafka's rules (including the
// '.'/'_' collision rule) on CreateTopics and on auto-creation, and unknown
// topics get UNKNOWN_TOPIC_OR_PARTITION from Produce and OffsetCommit (and
// OffsetFetch v0), as in Kafka. A produce to __cluster_metadata once made
// the node panic at once and at every restart.
func TestReservedAndInvalidTopicNames(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	for _, name := range []string{"__cluster_metadata", "__consumer_offsets", "__transaction_state"} {
		out := kcatFails(t, "x\n", "-b", n.Addr(), "-P", "-t", name)
		if !strings.Contains(out, "Invalid topic") {
			t.Errorf("kcat produce to %s: %s", name, out)
		}
	}
	// The node survives a restart after them, and serves.
	if err := n.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	n.Start()
	kcat(t, "after\n", "-b", n.Addr(), "-P", "-t", "plain")
	if out := kcat(t, "", "-b", n.Addr(), "-C", "-t", "plain", "-o", "beginning", "-e", "-q"); strings.TrimSpace(out) != "after" {
		t.Fatalf("read back %q", out)
	}

	cl := franzClient(t, n.Addr())
	create := func(names ...string) *kmsg.CreateTopicsResponse {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		for _, name := range names {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
			req.Topics = append(req.Topics, rt)
		}
		return request[*kmsg.CreateTopicsResponse](t, cl, req)
	}
	bad := []string{"__cluster_metadata", "__consumer_offsets", "__transaction_state", "a/b", "..", ".", "",
		strings.Repeat("x", 250), "sp ace", "dollar$", "uni\u00e9"}
	for i, rt := range create(bad...).Topics {
		wantCode(t, fmt.Sprintf("create %q", bad[i]), rt.ErrorCode, kerr.InvalidTopicException)
	}
	if rt := create(strings.Repeat("y", 249)).Topics[0]; rt.ErrorCode != 0 {
		t.Errorf("a 249-character name was refused: %v", kerr.ErrorForCode(rt.ErrorCode))
	}
	if rt := create("metrics.cpu").Topics[0]; rt.ErrorCode != 0 {
		t.Fatalf("create metrics.cpu: %v", kerr.ErrorForCode(rt.ErrorCode))
	}
	rt := create("metrics_cpu").Topics[0]
	wantCode(t, "create metrics_cpu beside metrics.cpu", rt.ErrorCode, kerr.InvalidTopicException)
	if rt.ErrorMessage == nil || !strings.Contains(*rt.ErrorMessage, "metrics.cpu") {
		t.Errorf("collision message %v does not name the existing topic", rt.ErrorMessage)
	}

	// Auto-creation through Metadata applies the same rules.
	md := kmsg.NewPtrMetadataRequest()
	md.AllowAutoTopicCreation = true
	for _, name := range []string{"metrics_cpu", "bad/name", "__cluster_metadata", "__transaction_state"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, mt)
	}
	for _, mt := range request[*kmsg.MetadataResponse](t, cl, md).Topics {
		wantCode(t, "auto-create "+*mt.Topic, mt.ErrorCode, kerr.InvalidTopicException)
	}

	// __consumer_offsets exists once a group coordinator is asked for; no
	// client may delete, reconfigure, grow or truncate it.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	if r := request[*kmsg.FindCoordinatorResponse](t, cl, fc); r.ErrorCode != 0 {
		t.Fatalf("find coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"__consumer_offsets"}
	del.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("__consumer_offsets")}}
	del.TimeoutMillis = 10000
	wantCode(t, "delete __consumer_offsets", request[*kmsg.DeleteTopicsResponse](t, cl, del).Topics[0].ErrorCode, kerr.InvalidTopicException)
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "__consumer_offsets",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}}}
	wantCode(t, "alter configs of __consumer_offsets", request[*kmsg.AlterConfigsResponse](t, cl, ac).Resources[0].ErrorCode, kerr.InvalidRequest)
	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	iac.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "__consumer_offsets",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}}}
	wantCode(t, "incremental alter configs of __consumer_offsets", request[*kmsg.IncrementalAlterConfigsResponse](t, cl, iac).Resources[0].ErrorCode, kerr.InvalidRequest)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "__consumer_offsets", Count: 100}}
	cp.TimeoutMillis = 10000
	wantCode(t, "grow __consumer_offsets", request[*kmsg.CreatePartitionsResponse](t, cl, cp).Topics[0].ErrorCode, kerr.InvalidRequest)
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "__consumer_offsets", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}}}
	dr.TimeoutMillis = 10000
	wantCode(t, "delete records of __consumer_offsets", request[*kmsg.DeleteRecordsResponse](t, cl, dr).Topics[0].Partitions[0].ErrorCode, kerr.InvalidTopicException)

	// Unknown topics.
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 10000
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: "no-such-topic", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: oneRecordBatch()}}}}
	wantCode(t, "produce to an unknown topic", request[*kmsg.ProduceResponse](t, cl, prod).Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "simple", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{
		{Topic: "no-such-topic", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 123}, {Partition: 1, Offset: 456}}},
		{Topic: "plain", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}, {Partition: 7, Offset: 1}}},
	}
	cr := request[*kmsg.OffsetCommitResponse](t, cl, commit)
	for i, want := range []*kerr.Error{kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition} {
		wantCode(t, fmt.Sprintf("commit to no-such-topic/%d", i), cr.Topics[0].Partitions[i].ErrorCode, want)
	}
	if cr.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Errorf("commit to plain/0 beside unknown partitions: %v", kerr.ErrorForCode(cr.Topics[1].Partitions[0].ErrorCode))
	}
	wantCode(t, "commit to plain/7 (no such partition)", cr.Topics[1].Partitions[1].ErrorCode, kerr.UnknownTopicOrPartition)
	raw := dialRaw(t, n.Addr())
	for _, v := range []int16{0, 1, 5} {
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Group = "simple"
		of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "no-such-topic", Partitions: []int32{0}}, {Topic: "plain", Partitions: []int32{0}}}
		fr := raw.do(of, v).(*kmsg.OffsetFetchResponse)
		unk, known := fr.Topics[0].Partitions[0], fr.Topics[1].Partitions[0]
		if unk.Offset != -1 {
			t.Errorf("OffsetFetch v%d: unknown topic has offset %d", v, unk.Offset)
		}
		if v == 0 {
			wantCode(t, "OffsetFetch v0 of an unknown topic", unk.ErrorCode, kerr.UnknownTopicOrPartition)
		} else if unk.ErrorCode != 0 {
			t.Errorf("OffsetFetch v%d of an unknown topic: %v, want no error (Kafka's coordinator answers it)", v, kerr.ErrorForCode(unk.ErrorCode))
		}
		if known.ErrorCode != 0 || known.Offset != 1 {
			t.Errorf("OffsetFetch v%d of plain/0: offset %d error %v, want the committed 1", v, known.Offset, kerr.ErrorForCode(known.ErrorCode))
		}
	}
	// librdkafka's own check (its test 0030): committing offsets of an
	// unknown topic fails with UNKNOWN_TOPIC_OR_PART.
	needPythonModule(t, "confluent_kafka")
	out := runPython(t, "commit_unknown_topic.py", n.Addr())
	if !strings.Contains(out, "UNKNOWN_TOPIC_OR_PART") {
		t.Errorf("confluent-kafka commit to an unknown topic: %s", out)
	}
}

// oneRecordBatch is a valid v2 batch holding one record.
func oneRecordBatch() []byte {
	return recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("v")}}})
}

// TestTopicRecreatedBeforeReconcile deletes and creates a topic back to
// back, over and over: each time the partition must be a new one, holding
// only the new generation's record, even when the node saw the delete and
// the create in one catalog change.
func TestTopicRecreatedBeforeReconcile(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	adm := kadm.NewClient(franzClient(t, n.Addr()))
	ctx := harness.Context(t, 2*time.Minute)
	for gen := range 5 {
		// A client that knew the topic before sees its id change and, as
		// Kafka clients do, fails what it buffered for it: each generation
		// gets a fresh producer.
		cl := franzClient(t, n.Addr())
		if gen > 0 {
			if _, err := adm.DeleteTopics(ctx, "again"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, "again"); err != nil {
			t.Fatalf("generation %d: %v", gen, err)
		}
		var got error
		harness.WaitFor(t, fmt.Sprintf("a produce to generation %d", gen), 30*time.Second, func() error {
			got = cl.ProduceSync(ctx, &kgo.Record{Topic: "again", Value: fmt.Appendf(nil, "gen-%d", gen)}).FirstErr()
			if errors.Is(got, kerr.UnknownTopicOrPartition) || errors.Is(got, kerr.NotLeaderForPartition) {
				return got
			}
			return nil
		})
		if got != nil {
			t.Fatalf("generation %d: %v", gen, got)
		}
		cl.Close()
		recs := readTopic(t, n.Addr(), "again", 1)
		if string(recs[0].Value) != fmt.Sprintf("gen-%d", gen) || recs[0].Offset != 0 {
			t.Fatalf("generation %d reads %q at offset %d", gen, recs[0].Value, recs[0].Offset)
		}
	}
	// The node removes a deleted generation's log in the background, once
	// it has seen the delete: wait for it.
	harness.WaitFor(t, "only the last generation's log in the data directory", 30*time.Second, func() error {
		dirs, err := filepath.Glob(filepath.Join(n.DataDir, "kafka", "again", "*"))
		if err != nil {
			return err
		}
		if len(dirs) != 1 {
			return fmt.Errorf("data directory holds %v", dirs)
		}
		return nil
	})
}

// readTopic reads want records of topic from the start and fails if more
// arrive within a moment.
func readTopic(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := franzClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	extra, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	cl.PollFetches(extra).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	if len(out) != want {
		var vals []string
		for _, r := range out {
			vals = append(vals, string(r.Value))
		}
		t.Fatalf("%s holds %d records %v, want %d", topic, len(out), vals, want)
	}
	return out
}

// recreateTopic deletes topic and creates it again with partitions and
// replication factor rf, retrying each step (a node may just have died)
// until the catalog has done it.
func recreateTopic(t *testing.T, cl *kgo.Client, topic string, partitions int32, rf int16) {
	t.Helper()
	adm := kadm.NewClient(cl)
	ctx := harness.Context(t, 2*time.Minute)
	harness.WaitFor(t, "the delete of "+topic, 30*time.Second, func() error {
		r, err := adm.DeleteTopics(ctx, topic)
		if err != nil {
			return err
		}
		return r[topic].Err
	})
	harness.WaitFor(t, topic+" created again", 30*time.Second, func() error {
		r, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
		if err != nil {
			return err
		}
		if errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return nil
		}
		return r.Err
	})
}

// TestTopicRecreatedWhileReplicaDown: a topic is deleted and created again
// under the same name while one replica's node is down. That node comes
// back holding the old topic's log; it must remove it (saying so), take
// part in the new partition's raft group as an ordinary follower, and,
// once it leads, serve only the new topic's records.
func TestTopicRecreatedWhileReplicaDown(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	cl := clusterClient(t, c)
	createTopic(t, cl, "re", 1, 3)
	produceN(t, cl, "re", 0, "old", 50)
	waitAdminFullISR(t, c, "re", 0)
	oldDir := harness.PartitionDir(t, c.Node(3).DataDir, "re", 0)

	c.Node(3).Kill()
	recreateTopic(t, cl, "re", 1, 3)
	// A client that held the old topic's id refuses the new one (franz-go
	// fails it with UNKNOWN_TOPIC_ID, as Kafka's clients do): a new client.
	produceN(t, clusterClient(t, c), "re", 0, "new", 20)

	c.Node(3).Start()
	harness.WaitFor(t, "node 3 to remove the deleted topic's log", 30*time.Second, func() error {
		if _, err := os.Stat(oldDir); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s still there (%v)", oldDir, err)
		}
		return nil
	})
	if !c.Node(3).WaitLogContains("removing the log of a partition this node does not host", 10*time.Second) {
		t.Error("node 3 did not log the removal of the stale log")
	}
	waitAdminFullISR(t, c, "re", 0)
	harness.WaitFor(t, "node 3's replica to follow the new partition's leader and hold its records", 30*time.Second, func() error {
		ps, err := partitionOn(c.Node(3), "re", 0)
		if err != nil {
			return err
		}
		if ps.Role != "Follower" && ps.Role != "Leader" || ps.Leader == 0 || ps.LogEnd != 20 {
			return fmt.Errorf("role %s, leader %d, term %d, commit %d, log end %d", ps.Role, ps.Leader, ps.Term, ps.Commit, ps.LogEnd)
		}
		return nil
	})

	// Node 3 leads; it serves the new topic's records and nothing else.
	ctx5, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lead, err := partitionLeader(t, c, "re", 0)
	if err != nil {
		t.Fatal(err)
	}
	if lead != 3 {
		if _, err := adminClient(c.Node(int(lead))).TransferLeader(ctx5, "re", 0, 3); err != nil {
			t.Fatalf("move leadership to node 3: %v", err)
		}
	}
	waitLeaderIs(t, c, "re", 0, 3)
	recs := consumeAll(t, c, "re", 20)
	for i, r := range recs {
		if !strings.HasPrefix(string(r.Value), "new-") || r.Offset != int64(i) {
			t.Fatalf("record %d: %q at offset %d", i, r.Value, r.Offset)
		}
	}
	if got := harness.PartitionDir(t, c.Node(3).DataDir, "re", 0); got == oldDir {
		t.Fatalf("node 3 reuses the old log directory %s", got)
	}
}

// waitLeaderIs waits until Metadata names node id as the leader of topic/p.
func waitLeaderIs(t *testing.T, c *harness.Cluster, topic string, p int32, id int32) {
	t.Helper()
	harness.WaitFor(t, fmt.Sprintf("node %d to lead %s/%d", id, topic, p), 30*time.Second, func() error {
		l, err := partitionLeader(t, c, topic, p)
		if err != nil {
			return err
		}
		if l != id {
			return fmt.Errorf("led by %d", l)
		}
		return nil
	})
}

// TestWipedNodeRefusesToRejoin: a node whose data directory was wiped must
// not rejoin as itself (it once voted and acknowledged entries it no
// longer holds: raft panicked on it, or it could vote twice in a term). It
// refuses to start, saying why and what to do; the cluster keeps serving.
func TestWipedNodeRefusesToRejoin(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	cl := clusterClient(t, c)
	createTopic(t, cl, "kept", 1, 3)
	produceN(t, cl, "kept", 0, "before", 80)
	waitAdminFullISR(t, c, "kept", 0)

	wiped := c.Node(3)
	wiped.Kill()
	if err := os.RemoveAll(wiped.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(wiped.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	wiped.StartNoWait()
	exit, ok := wiped.WaitExit(90 * time.Second)
	if !ok {
		t.Fatalf("the wiped node is still running:\n%s", wiped.Log())
	}
	if exit == nil {
		t.Fatal("the wiped node exited with status 0")
	}
	for _, want := range []string{"must not rejoin the cluster as itself", "Restore this node's data directory", "node 3"} {
		if !wiped.LogContains(want) {
			t.Fatalf("the wiped node's message lacks %q:\n%s", want, wiped.Log())
		}
	}
	t.Logf("the wiped node said: %s", lastLines(wiped.Log(), 2))
	if strings.Contains(wiped.Log(), "panic") {
		t.Fatalf("the wiped node panicked:\n%s", wiped.Log())
	}
	for _, id := range []int{1, 2} {
		if !c.Node(id).Running() {
			t.Fatalf("node %d stopped:\n%s", id, c.Node(id).Log())
		}
	}
	// The other two still form a quorum and serve.
	produceN(t, clusterClient(t, c), "kept", 0, "after", 20)
	recs := consumeAll(t, c, "kept", 100)
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d at offset %d", i, r.Offset)
		}
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
