package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// ListOffsets: v1-9
//
// Behavior:
// * Timestamp -2: the log start offset; -1: the high watermark (the end a
// consumer can read to); -3 (v7+): the first record with the largest
// timestamp, and that timestamp; -4 (v8+, earliest local): the log start
// offset, all of the log being local; -5 (v9+, latest tiered): -1, nothing
// being tiered (Kafka's answer without remote storage); otherwise the first
// offset whose record timestamp is at least the one asked for, and that
// record's timestamp (-1, -1 if none).
// * Answered by partition leaders only.
//
// Version notes:
// * v2 isolation level (no transactions: both levels see the high
// watermark), v4 leader epochs, v6 flexible, v7 max timestamp (KIP-734),
// v8 earliest local (KIP-405), v9 latest tiered (KIP-1005).
func init() { register(kmsg.ListOffsets, 1, 9, (*Broker).handleListOffsets) }

// The special timestamps of ListOffsets.
const (
	listLatest        = -1
	listEarliest      = -2
	listMaxTimestamp  = -3 // v7+
	listEarliestLocal = -4 // v8+
	listLatestTiered  = -5 // v9+
)

// minListOffsetsVersion is the version that introduced each special
// timestamp: asked for in an older request it is an invalid timestamp.
var minListOffsetsVersion = map[int64]int16{listLatest: 0, listEarliest: 0, listMaxTimestamp: 7, listEarliestLocal: 8, listLatestTiered: 9}

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
				if v, ok := minListOffsetsVersion[rp.Timestamp]; rp.Timestamp < 0 && (!ok || req.Version < v) {
					err = describe(kerr.InvalidRequest, "timestamp %d is not supported in ListOffsets v%d", rp.Timestamp, req.Version)
				}
				switch {
				case err != nil:
				case rp.Timestamp == listEarliest || rp.Timestamp == listEarliestLocal:
					sp.Offset = l.LogStartOffset()
				case rp.Timestamp == listLatest:
					sp.Offset = l.HighWatermark()
				case rp.Timestamp == listMaxTimestamp:
					sp.Offset, sp.Timestamp, err = p.OffsetOfMaxTimestamp()
				case rp.Timestamp == listLatestTiered:
					// Nothing is tiered: offset -1, as Kafka answers without remote storage.
				default:
					sp.Offset, sp.Timestamp, err = p.OffsetForTimestamp(rp.Timestamp)
				}
				if sp.Offset >= 0 {
					at := sp.Offset
					if rp.Timestamp == listLatest {
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
