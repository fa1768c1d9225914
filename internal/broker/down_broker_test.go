package broker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/meta"
)

// TestDownLeaderNamedWhileSuccessorElected: a partition's leader leaves
// the live set; until a successor publishes itself, for at most
// DownBrokerGrace, Metadata still names it (and lists its broker), as
// Kafka names a dead leader until its session expires; then
// LEADER_NOT_AVAILABLE. Named none at once, sarama's idempotent producer
// failed records it was retrying during a failover.
func TestDownLeaderNamedWhileSuccessorElected(t *testing.T) {
	n := startStandalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range []int32{2, 3} {
		if err := n.catalog.RegisterBroker(ctx, meta.Broker{ID: id, Host: "127.0.0.1", Port: 9092 + id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.catalog.CreateTopic(ctx, "failover", [][]int32{{2, 1, 3}}, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := n.catalog.SetPartitionState(ctx, "failover", 0, 2, 4, []int32{2, 1, 3}); err != nil {
		t.Fatal(err)
	}
	if err := n.catalog.SetLiveBrokers(ctx, []int32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	metadata := func(b *Broker) (leader int32, code int16, brokers, offline []int32) {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("failover")}}
		old := n.broker
		n.broker = b
		resp := n.handle(t, req, 12).(*kmsg.MetadataResponse)
		n.broker = old
		for _, br := range resp.Brokers {
			brokers = append(brokers, br.NodeID)
		}
		p := resp.Topics[0].Partitions[0]
		return p.Leader, p.ErrorCode, brokers, p.OfflineReplicas
	}
	withGrace := func(grace time.Duration) *Broker {
		return New(Config{NodeID: 1, Host: "127.0.0.1", Port: 9092, DownBrokerGrace: grace}, n.catalog, n.replicas, nil)
	}
	if leader, _, _, _ := metadata(withGrace(time.Hour)); leader != 2 {
		t.Fatalf("while broker 2 is live Metadata names leader %d", leader)
	}
	if err := n.catalog.SetLiveBrokers(ctx, []int32{1, 3}); err != nil {
		t.Fatal(err)
	}
	leader, code, brokers, offline := metadata(withGrace(time.Hour))
	if leader != 2 || code != 0 || !slices.Contains(brokers, 2) {
		t.Fatalf("within the grace after broker 2 left: leader %d (%v), brokers %v; want leader 2 listed", leader, kerr.ErrorForCode(code), brokers)
	}
	if fmt.Sprint(offline) != "[2]" {
		t.Fatalf("offline replicas %v, want [2]", offline)
	}
	// A successor publishes itself: the down broker is no longer listed,
	// grace or not (a client that caches the broker list would keep
	// trying it).
	if err := n.catalog.SetPartitionState(ctx, "failover", 0, 3, 5, []int32{3, 1}); err != nil {
		t.Fatal(err)
	}
	leader, _, brokers, _ = metadata(withGrace(time.Hour))
	if leader != 3 || slices.Contains(brokers, 2) {
		t.Fatalf("after the successor published itself: leader %d, brokers %v; want leader 3, broker 2 not listed", leader, brokers)
	}
	if err := n.catalog.SetPartitionState(ctx, "failover", 0, 2, 6, []int32{2, 1}); err != nil {
		t.Fatal(err)
	}
	leader, code, brokers, _ = metadata(withGrace(0))
	if leader != -1 || code != kerr.LeaderNotAvailable.Code || slices.Contains(brokers, 2) {
		t.Fatalf("with no grace: leader %d (%v), brokers %v; want none, broker 2 not listed", leader, kerr.ErrorForCode(code), brokers)
	}
	// The grace ends.
	short := withGrace(100 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		leader, _, brokers, _ = metadata(short)
		if leader == -1 && !slices.Contains(brokers, 2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the grace never ended: leader %d, brokers %v", leader, brokers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReassignWithoutMetadataLeaderIsRetried: a reassignment asked while
// the metadata group has no leader is answered NOT_CONTROLLER in the
// response's own error, as Kafka's controller answers, which clients
// retry; as a partition's error alone, franz-go and Kafka's AdminClient
// report it as the reassignment's failure.
func TestReassignWithoutMetadataLeaderIsRetried(t *testing.T) {
	n := startStandalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.catalog.RegisterBroker(ctx, meta.Broker{ID: 2, Host: "127.0.0.1", Port: 9094}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.catalog.CreateTopic(ctx, "moving", [][]int32{{1}}, nil, false); err != nil {
		t.Fatal(err)
	}
	// A second voter that never answers: the metadata group loses its
	// quorum and its leader.
	if err := n.catalog.AddMember(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := n.catalog.Promote(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for n.catalog.Group().Status().Lead != 0 {
		if ctx.Err() != nil {
			t.Fatal("the metadata group kept its leader without a quorum")
		}
		time.Sleep(5 * time.Millisecond)
	}
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.TimeoutMillis = 1000
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = "moving"
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Replicas = []int32{1, 2}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := n.handle(t, req, 0).(*kmsg.AlterPartitionAssignmentsResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != kerr.NotController {
		t.Fatalf("response error %v (partition: %v), want NOT_CONTROLLER", err, kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
	}
}
