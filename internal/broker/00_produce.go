package broker

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/topicname"
	"github.com/chronik-stream/chronik/internal/wire"
)

// Produce: v3-9
//
// Behavior:
// * Each partition's records must be one magic v2 batch; it is checked
// (CRC-32C, lengths) and stored as sent, only baseOffset and the leader
// epoch are set.
// * acks=0: no response. acks=1: answered once the leader's copy is
// durable. acks=all (-1): answered once the batch is committed on a quorum,
// and refused with NOT_ENOUGH_REPLICAS while the ISR is smaller than
// min.insync.replicas. Other acks values get INVALID_REQUIRED_ACKS.
// * A partition not answered within the request timeout gets
// REQUEST_TIMED_OUT (the batch may still be committed later, as in Kafka).
// So does one that waited that long for room in the node's budget of
// uncommitted bytes (raft.advanced.max_uncommitted_bytes): back-pressure
// on producers faster than replication.
// * Idempotent producers: a retried batch gets its original offset, a
// sequence gap OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch
// INVALID_PRODUCER_EPOCH.
// * Transactional produce is not supported (no transaction APIs are
// advertised). Clients may not write to reserved topics
// (__consumer_offsets, __transaction_state, __cluster_metadata):
// INVALID_TOPIC_EXCEPTION, as Kafka answers for internal topics. An
// unknown topic gets UNKNOWN_TOPIC_OR_PARTITION (Produce never creates).
//
// Version notes:
// * v0-2 carry the old message formats (magic 0 and 1), which are not
// stored: every partition of such a request gets
// UNSUPPORTED_FOR_MESSAGE_FORMAT. They are advertised anyway because
// librdkafka before 2.11.1 turns gzip, snappy and lz4 off, silently, for a
// broker whose lowest Produce version is above 0.
// * v3 is the first version with record batches v2; v5 log start offset;
// v8 record errors; v9 flexible.
func init() { register(kmsg.Produce, 0, 9, (*Broker).handleProduce) }

func (b *Broker) handleProduce(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	acks := req.Acks
	validAcks := acks == 0 || acks == 1 || acks == -1
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}

	var mu sync.Mutex
	pending := 0
	finished := false
	// timer bounds the wait; it is stopped when the answer goes out, so it
	// does not keep the request (and its records) alive for the timeout.
	var timer *time.Timer
	finish := func() {
		if timer != nil {
			timer.Stop()
		}
		if acks == 0 {
			respond(nil)
		} else {
			respond(resp)
		}
	}
	// Every partition gets a slot in the response now; results fill it in.
	type slot struct{ t, p int }
	set := func(s slot, res replica.ProduceResult) {
		sp := &resp.Topics[s.t].Partitions[s.p]
		sp.ErrorCode = b.errCode(res.Err)
		sp.BaseOffset = res.BaseOffset
		sp.LogStartOffset = res.LogStartOffset
		sp.LogAppendTime = res.LogAppendTime
	}
	var calls []func()
	for ti, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			st.Partitions = append(st.Partitions, sp)
			s := slot{ti, pi}
			var err error
			var p *replica.Partition
			switch {
			case req.Version < 3:
				err = describe(kerr.UnsupportedForMessageFormat, "message format v0/v1 (Produce v0-v2) is not supported; use Produce v3 or later")
			case !validAcks:
				err = kerr.InvalidRequiredAcks
			case req.TransactionID != nil:
				err = kerr.TransactionalIDAuthorizationFailed
			case topicname.Reserved(rt.Topic):
				err = refuseReserved(rt.Topic, "write to")
			default:
				p, err = b.partition(rt.Topic, rp.Partition)
			}
			if err != nil {
				st.Partitions[pi].ErrorCode = b.errCode(err)
				continue
			}
			pending++
			records := rp.Records
			calls = append(calls, func() {
				p.Produce(records, acks, timeout, func(res replica.ProduceResult) {
					mu.Lock()
					defer mu.Unlock()
					if finished {
						return
					}
					set(s, res)
					pending--
					if pending == 0 {
						finished = true
						finish()
					}
				})
			})
		}
		resp.Topics = append(resp.Topics, st)
	}
	if pending == 0 {
		finished = true
		finish()
		return
	}
	if acks == 0 {
		finished = true
	}
	// Proposals are made here, on the connection's reader, so that the
	// requests of one connection reach each partition in order.
	for _, call := range calls {
		call()
	}
	if acks == 0 {
		respond(nil)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if finished {
		return
	}
	timer = time.AfterFunc(timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return
		}
		finished = true
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				sp := &resp.Topics[ti].Partitions[pi]
				if sp.ErrorCode == 0 && sp.BaseOffset == -1 {
					sp.ErrorCode = kerr.RequestTimedOut.Code
				}
			}
		}
		finish()
	})
}
