package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// OffsetForLeaderEpoch: v0-4
//
// Behavior:
// * For a requested epoch, returns the largest epoch at or below it that
// the leader's log holds and the offset where the next epoch starts (the
// log end offset for the latest epoch); -1, -1 when the log holds no such
// epoch. Clients use it to detect truncation (KIP-320).
// * Epochs are raft terms, which are also written into each batch's
// partitionLeaderEpoch.
//
// Version notes:
// * v1 returns the epoch, v2 current leader epoch fencing, v3 replica id,
// v4 flexible.
func init() { register(kmsg.OffsetForLeaderEpoch, 0, 4, (*Broker).handleOffsetForLeaderEpoch) }

func (b *Broker) handleOffsetForLeaderEpoch(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, err := b.leaderPartition(rt.Topic, rp.Partition)
			if err == nil && req.Version >= 2 {
				err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil && rp.LeaderEpoch >= 0 {
				epoch, end := p.Log().EndOffsetForEpoch(uint64(rp.LeaderEpoch))
				sp.LeaderEpoch, sp.EndOffset = int32(epoch), end
			}
			sp.ErrorCode = b.errCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}
