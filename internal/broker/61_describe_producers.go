package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/wire"
)

// DescribeProducers: v0
//
// Behavior:
// * For each partition asked for, the idempotent producers whose state
// its leader keeps (those that wrote within producer.id.expiration.ms),
// as of the partition's commit index: producer id, epoch, the sequence
// of its last record and the largest timestamp of its last batch.
// * Coordinator epoch and current transaction start offset are always -1:
// Chronik has no transactions.
// * Only the partition's leader answers: NOT_LEADER_OR_FOLLOWER elsewhere;
// a topic or partition the catalog does not have gets
// UNKNOWN_TOPIC_OR_PARTITION.
func init() { register(kmsg.DescribeProducers, 0, 0, (*Broker).handleDescribeProducers) }

func (b *Broker) handleDescribeProducers(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.DescribeProducersRequest)
	// Producer state is read on each partition's raft worker: off the
	// connection's reader.
	go func() {
		ctx, cancel := b.ctx()
		defer cancel()
		resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewDescribeProducersResponseTopic()
			st.Topic = rt.Topic
			for _, part := range rt.Partitions {
				sp := kmsg.NewDescribeProducersResponseTopicPartition()
				sp.Partition = part
				p, err := b.leaderPartition(rt.Topic, part)
				if err == nil {
					var producers []replica.ProducerInfo
					producers, err = p.ActiveProducers(ctx)
					for _, pr := range producers {
						ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
						ap.ProducerID, ap.ProducerEpoch = pr.ID, int32(pr.Epoch)
						ap.LastSequence, ap.LastTimestamp = pr.LastSequence, pr.LastTimestamp
						ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1
						sp.ActiveProducers = append(sp.ActiveProducers, ap)
					}
				}
				sp.ErrorCode, sp.ErrorMessage = b.errCode(err), errMessage(err)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		respond(resp)
	}()
}
