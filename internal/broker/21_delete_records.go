package broker

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/wire"
)

// DeleteRecords: v0-2
//
// Behavior:
// * Moves each partition's log start offset to the given offset (-1: the
// high watermark) on every replica, through the partition's raft group;
// whole segments below it are deleted. The new log start is the low
// watermark in the answer.
// * An offset above the high watermark gets OFFSET_OUT_OF_RANGE.
// * Records of internal topics are the server's: INVALID_TOPIC_EXCEPTION.
//
// Version notes:
// * v2 flexible.
func init() { register(kmsg.DeleteRecords, 0, 2, (*Broker).handleDeleteRecords) }

func (b *Broker) handleDeleteRecords(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	var wg sync.WaitGroup
	var mu sync.Mutex
	finished := false
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			err := refuseReserved(rt.Topic, "delete records of")
			var p *replica.Partition
			if err == nil {
				p, err = b.leaderPartition(rt.Topic, rp.Partition)
			}
			if err != nil {
				sp.ErrorCode = b.errCode(err)
				continue
			}
			wg.Add(1)
			p.DeleteRecords(rp.Offset, func(low int64, err error) {
				mu.Lock()
				if !finished {
					sp.LowWatermark, sp.ErrorCode = low, b.errCode(err)
				}
				mu.Unlock()
				wg.Done()
			})
		}
		resp.Topics = append(resp.Topics, st)
	}
	go func() {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			mu.Lock()
		case <-time.After(max(time.Duration(req.TimeoutMillis)*time.Millisecond, time.Second)):
			mu.Lock()
			// Answer what finished; the rest time out (they may still apply).
			for ti := range resp.Topics {
				for pi := range resp.Topics[ti].Partitions {
					if sp := &resp.Topics[ti].Partitions[pi]; sp.ErrorCode == 0 && sp.LowWatermark == -1 {
						sp.ErrorCode = kerr.RequestTimedOut.Code
					}
				}
			}
		}
		finished = true
		mu.Unlock()
		respond(resp)
	}()
}
