package broker

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// AlterPartitionReassignments: v0-1
//
// Behavior:
// * Starts moving each named partition to its new replicas (null replicas
// cancel the reassignment in progress), as Kafka's KIP-455 does: the
// partition's leader adds the new replicas as raft learners, lets them
// catch up, makes them voters and removes the old ones through joint
// consensus; the partition keeps serving throughout. The response comes
// once the catalog holds the reassignment; ListPartitionReassignments
// shows its progress.
// * Replicas must be registered brokers, each once; INVALID_REPLICA_ASSIGNMENT
// otherwise. A cancel with nothing in progress gets NO_REASSIGNMENT_IN_PROGRESS.
// * With no metadata leader to take a change, the response's own error
// is NOT_CONTROLLER, as Kafka's is from a broker that is not the
// controller: clients retry the request on it, while a partition's error
// is reported as final.
//
// Version notes:
// * v1: allow_replication_factor_change=false refuses a new replica count
// with INVALID_REPLICATION_FACTOR.
func init() {
	register(kmsg.AlterPartitionAssignments, 0, 1, (*Broker).handleAlterPartitionReassignments)
}

func (b *Broker) handleAlterPartitionReassignments(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	ctx, cancel := context.WithTimeout(context.Background(), max(time.Duration(req.TimeoutMillis)*time.Millisecond, time.Second))
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			err := b.reassign(ctx, rt.Topic, rp.Partition, rp.Replicas, req.Version < 1 || req.AllowReplicationFactorChange)
			sp.ErrorCode = b.errCode(err)
			sp.ErrorMessage = errMessage(err)
			st.Partitions = append(st.Partitions, sp)
			if sp.ErrorCode == kerr.NotController.Code {
				resp.ErrorCode, resp.ErrorMessage = sp.ErrorCode, sp.ErrorMessage
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}

func (b *Broker) reassign(ctx context.Context, topic string, partition int32, replicas []int32, allowRFChange bool) error {
	t := b.catalog.Topic(topic)
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return kerr.UnknownTopicOrPartition
	}
	if replicas != nil {
		if len(replicas) == 0 {
			return describe(kerr.InvalidReplicaAssignment, "partition %s-%d: the replica list is empty", topic, partition)
		}
		brokers := b.brokerIDs()
		for i, id := range replicas {
			if !slices.Contains(brokers, id) {
				return describe(kerr.InvalidReplicaAssignment, "partition %s-%d: broker %d is not a member of the cluster", topic, partition, id)
			}
			if slices.Contains(replicas[:i], id) {
				return describe(kerr.InvalidReplicaAssignment, "partition %s-%d: broker %d is listed twice", topic, partition, id)
			}
		}
		p := t.Partitions[partition]
		orig := len(p.Replicas) - len(p.Adding)
		if !allowRFChange && len(replicas) != orig {
			return describe(kerr.InvalidReplicationFactor, "partition %s-%d has %d replicas; the reassignment to %d is refused (replication factor changes not allowed)", topic, partition, orig, len(replicas))
		}
	}
	return b.catalog.Reassign(ctx, topic, partition, replicas)
}
