package broker

import (
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/membudget"
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
// partition, the response capped at kafka.fetch_max_bytes whatever the
// client asks (Kafka's broker fetch.max.bytes), except that the first
// batch of the first partition with data is returned even when it is
// larger (KIP-74).
// * Memory: record bytes are taken from the node-wide fetch budget
// (kafka.queued_max_fetch_bytes) before the log is read, and returned once
// the response is written. Each byte counts twice: the batches read and
// the encoded response frame exist together. A fetch takes what is free
// and reads that much; one that gets nothing for a partition with data
// waits, like a long poll, for budget or data until max_wait_ms, then
// answers with what it has (possibly nothing). Partition reads of at most
// 1 MiB keep a share of the budget that larger ones cannot take (a
// quarter, or what a full response leaves). The first batch of a
// response is budgeted at least kafka.message_max_bytes; a larger one
// (a topic whose max.message.bytes was raised above it) is served whole
// and counted once read, even beyond the limit.
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
// * max_bytes (in every served version) is capped at kafka.fetch_max_bytes,
// and a max_bytes of 0 or less means that cap.
// * v4 isolation level and last stable offset (= high watermark: no
// transactions), v5 log start offset, v7 sessions, v9 current leader epoch
// (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH), v11 rack id, v12 flexible.
func init() { register(kmsg.Fetch, 4, 12, (*Broker).handleFetch) }

// heldCopies is how many times a fetched record byte counts against the
// fetch budget: the batches read from the log and the encoded response
// frame exist together while the response is written.
const heldCopies = 2

func (b *Broker) handleFetch(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.FetchRequest)
	go b.fetch(r, req, respond)
}

func (b *Broker) fetch(r *wire.Request, req *kmsg.FetchRequest, respond func(kmsg.Response)) {
	deadline := r.Received.Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	var timer *time.Timer
	counted := false
	for {
		// Taken before reading, so that a release in between is not missed.
		freed := b.fetchBudget.Freed()
		resp, f := b.fetchOnce(req)
		if f.squeezed && !counted {
			b.fetchBudget.NoteWait()
			counted = true
		}
		now := time.Now()
		if f.size >= int(req.MinBytes) || f.errs || !now.Before(deadline) || len(f.waits) == 0 {
			if timer != nil {
				timer.Stop()
			}
			if held := f.held; held > 0 {
				r.AfterResponse(func() { b.fetchBudget.Release(held) })
			}
			respond(resp)
			return
		}
		// This response is dropped; the partitions are read again.
		b.fetchBudget.Release(f.held)
		if timer == nil {
			timer = time.NewTimer(deadline.Sub(now))
		}
		cases := make([]reflect.SelectCase, 0, len(f.waits)+2)
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
		for _, ch := range f.waits {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		if f.short {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(freed)})
		}
		if chosen, _, _ := reflect.Select(cases); chosen == 0 {
			deadline = time.Now() // the timer fired: answer with what there is
		}
	}
}

// fetchRead is what one pass over the requested partitions found.
type fetchRead struct {
	size int   // record bytes in the response
	held int64 // bytes of the fetch budget the response holds
	errs bool  // some partition has an error
	// squeezed: the budget granted less than a partition could take;
	// short: a partition with data got nothing because of it.
	squeezed, short bool
	waits           []<-chan struct{} // signal new data
}

// fetchOnce reads every requested partition once.
func (b *Broker) fetchOnce(req *kmsg.FetchRequest) (*kmsg.FetchResponse, fetchRead) {
	var f fetchRead
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 && req.SessionID > 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		f.errs = true
		return resp, f
	}
	remaining := int(b.cfg.FetchMaxBytes)
	if req.Version >= 3 && req.MaxBytes > 0 {
		remaining = min(remaining, int(req.MaxBytes))
	}
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
				limit := max(min(int(rp.PartitionMaxBytes), remaining), 0)
				var res replica.FetchResult
				res, err = b.readPartition(p, rp.FetchOffset, limit, f.size == 0, &f)
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, res.HighWatermark, res.LogStartOffset
				if len(res.Batches) > 0 {
					sp.RecordBatches = res.Batches
					f.size += len(res.Batches)
					remaining -= len(res.Batches)
				}
				if err == nil {
					f.waits = append(f.waits, p.HighWatermarkChanged())
				}
			}
			if err != nil {
				sp.ErrorCode = b.errCode(err)
				f.errs = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, f
}

// readPartition reads up to limit bytes from offset within what the fetch
// budget grants, and adds what the batches hold to f.held. first says no
// batch is in the response yet, so one may exceed limit (KIP-74).
func (b *Broker) readPartition(p *replica.Partition, offset int64, limit int, first bool, f *fetchRead) (replica.FetchResult, error) {
	// Reads of at most 1 MiB, what consumers ask per partition by
	// default, are small: they keep a share of the budget that clients
	// asking for hundreds of megabytes cannot take.
	small := limit <= membudget.SmallMax
	want := limit
	if first {
		// A first batch up to the largest the node accepts is served
		// whole within the budget.
		want = max(want, int(b.cfg.TopicDefaults.MaxMessageBytes))
	}
	want = int(min(int64(want), b.fetchBudget.Ceiling(small)/heldCopies))
	granted := b.fetchBudget.TryAcquire(int64(want)*heldCopies, small)
	got := int(granted / heldCopies)
	if got < want {
		f.squeezed = true
	}
	// Only with the whole allowance granted may the first batch exceed
	// limit; otherwise the read stays within what was granted.
	res, err := p.Fetch(offset, min(limit, got), first && got == want)
	held := int64(len(res.Batches)) * heldCopies
	switch {
	case held > granted:
		// A first batch beyond the allowance: it exists now, so count it.
		b.fetchBudget.Force(held - granted)
	case held < granted:
		b.fetchBudget.Unused(granted - held)
	}
	f.held += held
	if err == nil && len(res.Batches) == 0 && got < want && offset < res.HighWatermark {
		f.short = true
	}
	return res, err
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
