package broker

import (
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/wire"
)

// Fetch: v4-12
//
// Behavior:
// * Serves committed batches (up to the high watermark) from partition
// leaders; other replicas answer NOT_LEADER_OR_FOLLOWER.
// * An offset inside a batch returns that whole batch; clients skip the
// records before their offset.
// * Limits: max_bytes for the response and partition_max_bytes per
// partition, except that the first batch of the first partition with data
// is returned even when it is larger (KIP-74).
// * Long poll: with fewer than min_bytes available the request waits up to
// max_wait_ms, woken as soon as any requested partition's high watermark
// moves. Errors answer at once.
// * An offset below the log start or above the log end gets
// OFFSET_OUT_OF_RANGE; the log start is reported in every partition.
// * Empty record sets are encoded empty, never null.
// * Fetch sessions (v7+) are not kept: the session id is always 0, so
// clients send full requests.
//
// Version notes:
// * v4 isolation level and last stable offset (= high watermark: no
// transactions), v5 log start offset, v7 sessions, v9 current leader epoch
// (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH), v11 rack id, v12 flexible.
func init() { register(kmsg.Fetch, 4, 12, (*Broker).handleFetch) }

func (b *Broker) handleFetch(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.FetchRequest)
	go b.fetch(r, req, respond)
}

func (b *Broker) fetch(r *wire.Request, req *kmsg.FetchRequest, respond func(kmsg.Response)) {
	deadline := r.Received.Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	var timer *time.Timer
	for {
		resp, size, errs, waits := b.fetchOnce(req)
		now := time.Now()
		if size >= int(req.MinBytes) || errs || !now.Before(deadline) || len(waits) == 0 {
			if timer != nil {
				timer.Stop()
			}
			respond(resp)
			return
		}
		if timer == nil {
			timer = time.NewTimer(deadline.Sub(now))
		}
		cases := make([]reflect.SelectCase, 0, len(waits)+1)
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
		for _, ch := range waits {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		if chosen, _, _ := reflect.Select(cases); chosen == 0 {
			deadline = time.Now() // the timer fired: answer with what there is
		}
	}
}

// fetchOnce reads every requested partition once. It returns the response,
// its record bytes, whether any partition has an error, and the channels
// that signal new data.
func (b *Broker) fetchOnce(req *kmsg.FetchRequest) (*kmsg.FetchResponse, int, bool, []<-chan struct{}) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 && req.SessionID > 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, 0, true, nil
	}
	remaining := int(req.MaxBytes)
	if req.Version < 3 || remaining <= 0 {
		remaining = 1 << 30
	}
	size := 0
	errs := false
	var waits []<-chan struct{}
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = []byte{}
			p, err := b.leaderPartition(rt.Topic, rp.Partition)
			if err == nil && req.Version >= 9 {
				err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil {
				limit := min(int(rp.PartitionMaxBytes), remaining)
				var res replica.FetchResult
				res, err = p.Fetch(rp.FetchOffset, max(limit, 0), size == 0)
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, res.HighWatermark, res.LogStartOffset
				if len(res.Batches) > 0 {
					sp.RecordBatches = res.Batches
					size += len(res.Batches)
					remaining -= len(res.Batches)
				}
				if err == nil {
					waits = append(waits, p.HighWatermarkChanged())
				}
			}
			if err != nil {
				sp.ErrorCode = b.errCode(err)
				errs = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, size, errs, waits
}

// checkLeaderEpoch compares a client's idea of the leader epoch with ours
// (KIP-320); -1 skips the check.
func checkLeaderEpoch(p *replica.Partition, epoch int32) error {
	if epoch < 0 {
		return nil
	}
	cur := int32(p.View().Term)
	switch {
	case epoch < cur:
		return kerr.FencedLeaderEpoch
	case epoch > cur:
		return kerr.UnknownLeaderEpoch
	}
	return nil
}
