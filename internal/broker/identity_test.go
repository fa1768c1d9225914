package broker

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wire"
)

// standaloneNode is one node's catalog and replica manager, with no loop
// that keeps the replicas in line with the catalog: a test decides which
// replicas exist.
type standaloneNode struct {
	store    *storage.Store
	host     *raftnode.Host
	catalog  *meta.Catalog
	replicas *replica.Manager
	broker   *Broker
}

func startStandalone(t *testing.T) *standaloneNode {
	t.Helper()
	st, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host := raftnode.NewHost(raftnode.Config{NodeID: 1, TickInterval: 10 * time.Millisecond, ElectionTicks: 10}, nil)
	n := &standaloneNode{store: st, host: host}
	t.Cleanup(n.stop)
	l, err := st.OpenLog(storage.InternalLog("catalog"), storage.DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	n.catalog, err = meta.Open(host, l, []uint64{1}, nil, false, nil, meta.SnapshotPolicy{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !n.catalog.IsLeader() {
		if ctx.Err() != nil {
			t.Fatal("the catalog never elected a leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := n.catalog.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.catalog.RegisterBroker(ctx, meta.Broker{ID: 1, Host: "127.0.0.1", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	n.replicas = replica.NewManager(replica.Settings{NodeID: 1}, st, host, slog.New(slog.DiscardHandler), nil)
	n.broker = New(Config{NodeID: 1, Host: "127.0.0.1", Port: 9092}, n.catalog, n.replicas, nil)
	return n
}

func (n *standaloneNode) stop() {
	if n.replicas != nil {
		n.replicas.Close()
	}
	n.host.Stop()
	n.store.Close()
}

// openReady opens a replica of tp with the given identity and waits until
// it leads.
func (n *standaloneNode) openReady(t *testing.T, tp replica.TopicPartition, id replica.Identity) *replica.Partition {
	t.Helper()
	cfg := replica.Config{MinInsyncReplicas: 1, MaxMessageBytes: 1 << 20, Log: storage.DefaultLogConfig()}
	p, err := n.replicas.Open(tp, id, []uint64{1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.CheckLeader() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the replica never became a ready leader")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return p
}

// handle answers one request as the wire server would.
func (n *standaloneNode) handle(t *testing.T, msg kmsg.Request, version int16) kmsg.Response {
	t.Helper()
	msg.SetVersion(version)
	ch := make(chan kmsg.Response, 1)
	n.broker.Handle(&wire.Request{Key: msg.Key(), Version: version, Msg: msg, Received: time.Now()}, func(r kmsg.Response) { ch <- r })
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatalf("no answer to %s", kmsg.NameForKey(msg.Key()))
		return nil
	}
}

// TestReplicaOfEarlierTopicNeverServes keeps, under a topic's name, the
// local replica of an earlier topic of that name (deleted and created
// again while the replica was not yet removed): the broker must not take
// it for the new topic's partition. Looked up by name only, it answered
// Metadata as the new partition's leader, took writes meant for the new
// topic, and served the old topic's records to its readers.
func TestReplicaOfEarlierTopicNeverServes(t *testing.T) {
	n := startStandalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic, err := n.catalog.CreateTopic(ctx, "orders", [][]int32{{1}}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	ghostID := replica.Identity{TopicID: [16]byte{0xde, 0xad}, Group: raftnode.GroupID(topic.Partitions[0].Group + 1000)}
	ghost := n.openReady(t, replica.TopicPartition{Topic: "orders", Partition: 0}, ghostID)
	old := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("old topic")}}})
	done := make(chan replica.ProduceResult, 1)
	ghost.Produce(old, -1, 10*time.Second, func(r replica.ProduceResult) { done <- r })
	if r := <-done; r.Err != nil {
		t.Fatal(r.Err)
	}

	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("orders")}}
	mr := n.handle(t, md, 12).(*kmsg.MetadataResponse)
	if len(mr.Topics) != 1 || len(mr.Topics[0].Partitions) != 1 {
		t.Fatalf("metadata: %+v", mr.Topics)
	}
	if p := mr.Topics[0].Partitions[0]; p.Leader != -1 {
		t.Errorf("metadata names broker %d the leader of the new topic's partition, which has no replica here yet", p.Leader)
	}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxBytes = 1 << 20
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: "orders", Partitions: []kmsg.FetchRequestTopicPartition{
		{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
	fr := n.handle(t, fetch, 11).(*kmsg.FetchResponse)
	fp := fr.Topics[0].Partitions[0]
	if recs, _ := recordbatch.RecordsOf(fp.RecordBatches); len(recs) > 0 {
		t.Errorf("a read of the new topic returned %d records of the earlier one (%q)", len(recs), recs[0].Value)
	}
	if err := kerr.ErrorForCode(fp.ErrorCode); err != kerr.NotLeaderForPartition {
		t.Errorf("fetch: error %v, want NOT_LEADER_OR_FOLLOWER", err)
	}

	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 5000
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: "orders", Partitions: []kmsg.ProduceRequestTopicPartition{
		{Partition: 0, Records: recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Records: []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("new topic")}}})}}}}
	pr := n.handle(t, prod, 9).(*kmsg.ProduceResponse)
	if err := kerr.ErrorForCode(pr.Topics[0].Partitions[0].ErrorCode); err != kerr.NotLeaderForPartition {
		t.Errorf("produce: error %v, want NOT_LEADER_OR_FOLLOWER", err)
	}
	if f, err := ghost.Fetch(0, 1<<20, true); err != nil || f.HighWatermark != 1 {
		t.Errorf("the earlier topic's replica took the new topic's write: high watermark %d (%v)", f.HighWatermark, err)
	}

	// Once the right replica is open, it serves.
	if err := n.replicas.Remove(replica.TopicPartition{Topic: "orders", Partition: 0}, true); err != nil {
		t.Fatal(err)
	}
	n.openReady(t, replica.TopicPartition{Topic: "orders", Partition: 0},
		replica.Identity{TopicID: topic.ID, Group: raftnode.GroupID(topic.Partitions[0].Group)})
	pr = n.handle(t, prod, 9).(*kmsg.ProduceResponse)
	if p := pr.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Errorf("produce to the new topic's replica: %v at offset %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
}

// TestCreateTopicsAssignmentChecked sends manual assignments that name
// partitions outside 0..n-1, twice, or with no replicas: each is refused
// with INVALID_REPLICA_ASSIGNMENT and nothing is created. A negative
// partition number once indexed a slice and crashed the node.
func TestCreateTopicsAssignmentChecked(t *testing.T) {
	n := startStandalone(t)
	for name, assignment := range map[string][]kmsg.CreateTopicsRequestTopicReplicaAssignment{
		"negative":   {{Partition: -1, Replicas: []int32{1}}},
		"beyond":     {{Partition: 0, Replicas: []int32{1}}, {Partition: 2, Replicas: []int32{1}}},
		"twice":      {{Partition: 0, Replicas: []int32{1}}, {Partition: 0, Replicas: []int32{1}}},
		"no-replica": {{Partition: 0, Replicas: nil}},
	} {
		ct := kmsg.NewPtrCreateTopicsRequest()
		ct.TimeoutMillis = 5000
		ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: name, NumPartitions: -1, ReplicationFactor: -1, ReplicaAssignment: assignment}}
		r := n.handle(t, ct, 5).(*kmsg.CreateTopicsResponse)
		if err := kerr.ErrorForCode(r.Topics[0].ErrorCode); err != kerr.InvalidReplicaAssignment {
			t.Errorf("%s: error %v, want INVALID_REPLICA_ASSIGNMENT", name, err)
		}
		if n.catalog.Topic(name) != nil {
			t.Errorf("%s: the topic was created", name)
		}
	}
}
