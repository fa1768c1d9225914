package broker

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/wire"
)

// CreatePartitions: v0-3
//
// Behavior:
// * Grows a topic to the requested count, with the given assignment for
// the new partitions or one that continues the topic's rotation.
// * A count not above the current one gets INVALID_PARTITIONS.
// * validate_only checks without creating.
//
// Version notes:
// * v2 flexible.
func init() { register(kmsg.CreatePartitions, 0, 3, (*Broker).handleCreatePartitions) }

func (b *Broker) handleCreatePartitions(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), max(time.Duration(req.TimeoutMillis)*time.Millisecond, time.Second))
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := b.createPartitions(ctx, req.ValidateOnly, rt)
		st.ErrorCode = b.errCode(err)
		st.ErrorMessage = errMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}

func (b *Broker) createPartitions(ctx context.Context, validateOnly bool, rt kmsg.CreatePartitionsRequestTopic) error {
	t := b.catalog.Topic(rt.Topic)
	if t == nil {
		return kerr.UnknownTopicOrPartition
	}
	if t.Internal {
		return describe(kerr.InvalidRequest, "internal topic %s cannot grow", t.Name)
	}
	cur := int32(len(t.Partitions))
	if rt.Count <= cur {
		return describe(kerr.InvalidPartitions, "topic %s has %d partitions; the new count %d must be larger", t.Name, cur, rt.Count)
	}
	if rt.Count > maxPartitions {
		return describe(kerr.InvalidPartitions, "partition count %d is above the limit of %d", rt.Count, maxPartitions)
	}
	rf := len(t.Partitions[0].Replicas)
	brokers := b.brokerIDs()
	add := int(rt.Count - cur)
	var assignment [][]int32
	if rt.Assignment != nil {
		if len(rt.Assignment) != add {
			return describe(kerr.InvalidReplicaAssignment, "%d assignments given for %d new partitions", len(rt.Assignment), add)
		}
		for _, a := range rt.Assignment {
			if len(a.Replicas) != rf {
				return describe(kerr.InvalidReplicaAssignment, "new partitions need %d replicas, got %d", rf, len(a.Replicas))
			}
			for _, id := range a.Replicas {
				if !slices.Contains(brokers, id) {
					return describe(kerr.InvalidReplicaAssignment, "unknown broker %d", id)
				}
			}
			assignment = append(assignment, a.Replicas)
		}
	} else {
		if rf > len(brokers) {
			return describe(kerr.InvalidReplicationFactor, "the topic's replication factor %d exceeds the %d brokers", rf, len(brokers))
		}
		placed := b.placementBrokers(rf)
		assignment = meta.Assign(placed, add, rf, int(cur)+b.assignmentStart(len(placed)))
	}
	if err := b.checkQuorumLive(assignment); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if err := b.catalog.CreatePartitions(ctx, t.Name, assignment); err != nil {
		return err
	}
	b.waitForLeaders(ctx, t.Name)
	return nil
}
