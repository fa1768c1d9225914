// Package replica gives a partition its Kafka behaviour on top of a raft
// group: produce with acks 0/1/all, idempotent producer dedupe, the high
// watermark, ISR tracking, and reads for Fetch and ListOffsets.
//
// # The partition loop
//
// All mutable state of a Partition belongs to its raft group's worker and
// is only touched in the StateMachine callbacks and in closures passed to
// Group.Do. In that order, for one produce:
//
//  1. Produce validates the batch (any goroutine) and hands a closure to
//     the worker.
//  2. The closure checks leadership, the ISR size for acks=all and the
//     producer sequence, records the batch in the producer table, and
//     proposes it.
//  3. Appended sees the entry written to the local log and learns its
//     offset (storage assigns it). acks=0 is done.
//  4. Persisted answers acks=1 once the leader's copy is durable.
//  5. Apply moves the high watermark when the entry is committed (durable
//     on a quorum) and answers acks=all.
//
// Other goroutines read the published View and the log, which is safe for
// concurrent use.
package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/chronik-stream/chronik/internal/membudget"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/internal/storage"
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Config is the part of a topic's configuration a replica uses.
type Config struct {
	MinInsyncReplicas int
	MaxMessageBytes   int
	// Compression is the topic's compression.type: the codec every batch
	// is stored with, re-encoded by the leader when the producer used
	// another; "producer" or "" keeps the producer's.
	Compression string
	// LogAppendTime has the leader stamp every batch with its clock
	// (message.timestamp.type=LogAppendTime).
	LogAppendTime bool
	// Timestamps, if set, bounds the producers' record timestamps
	// against the leader's clock.
	Timestamps *TimestampBounds
	Log        storage.LogConfig
}

// TimestampBounds is how far, in milliseconds, before and after the
// leader's clock a record's timestamp may be
// (message.timestamp.before.max.ms and message.timestamp.after.max.ms;
// math.MaxInt64 for no bound on that side); a batch with a record outside
// is refused with INVALID_TIMESTAMP.
type TimestampBounds struct {
	BeforeMs, AfterMs int64
}

// check reports the first record timestamp of the batch outside the
// bounds at now (ms).
func (tb *TimestampBounds) check(o *recordbatch.Opened, now int64) error {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if tb.BeforeMs < now {
		lo = now - tb.BeforeMs
	}
	if tb.AfterMs < math.MaxInt64-now {
		hi = now + tb.AfterMs
	}
	for _, r := range o.Records {
		if r.Timestamp < lo || r.Timestamp > hi {
			return fmt.Errorf("record timestamp %d is outside [%d, %d] (message.timestamp.before.max.ms %d, after.max.ms %d)",
				r.Timestamp, lo, hi, tb.BeforeMs, tb.AfterMs)
		}
	}
	return nil
}

// ProduceResult answers one produce of one batch.
type ProduceResult struct {
	Err            error // nil or a kerr error
	BaseOffset     int64
	LogStartOffset int64
	// LogAppendTime is the time the leader stamped the batch with, on a
	// topic with message.timestamp.type=LogAppendTime; -1 otherwise.
	LogAppendTime int64
}

// View is what other goroutines may read of a partition at any time.
type View struct {
	Leader   uint64 // node id of the leader as this node knows it, 0 if none
	IsLeader bool
	// Ready is set on a leader once it has committed an entry of its own
	// term: only then is its high watermark known to be current.
	Ready    bool
	Term     uint64
	Replicas []uint64
	ISR      []uint64
	// Followers is the leader's view of its followers.
	Followers []Follower
	// Failed is the storage error that stopped the replica's raft group;
	// until the replica is reopened it answers KAFKA_STORAGE_ERROR.
	Failed error
	// Producers counts the idempotent producers whose state is kept.
	Producers int
}

// Follower is how far one follower is behind its leader.
type Follower struct {
	ID         uint64
	LagEntries uint64
	// CaughtUp is when it last had everything the leader had.
	CaughtUp time.Time
}

type produceOp struct {
	data       []byte // the proposal: the batch; dropped once appended
	hdr        recordbatch.Header
	acks       int16
	cb         func(ProduceResult)
	index      uint64
	baseOffset int64
	appendTime int64 // ms, -1 unless the topic uses LogAppendTime
	meta       *batchMeta
	chg        *change
	// dups are duplicates of this batch that arrived before it was appended.
	dups []*produceOp
	// proposed is when the batch was proposed, for commit latency.
	proposed time.Time
	// reserved is what the batch holds of the node's uncommitted budget
	// until it is appended (the reservation then moves to the index).
	reserved int64
}

// Command entries: KindCommand, a command byte, then its payload.
const cmdSetLogStart byte = 1

// Partition is the local replica of one partition.
type Partition struct {
	tp       TopicPartition
	id       Identity
	logName  storage.LogName
	peers    []uint64 // the assignment it was opened with, for a reopen
	log      *storage.Log
	group    *raftnode.Group
	settings Settings
	logger   *slog.Logger
	cfg      atomic.Pointer[Config]
	metrics  Observer

	// Worker-owned state.
	failed    error
	leader    bool
	leaderID  uint64
	term      uint64
	ready     bool
	producers *producerState
	// producersSaved is the index the saved producer table is as of, and
	// bytesSinceSave what was applied since.
	producersSaved uint64
	bytesSinceSave int64
	// pendingLogStart is a leader's log start a snapshot brought, taken
	// once this log commits past it; 0 for none.
	pendingLogStart int64
	proposed        map[*byte]*produceOp
	waitPersist     []*produceOp // acks=1, in index order
	waitCommit      []*produceOp // acks=all, in index order
	// waitReplicas holds acks=all batches committed on a raft quorum that
	// min.insync.replicas asks more replicas of (3 of 3, say): they are
	// answered once that many have them durably. In index order.
	waitReplicas []*produceOp
	// isrWasFull is set once this leader's ISR held every replica.
	isrWasFull bool
	// uncommitted holds, by index, the budget the appended batches this
	// leader proposed hold until they commit.
	uncommitted  []reservation
	budget       *byteBudget
	snapshots    *snapshotStats
	lastProduce  time.Time // when a batch was last proposed
	persisted    uint64
	lastAppended uint64
	replicas     []uint64
	preferred    atomic.Uint64 // the assignment's first replica
	leaderSince  time.Time     // when this node last became leader
	isr          []uint64
	caughtUp     map[uint64]time.Time
	followers    []Follower
	obsIndex     uint64
	obsTime      time.Time
	proposedCmds map[*byte]func(int64, error)
	startCalls   []startCall // DeleteRecords waiting for their command to apply, by index

	view atomic.Pointer[View]
	// damaged counts the damaged frames the last scrub found.
	damaged atomic.Int64
	// readDamaged is set once a read found damage (logged once).
	readDamaged atomic.Bool

	hwMu sync.Mutex
	hwCh chan struct{} // closed and replaced when the high watermark moves
}

type startCall struct {
	index uint64
	cb    func(int64, error)
}

// Observer receives per-partition events for metrics.
type Observer interface {
	// Committed is called when a produce is committed, with the time from
	// proposal to commit.
	Committed(tp TopicPartition, d time.Duration)
}

var errNotLeader = kerr.NotLeaderForPartition

func newPartition(tp TopicPartition, l *storage.Log, s Settings, cfg Config, replicas []uint64, logger *slog.Logger, obs Observer) *Partition {
	p := &Partition{
		tp: tp, log: l, settings: s, logger: logger.With("topic", tp.Topic, "partition", tp.Partition),
		metrics:      obs,
		producers:    newProducerState(),
		proposed:     map[*byte]*produceOp{},
		proposedCmds: map[*byte]func(int64, error){},
		replicas:     replicas,
		caughtUp:     map[uint64]time.Time{},
		hwCh:         make(chan struct{}),
	}
	p.preferred.Store(replicas[0])
	p.cfg.Store(&cfg)
	p.lastAppended = l.LastIndex()
	p.persisted = l.LastIndex()
	p.publish()
	return p
}

// TopicPartition returns the partition's name.
func (p *Partition) TopicPartition() TopicPartition { return p.tp }

// Damaged returns the number of damaged frames the last scrub found in
// the replica's log.
func (p *Partition) Damaged() int64 { return p.damaged.Load() }

// Identity returns the topic id and raft group the replica belongs to.
func (p *Partition) Identity() Identity { return p.id }

// Log returns the partition's log.
func (p *Partition) Log() *storage.Log { return p.log }

// Group returns the partition's raft group.
func (p *Partition) Group() *raftnode.Group { return p.group }

// SetPreferred makes id the replica leadership returns to (the first of
// the partition's assignment, which a reassignment can change).
func (p *Partition) SetPreferred(id uint64) {
	p.preferred.Store(id)
}

// View returns the partition's published state.
func (p *Partition) View() View { return *p.view.Load() }

// Config returns the partition's configuration.
func (p *Partition) Config() Config { return *p.cfg.Load() }

// SetConfig changes the partition's configuration.
func (p *Partition) SetConfig(cfg Config) error {
	if err := p.log.SetConfig(cfg.Log); err != nil {
		return err
	}
	p.cfg.Store(&cfg)
	return nil
}

// HighWatermarkChanged returns a channel closed when the high watermark
// next moves.
func (p *Partition) HighWatermarkChanged() <-chan struct{} {
	p.hwMu.Lock()
	defer p.hwMu.Unlock()
	return p.hwCh
}

func (p *Partition) notifyHW() {
	p.hwMu.Lock()
	close(p.hwCh)
	p.hwCh = make(chan struct{})
	p.hwMu.Unlock()
}

func (p *Partition) publish() {
	if prev := p.view.Load(); prev != nil {
		was, is := prev.IsLeader && prev.Ready, p.leader && p.ready
		if was != is && p.settings.OnLeadership != nil {
			p.settings.OnLeadership(p.tp, is)
		}
		if is && (!was || !slices.Equal(prev.ISR, p.isr)) && p.settings.OnLeaderState != nil {
			p.settings.OnLeaderState(p.tp, p.term, slices.Clone(p.isr))
		}
	}
	p.view.Store(&View{
		Leader: p.leaderID, IsLeader: p.leader, Ready: p.ready, Term: p.term,
		Replicas: slices.Clone(p.replicas), ISR: slices.Clone(p.isr), Followers: p.followers,
		Failed: p.failed, Producers: len(p.producers.m),
	})
}

// BindGroup implements raftnode.GroupBinder.
func (p *Partition) BindGroup(g *raftnode.Group) { p.group = g }

// Produce appends one batch. It takes ownership of batch: the caller must
// not use it afterwards. cb is called once with the outcome (for acks=0
// too, though nobody waits for it then). It may run on the raft worker and
// must not block.
//
// The batch's bytes are reserved from the node's budget of uncommitted
// produce bytes until it commits (or is dropped): while the budget is
// spent, Produce waits, up to timeout (then REQUEST_TIMED_OUT), so a
// producer faster than replication is slowed down instead of growing the
// node's memory.
func (p *Partition) Produce(batch []byte, acks int16, timeout time.Duration, cb func(ProduceResult)) {
	fail := func(err error) { cb(ProduceResult{Err: err, BaseOffset: -1, LogStartOffset: -1, LogAppendTime: -1}) }
	h, err := recordbatch.ValidateProduced(batch)
	if err != nil {
		p.logger.Warn("rejecting corrupt batch", "err", err)
		fail(kerr.CorruptMessage)
		return
	}
	cfg := p.cfg.Load()
	if max := cfg.MaxMessageBytes; max > 0 && len(batch) > max {
		fail(kerr.MessageTooLarge)
		return
	}
	// Recompressing and checking timestamps or keys need the records:
	// the batch is decoded once for all of them.
	codec, recompress := storedCodec(cfg.Compression)
	recompress = recompress && h.Compression() != codec
	checkTimestamps := cfg.Timestamps != nil && !cfg.LogAppendTime
	if recompress || checkTimestamps || cfg.Log.Compact {
		var code error
		if batch, code = p.checkRecords(batch, cfg, checkTimestamps, recompress, codec, timeout); code != nil {
			fail(code)
			return
		}
		h, _ = recordbatch.ParseHeader(batch)
	}
	appendTime := int64(-1)
	if cfg.LogAppendTime {
		appendTime = time.Now().UnixMilli()
		recordbatch.SetLogAppendTime(batch, appendTime)
		h, _ = recordbatch.ParseHeader(batch)
	}
	if h.IsTransactional() {
		fail(kerr.TransactionalIDAuthorizationFailed)
		return
	}
	if p.view.Load().Failed != nil {
		fail(kerr.KafkaStorageError)
		return
	}
	if p.group.DiskFull() {
		// Fail fast (retriable) rather than queue behind appends that wait
		// for space.
		fail(kerr.KafkaStorageError)
		return
	}
	// The batch becomes the raft entry as it is (no copy); its base offset
	// is set when it is appended, and 0 until then marks it as a batch
	// (storage.IsBatchData).
	recordbatch.SetBaseOffset(batch, 0)
	op := &produceOp{data: batch, hdr: h, acks: acks, cb: cb, appendTime: appendTime}
	if op.reserved, err = p.budget.acquire(len(batch), timeout); err != nil {
		fail(kerr.RequestTimedOut)
		return
	}
	if !p.group.Do(func(l raftnode.Loop) { p.propose(l, op) }) {
		p.budget.release(op.reserved)
		fail(errNotLeader)
	}
}

// openWait bounds how long a timestamp lookup waits for the
// decompression budget.
const openWait = 30 * time.Second

// checkRecords decodes a produced batch's records for the checks cfg asks
// (timestamps, keys of a compacted topic) and the recompression to codec,
// holding them in the node's decompression budget, which it waits for up
// to timeout. It returns the batch to append, or the error to answer.
func (p *Partition) checkRecords(batch []byte, cfg *Config, checkTimestamps, recompress bool, codec int, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	o, release, err := recordbatch.OpenWithin(batch, p.settings.Decompress, recompress, ctx.Done())
	cancel()
	switch {
	case errors.Is(err, membudget.ErrCanceled):
		return nil, kerr.RequestTimedOut
	case errors.Is(err, recordbatch.ErrTooLarge):
		p.logger.Warn("rejecting batch too large to decompress", "err", err)
		return nil, kerr.MessageTooLarge
	case err != nil:
		p.logger.Warn("rejecting batch whose records cannot be read", "err", err)
		return nil, kerr.CorruptMessage
	}
	defer release()
	if checkTimestamps {
		if err := cfg.Timestamps.check(o, time.Now().UnixMilli()); err != nil {
			p.logger.Debug("rejecting batch", "err", err)
			return nil, kerr.InvalidTimestamp
		}
	}
	if cfg.Log.Compact {
		// Compaction keeps the latest record per key: a record without
		// one has no place in the log (Kafka answers INVALID_RECORD too).
		if err := requireKeys(o); err != nil {
			p.logger.Debug("rejecting batch for a compacted topic", "err", err)
			return nil, kerr.InvalidRecord
		}
	}
	if recompress {
		if batch, err = o.Recompress(codec); err != nil {
			p.logger.Warn("rejecting batch that cannot be recompressed", "err", err)
			return nil, kerr.CorruptMessage
		}
	}
	return batch, nil
}

func (p *Partition) respond(op *produceOp, err error) {
	if op.reserved > 0 {
		// Not proposed, or dropped before it was appended: its bytes are
		// no longer in the node's memory on its account.
		p.budget.release(op.reserved)
		op.reserved = 0
	}
	res := ProduceResult{Err: err, BaseOffset: op.baseOffset, LogStartOffset: p.log.LogStartOffset(), LogAppendTime: op.appendTime}
	if err != nil {
		res.BaseOffset, res.LogStartOffset, res.LogAppendTime = -1, -1, -1
	}
	op.cb(res)
	for _, d := range op.dups {
		d.baseOffset, d.appendTime = op.baseOffset, op.appendTime
		p.respond(d, err)
	}
}

// propose runs on the worker.
func (p *Partition) propose(l raftnode.Loop, op *produceOp) {
	if p.failed != nil {
		p.respond(op, kerr.KafkaStorageError)
		return
	}
	if !p.leader {
		p.respond(op, errNotLeader)
		return
	}
	if op.acks == -1 && len(p.isr) < p.minInsync() {
		p.respond(op, kerr.NotEnoughReplicas)
		return
	}
	idempotent := op.hdr.ProducerID >= 0
	if idempotent {
		verdict, orig, err := p.producers.check(&op.hdr)
		if err != nil {
			p.logger.Debug("producer sequence rejected", "producer_id", op.hdr.ProducerID,
				"epoch", op.hdr.ProducerEpoch, "sequence", op.hdr.BaseSequence, "err", err)
			p.respond(op, err)
			return
		}
		if verdict == seqDuplicate {
			p.answerDuplicate(op, orig)
			return
		}
	}
	op.proposed = time.Now()
	p.lastProduce = op.proposed
	if err := l.Propose(op.data); err != nil {
		p.respond(op, errNotLeader)
		return
	}
	if idempotent {
		p.producers.record(&op.hdr, 0, -1, op, false)
	}
	p.proposed[unsafe.SliceData(op.data)] = op
}

// answerDuplicate answers a repeated batch with the original's offset, once
// the original is as durable as this request asks.
func (p *Partition) answerDuplicate(op *produceOp, orig *batchMeta) {
	op.data = nil
	p.budget.release(op.reserved) // a duplicate is never appended
	op.reserved = 0
	if orig.op != nil { // not appended yet
		orig.op.dups = append(orig.op.dups, op)
		return
	}
	op.index, op.baseOffset = orig.index, orig.baseOffset
	p.enqueueWait(op)
}

// enqueueWait makes op wait for what its acks require, or answers it.
func (p *Partition) enqueueWait(op *produceOp) {
	switch {
	case op.acks == 0:
		p.respond(op, nil)
	case op.acks == 1 && op.index <= p.persisted:
		p.respond(op, nil)
	case op.acks == 1:
		p.waitPersist = insertByIndex(p.waitPersist, op)
	case op.index <= p.log.Committed():
		p.respond(op, nil)
	default:
		p.waitCommit = insertByIndex(p.waitCommit, op)
	}
}

func insertByIndex(q []*produceOp, op *produceOp) []*produceOp {
	i, _ := slices.BinarySearchFunc(q, op.index, func(o *produceOp, idx uint64) int {
		if o.index <= idx {
			return -1
		}
		return 1
	})
	return slices.Insert(q, i, op)
}

// Appended implements raftnode.StateMachine.
func (p *Partition) Appended(entries []raftpb.Entry) {
	if first := entries[0].Index; first <= p.lastAppended {
		p.truncatedFrom(first)
	}
	committed := p.log.Committed()
	for i := range entries {
		e := &entries[i]
		if cb, ok := p.proposedCmds[unsafe.SliceData(e.Data)]; ok && len(e.Data) > 0 {
			delete(p.proposedCmds, unsafe.SliceData(e.Data))
			p.startCalls = append(p.startCalls, startCall{index: e.Index, cb: cb})
			continue
		}
		if !storage.IsBatchData(storage.EntryType(e.Type), e.Data) {
			continue
		}
		base, err := p.log.OffsetAfter(e.Index - 1)
		if err != nil {
			p.logger.Error("offset of appended entry", "index", e.Index, "err", err)
			continue
		}
		if op, ok := p.proposed[unsafe.SliceData(e.Data)]; ok {
			delete(p.proposed, unsafe.SliceData(e.Data))
			appended(op, e.Index, base)
			if op.reserved > 0 {
				p.uncommitted = append(p.uncommitted, reservation{index: e.Index, bytes: op.reserved})
				op.reserved = 0
			}
			op.data = nil
			dups := op.dups
			op.dups = nil
			p.enqueueWait(op)
			for _, d := range dups {
				d.index, d.baseOffset = op.index, op.baseOffset
				p.enqueueWait(d)
			}
			continue
		}
		h, err := recordbatch.ParseHeader(e.Data)
		if err == nil && h.ProducerID >= 0 {
			p.producers.record(&h, e.Index, base, nil, e.Index <= committed)
		}
	}
	p.lastAppended = entries[len(entries)-1].Index
}

// truncatedFrom handles raft replacing the log from index on.
func (p *Partition) truncatedFrom(index uint64) {
	p.producers.truncateFrom(index)
	p.releaseUncommitted(func(r reservation) bool { return r.index >= index })
	keep := func(q []*produceOp) []*produceOp {
		return slices.DeleteFunc(q, func(op *produceOp) bool {
			if op.index >= index {
				p.respond(op, errNotLeader)
				return true
			}
			return false
		})
	}
	p.waitPersist, p.waitCommit = keep(p.waitPersist), keep(p.waitCommit)
	p.startCalls = slices.DeleteFunc(p.startCalls, func(c startCall) bool {
		if c.index >= index {
			c.cb(-1, errNotLeader)
			return true
		}
		return false
	})
	p.persisted = min(p.persisted, index-1)
}

// Persisted implements raftnode.StateMachine.
func (p *Partition) Persisted(index, term uint64) {
	if index <= p.persisted {
		return
	}
	if t, err := p.log.Term(index); err != nil || t != term {
		return // the entry was replaced since: this says nothing of its successor
	}
	p.persisted = index
	n := 0
	for n < len(p.waitPersist) && p.waitPersist[n].index <= index {
		p.respond(p.waitPersist[n], nil)
		n++
	}
	p.waitPersist = slices.Delete(p.waitPersist, 0, n)
}

// Apply implements raftnode.StateMachine.
func (p *Partition) Apply(entries []raftpb.Entry) {
	last := entries[len(entries)-1].Index
	if err := p.log.Commit(last); err != nil {
		p.logger.Error("commit", "index", last, "err", err)
		return
	}
	p.producers.commit(last)
	for i := range entries {
		p.bytesSinceSave += int64(len(entries[i].Data))
	}
	p.releaseUncommitted(func(r reservation) bool { return r.index <= last })
	p.maybeSaveProducers(false)
	p.applyPendingLogStart()
	for i := range entries {
		e := &entries[i]
		if p.leader && e.Term == p.term && !p.ready {
			p.ready = true
		}
		if e.Type == raftpb.EntryNormal && len(e.Data) > 1 && e.Data[0] == storage.KindCommand {
			p.applyCommand(e)
		}
	}
	n := 0
	beyondQuorum := p.minInsync() > len(p.replicas)/2+1
	for n < len(p.waitCommit) && p.waitCommit[n].index <= last {
		op := p.waitCommit[n]
		if p.metrics != nil && !op.proposed.IsZero() {
			p.metrics.Committed(p.tp, time.Since(op.proposed))
		}
		if beyondQuorum {
			p.waitReplicas = append(p.waitReplicas, op)
		} else {
			// A raft quorum has it durably, and min.insync.replicas is no
			// more than a quorum; an applied entry is durable here too.
			p.respond(op, nil)
		}
		n++
	}
	p.waitCommit = slices.Delete(p.waitCommit, 0, n)
	p.publish()
	p.notifyHW()
}

// reservation is the uncommitted budget an appended batch holds.
type reservation struct {
	index uint64
	bytes int64
}

// releaseUncommitted returns to the budget the reservations done says are
// over, keeping the others in order.
func (p *Partition) releaseUncommitted(done func(reservation) bool) {
	p.uncommitted = slices.DeleteFunc(p.uncommitted, func(r reservation) bool {
		if done(r) {
			p.budget.release(r.bytes)
			return true
		}
		return false
	})
}

// minInsync is the topic's min.insync.replicas, capped at the number of
// replicas, as Redpanda does: a topic with fewer replicas than the
// cluster's default would otherwise refuse every acks=all write.
func (p *Partition) minInsync() int {
	return max(1, min(p.cfg.Load().MinInsyncReplicas, len(p.replicas)))
}

// Progressed implements raftnode.ProgressObserver: batches waiting for
// more replicas than a quorum are answered as followers report them
// durable, and a leader whose ISR is not full yet (a new leader starts
// with itself) lets followers in as soon as they have caught up.
func (p *Partition) Progressed(l raftnode.Loop) {
	if !p.leader || p.failed != nil {
		return
	}
	if len(p.waitReplicas) > 0 {
		p.answerReplicated(l)
	}
	if len(p.isr) < len(p.replicas) {
		last, joins := p.log.LastIndex(), false
		l.WithProgress(func(id uint64, pr tracker.Progress) {
			joins = joins || pr.Match >= last && !slices.Contains(p.isr, id)
		})
		if joins {
			p.refreshISR(l)
		}
	}
}

// answerReplicated answers the acks=all batches now durable on at least
// min.insync.replicas voters (the leader among them: raft counts its own
// durable index as its match).
func (p *Partition) answerReplicated(l raftnode.Loop) {
	var matches []uint64
	l.WithProgress(func(_ uint64, pr tracker.Progress) {
		if !pr.IsLearner {
			matches = append(matches, pr.Match)
		}
	})
	need := p.minInsync()
	n := 0
	for ; n < len(p.waitReplicas); n++ {
		op, have := p.waitReplicas[n], 0
		for _, m := range matches {
			if m >= op.index {
				have++
			}
		}
		if have < need {
			break
		}
		p.respond(op, nil)
	}
	p.waitReplicas = slices.Delete(p.waitReplicas, 0, n)
}

func (p *Partition) applyCommand(e *raftpb.Entry) {
	var err error
	var start int64
	switch e.Data[1] {
	case cmdSetLogStart:
		if len(e.Data) != 10 {
			err = fmt.Errorf("malformed log start command at %d", e.Index)
			break
		}
		start = int64(binary.BigEndian.Uint64(e.Data[2:]))
		if err = p.log.SetLogStartOffset(min(start, p.log.HighWatermark())); err == nil {
			start = p.log.LogStartOffset()
		}
	default:
		err = fmt.Errorf("unknown command %d at %d", e.Data[1], e.Index)
	}
	if err != nil {
		p.logger.Error("applying command", "err", err)
	}
	if len(p.startCalls) > 0 && p.startCalls[0].index == e.Index {
		p.startCalls[0].cb(start, err)
		p.startCalls = p.startCalls[1:]
	}
}

// RoleChanged implements raftnode.StateMachine.
func (p *Partition) RoleChanged(ss raft.SoftState, term uint64) {
	wasLeader := p.leader
	p.leader = ss.RaftState == raft.StateLeader
	p.leaderID = ss.Lead
	if term != p.term || !p.leader {
		p.ready = false
	}
	p.term = term
	if wasLeader && !p.leader {
		p.abandonRequests(errNotLeader)
	}
	if p.leader && !wasLeader {
		// A new leader knows only itself to be caught up; a follower joins
		// the ISR once it has the leader's entries (at the latest when the
		// leader's first entry commits, which a quorum must have).
		p.leaderSince = time.Now()
		p.isr, p.isrWasFull = []uint64{p.settings.NodeID}, len(p.replicas) == 1
		clear(p.caughtUp)
		p.obsIndex, p.obsTime = 0, time.Time{}
	}
	if !p.leader {
		p.isr, p.followers = nil, nil
	}
	p.publish()
}

// abandonRequests answers everything in flight with err when leadership is
// lost or the group stops; the clients retry against the new leader
// (idempotent producers are deduped).
func (p *Partition) abandonRequests(err error) {
	// Entries this node proposed may still commit under another leader;
	// they no longer count as this leader's.
	p.releaseUncommitted(func(reservation) bool { return true })
	for k, op := range p.proposed {
		p.respond(op, err)
		delete(p.proposed, k)
	}
	for _, q := range [][]*produceOp{p.waitPersist, p.waitCommit, p.waitReplicas} {
		for _, op := range q {
			p.respond(op, err)
		}
	}
	p.waitPersist, p.waitCommit, p.waitReplicas = nil, nil, nil
	for _, c := range p.startCalls {
		c.cb(-1, err)
	}
	for k, cb := range p.proposedCmds {
		cb(-1, err)
		delete(p.proposedCmds, k)
	}
	p.startCalls = nil
}

// Failed implements raftnode.StateMachine: the replica stops leading and
// answers KAFKA_STORAGE_ERROR (retriable: clients refresh their metadata
// and find the new leader) until it is reopened.
func (p *Partition) Failed(err error) {
	p.failed = err
	p.leader, p.ready, p.leaderID = false, false, 0
	p.isr, p.followers = nil, nil
	p.abandonRequests(kerr.KafkaStorageError)
	p.publish()
	p.notifyHW() // wake long-polling fetches: they answer the error now
}

// Stopped implements raftnode.StateMachine. A replica stopped cleanly
// saves its producer table, so the next open reads nothing of its log.
func (p *Partition) Stopped() {
	if p.failed == nil {
		p.maybeSaveProducers(true)
	}
	err := errNotLeader
	if p.failed != nil {
		err = kerr.KafkaStorageError
	}
	p.abandonRequests(err)
	p.notifyHW()
}

// FetchResult is what a Fetch returns.
type FetchResult struct {
	Batches        []byte
	HighWatermark  int64
	LogStartOffset int64
	NextOffset     int64
}

// Fetch reads committed batches from offset. Only the leader serves reads,
// and only once it is Ready.
func (p *Partition) Fetch(offset int64, maxBytes int, minOne bool) (FetchResult, error) {
	if err := p.CheckLeader(); err != nil {
		return FetchResult{}, err
	}
	hw := p.log.HighWatermark()
	res, err := p.log.Read(offset, maxBytes, hw, minOne)
	out := FetchResult{Batches: res.Batches, HighWatermark: hw, LogStartOffset: p.log.LogStartOffset(), NextOffset: res.NextOffset}
	var oor *storage.OffsetOutOfRangeError
	var ce *storage.CorruptionError
	switch {
	case err == nil:
	case errors.As(err, &oor):
		return out, kerr.OffsetOutOfRange
	case errors.As(err, &ce):
		p.readDamage(ce)
		return out, kerr.KafkaStorageError
	default:
		p.logger.Error("read failed", "offset", offset, "err", err)
		return out, kerr.KafkaStorageError
	}
	return out, nil
}

// readDamage handles damage a read found in the log. A replica with
// others fails, so that its leadership moves to a replica that can serve
// the batch, and reopening it refetches the damaged entries; until then
// consumers would be stuck at the damage. A single replica has no other
// copy: the read fails and the rest stays served.
func (p *Partition) readDamage(ce *storage.CorruptionError) {
	if len(p.peers) < 2 {
		return
	}
	if p.readDamaged.CompareAndSwap(false, true) {
		p.logger.Error("a read found damaged entries: stopping the replica to repair them from the others", "err", ce)
	}
	p.group.Fail(ce)
}

// CheckLeader returns nil if this replica is a ready leader,
// KAFKA_STORAGE_ERROR if it failed, else NOT_LEADER_OR_FOLLOWER.
func (p *Partition) CheckLeader() error {
	v := p.view.Load()
	switch {
	case v.Failed != nil:
		return kerr.KafkaStorageError
	case !v.IsLeader || !v.Ready:
		return errNotLeader
	}
	return nil
}

// OffsetForTimestamp returns the first offset whose record timestamp is at
// least ts, and that timestamp; -1, -1 if there is none.
func (p *Partition) OffsetForTimestamp(ts int64) (int64, int64, error) {
	if err := p.CheckLeader(); err != nil {
		return -1, -1, err
	}
	batch, err := p.log.FindTimestamp(ts)
	if err != nil {
		return -1, -1, kerr.KafkaStorageError
	}
	if batch == nil {
		return -1, -1, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), openWait)
	o, release, err := recordbatch.OpenWithin(batch, p.settings.Decompress, false, ctx.Done())
	cancel()
	switch {
	case errors.Is(err, membudget.ErrCanceled):
		return -1, -1, kerr.RequestTimedOut
	case err != nil:
		p.logger.Error("cannot read the batch holding a timestamp", "timestamp", ts, "err", err)
		return -1, -1, kerr.KafkaStorageError
	}
	defer release()
	start := p.log.LogStartOffset()
	for _, r := range o.Records {
		if r.Offset >= start && r.Timestamp >= ts {
			return r.Offset, r.Timestamp, nil
		}
	}
	return -1, -1, nil
}

// OffsetOfMaxTimestamp returns the first offset holding the largest record
// timestamp of the log, and that timestamp; -1, -1 if there is none (or if
// that record is before the log start).
func (p *Partition) OffsetOfMaxTimestamp() (int64, int64, error) {
	if err := p.CheckLeader(); err != nil {
		return -1, -1, err
	}
	m := p.log.MaxTimestamp()
	if m < 0 {
		return -1, -1, nil
	}
	return p.OffsetForTimestamp(m)
}

// DeleteRecords moves the log start offset to offset (-1: the high
// watermark) on every replica. cb gets the new log start offset.
func (p *Partition) DeleteRecords(offset int64, cb func(int64, error)) {
	if err := p.CheckLeader(); err != nil {
		cb(-1, err)
		return
	}
	hw := p.log.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		cb(-1, kerr.OffsetOutOfRange)
		return
	}
	if offset <= p.log.LogStartOffset() {
		cb(p.log.LogStartOffset(), nil)
		return
	}
	data := make([]byte, 10)
	data[0], data[1] = storage.KindCommand, cmdSetLogStart
	binary.BigEndian.PutUint64(data[2:], uint64(offset))
	ok := p.group.Do(func(l raftnode.Loop) {
		if p.failed != nil {
			cb(-1, kerr.KafkaStorageError)
			return
		}
		if !p.leader {
			cb(-1, errNotLeader)
			return
		}
		if err := l.Propose(data); err != nil {
			cb(-1, errNotLeader)
			return
		}
		p.proposedCmds[unsafe.SliceData(data)] = cb
	})
	if !ok {
		cb(-1, errNotLeader)
	}
}

// requireKeys checks that every record of a batch has a key.
func requireKeys(o *recordbatch.Opened) error {
	for _, r := range o.Records {
		if r.Key == nil {
			return fmt.Errorf("record at offset delta %d has no key; a compacted topic accepts only keyed records", r.Offset-o.Header.BaseOffset)
		}
	}
	return nil
}

// storedCodec maps a compression.type to the batch codec it imposes; false
// for producer (keep the producer's).
func storedCodec(compressionType string) (int, bool) {
	switch compressionType {
	case "uncompressed":
		return recordbatch.CompressionNone, true
	case "gzip":
		return recordbatch.CompressionGzip, true
	case "snappy":
		return recordbatch.CompressionSnappy, true
	case "lz4":
		return recordbatch.CompressionLZ4, true
	case "zstd":
		return recordbatch.CompressionZstd, true
	}
	return 0, false
}
