package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// ListOffsets: v1-6
//
// Behavior:
// * Timestamp -2: the log start offset; -1: the high watermark (the end a
// consumer can read to); otherwise the first offset whose record timestamp
// is at least the one asked for, and that record's timestamp (-1, -1 if
// none).
// * Answered by partition leaders only.
//
// Version notes:
// * v2 isolation level (no transactions: both levels see the high
// watermark), v4 leader epochs, v6 flexible.
func init() { register(kmsg.ListOffsets, 1, 6, (*Broker).handleListOffsets) }

func (b *Broker) handleListOffsets(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			p, err := b.leaderPartition(rt.Topic, rp.Partition)
			if err == nil && req.Version >= 4 {
				err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil {
				l := p.Log()
				switch rp.Timestamp {
				case -2:
					sp.Offset = l.LogStartOffset()
				case -1:
					sp.Offset = l.HighWatermark()
				default:
					if rp.Timestamp < 0 {
						err = describe(kerr.InvalidRequest, "timestamp %d is not supported", rp.Timestamp)
						break
					}
					sp.Offset, sp.Timestamp, err = p.OffsetForTimestamp(rp.Timestamp)
				}
				if sp.Offset >= 0 {
					at := sp.Offset
					if rp.Timestamp == -1 {
						at-- // the epoch of the last record
					}
					sp.LeaderEpoch = int32(l.TermAtOffset(at))
				}
			}
			sp.ErrorCode = b.errCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}
