package replica

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// maxBatchesPerProducer is how many recent batches are kept per producer for
// dedupe, as in Kafka (max.in.flight.requests.per.connection <= 5).
const maxBatchesPerProducer = 5

// batchMeta describes one accepted idempotent batch.
type batchMeta struct {
	firstSeq, lastSeq int32
	// op is the leader's pending produce until the batch is appended; index
	// and baseOffset are set then.
	op         *produceOp
	baseOffset int64
	index      uint64
}

// producer is the dedupe state of one producer id.
type producer struct {
	epoch   int16
	batches []*batchMeta // oldest first
	lastTS  int64
}

func (p *producer) clone() *producer {
	c := *p
	c.batches = append([]*batchMeta(nil), p.batches...)
	return &c
}

// change records how to undo one uncommitted update. Producers are
// copied on write, so prev is the unchanged earlier value.
type change struct {
	index uint64 // 0 while the leader's proposal is not yet appended
	pid   int64
	prev  *producer // nil: the producer was unknown before
}

// producerState is the idempotent producer table of a partition. It is
// updated when a batch enters the log (at proposal on the leader, at
// append on followers) so that it always matches the local log; updates
// above the commit index can be undone when raft replaces that part of the
// log. Owned by the partition's raft worker.
type producerState struct {
	m           map[int64]*producer
	uncommitted []*change
}

func newProducerState() *producerState { return &producerState{m: map[int64]*producer{}} }

// seqResult is the verdict on an idempotent batch.
type seqResult int

const (
	seqAccept seqResult = iota
	seqDuplicate
)

// check decides whether batch h may be appended. A duplicate returns the
// batch it repeats.
func (s *producerState) check(h *recordbatch.Header) (seqResult, *batchMeta, error) {
	p := s.m[h.ProducerID]
	if p == nil {
		if h.BaseSequence != 0 {
			return 0, nil, kerr.OutOfOrderSequenceNumber
		}
		return seqAccept, nil, nil
	}
	switch {
	case h.ProducerEpoch < p.epoch:
		return 0, nil, kerr.InvalidProducerEpoch
	case h.ProducerEpoch > p.epoch:
		if h.BaseSequence != 0 {
			return 0, nil, kerr.OutOfOrderSequenceNumber
		}
		return seqAccept, nil, nil
	}
	for _, b := range p.batches {
		if b.firstSeq == h.BaseSequence && b.lastSeq == h.LastSequence() {
			return seqDuplicate, b, nil
		}
	}
	if len(p.batches) > 0 {
		last := p.batches[len(p.batches)-1].lastSeq
		if h.BaseSequence != nextSeq(last) {
			return 0, nil, kerr.OutOfOrderSequenceNumber
		}
	} else if h.BaseSequence != 0 {
		return 0, nil, kerr.OutOfOrderSequenceNumber
	}
	return seqAccept, nil, nil
}

func nextSeq(s int32) int32 {
	if s == 1<<31-1 {
		return 0
	}
	return s + 1
}

// record applies an accepted batch at index, keeping the change undoable
// until committed. On the leader the index is not known yet (0): op gets
// the batch's meta and change, which appended fills in.
func (s *producerState) record(h *recordbatch.Header, index uint64, baseOffset int64, op *produceOp, committed bool) {
	prev := s.m[h.ProducerID]
	var chg *change
	if !committed {
		chg = &change{index: index, pid: h.ProducerID, prev: prev}
		s.uncommitted = append(s.uncommitted, chg)
	}
	var p *producer
	if prev == nil || h.ProducerEpoch != prev.epoch {
		p = &producer{epoch: h.ProducerEpoch}
	} else {
		p = prev.clone()
	}
	s.m[h.ProducerID] = p
	meta := &batchMeta{firstSeq: h.BaseSequence, lastSeq: h.LastSequence(), op: op, baseOffset: baseOffset, index: index}
	p.batches = append(p.batches, meta)
	if len(p.batches) > maxBatchesPerProducer {
		p.batches = p.batches[len(p.batches)-maxBatchesPerProducer:]
	}
	p.lastTS = h.MaxTimestamp
	if op != nil {
		op.meta, op.chg = meta, chg
	}
}

// appended fills in where the leader's proposal landed.
func appended(op *produceOp, index uint64, baseOffset int64) {
	op.index, op.baseOffset = index, baseOffset
	if op.meta != nil {
		op.meta.index, op.meta.baseOffset, op.meta.op = index, baseOffset, nil
	}
	if op.chg != nil {
		op.chg.index = index
	}
	op.meta, op.chg = nil, nil
}

// truncateFrom undoes every change at or above index, newest first.
func (s *producerState) truncateFrom(index uint64) {
	n := len(s.uncommitted)
	for n > 0 && (s.uncommitted[n-1].index >= index || s.uncommitted[n-1].index == 0) {
		c := s.uncommitted[n-1]
		if c.prev == nil {
			delete(s.m, c.pid)
		} else {
			s.m[c.pid] = c.prev
		}
		n--
	}
	s.uncommitted = s.uncommitted[:n]
}

// commit makes changes up to index permanent and settles their metadata.
func (s *producerState) commit(index uint64) {
	n := 0
	for n < len(s.uncommitted) && s.uncommitted[n].index != 0 && s.uncommitted[n].index <= index {
		n++
	}
	s.uncommitted = s.uncommitted[n:]
}

// committedSnapshot returns the table as of the commit index: the current
// one with uncommitted changes undone, on a copy.
func (s *producerState) committedSnapshot() map[int64]*producer {
	m := maps.Clone(s.m)
	for i := len(s.uncommitted) - 1; i >= 0; i-- {
		c := s.uncommitted[i]
		if c.prev == nil {
			delete(m, c.pid)
		} else {
			m[c.pid] = c.prev
		}
	}
	return m
}

// expire drops the producers whose last batch is older than ttl (by its
// newest record timestamp, as Kafka's producer.id.expiration.ms does) and
// that have no uncommitted batch. It returns how many it dropped.
func (s *producerState) expire(nowMs int64, ttl time.Duration) int {
	pending := map[int64]bool{}
	for _, c := range s.uncommitted {
		pending[c.pid] = true
	}
	n := 0
	for pid, p := range s.m {
		if !pending[pid] && nowMs-p.lastTS >= ttl.Milliseconds() {
			delete(s.m, pid)
			n++
		}
	}
	return n
}

// The producer table is saved beside the log (storage state files of kind
// producerStateKind) as of a committed index, so that opening a partition
// replays only the entries after it instead of reading its whole log, as
// Kafka's producer .snapshot files do. Only committed state is saved.
const producerStateKind = "producers"

// savedProducer is one producer in a saved table.
type savedProducer struct {
	ID      int64        `json:"id"`
	Epoch   int16        `json:"epoch"`
	LastTS  int64        `json:"last_ts"`
	Batches []savedBatch `json:"batches"`
}

type savedBatch struct {
	FirstSeq   int32  `json:"first_seq"`
	LastSeq    int32  `json:"last_seq"`
	BaseOffset int64  `json:"base_offset"`
	Index      uint64 `json:"index"`
}

// encodeCommitted encodes the table as of the commit index.
func (s *producerState) encodeCommitted() ([]byte, error) {
	m := s.committedSnapshot()
	out := make([]savedProducer, 0, len(m))
	for id, p := range m {
		sp := savedProducer{ID: id, Epoch: p.epoch, LastTS: p.lastTS}
		for _, b := range p.batches {
			sp.Batches = append(sp.Batches, savedBatch{FirstSeq: b.firstSeq, LastSeq: b.lastSeq, BaseOffset: b.baseOffset, Index: b.index})
		}
		out = append(out, sp)
	}
	return json.Marshal(out)
}

// load replaces the table with a saved one (all of it committed).
func (s *producerState) load(data []byte) error {
	var saved []savedProducer
	if err := json.Unmarshal(data, &saved); err != nil {
		return fmt.Errorf("decode saved producer state: %w", err)
	}
	s.m, s.uncommitted = map[int64]*producer{}, nil
	for _, sp := range saved {
		p := &producer{epoch: sp.Epoch, lastTS: sp.LastTS}
		for _, b := range sp.Batches {
			p.batches = append(p.batches, &batchMeta{firstSeq: b.FirstSeq, lastSeq: b.LastSeq, baseOffset: b.BaseOffset, index: b.Index})
		}
		s.m[sp.ID] = p
	}
	return nil
}

// ProducerInfo is what a partition keeps of one idempotent producer.
type ProducerInfo struct {
	ID    int64
	Epoch int16
	// LastSequence is the sequence number of the producer's last record;
	// -1 if no batch of it is kept.
	LastSequence int32
	// LastTimestamp is the largest record timestamp of its last batch.
	LastTimestamp int64
}

// ActiveProducers returns the idempotent producers of the partition as of
// its commit index (batches proposed but not committed are not counted),
// ordered by producer id. Only a ready leader answers: others get
// NOT_LEADER_OR_FOLLOWER, a failed replica KAFKA_STORAGE_ERROR.
func (p *Partition) ActiveProducers(ctx context.Context) ([]ProducerInfo, error) {
	if err := p.CheckLeader(); err != nil {
		return nil, err
	}
	type result struct {
		producers []ProducerInfo
		err       error
	}
	res, err := raftnode.Query(ctx, p.group, func(raftnode.Loop) result {
		switch {
		case p.failed != nil:
			return result{err: kerr.KafkaStorageError}
		case !p.leader || !p.ready:
			return result{err: errNotLeader}
		}
		m := p.producers.committedSnapshot()
		out := make([]ProducerInfo, 0, len(m))
		for id, pr := range m {
			info := ProducerInfo{ID: id, Epoch: pr.epoch, LastSequence: -1, LastTimestamp: pr.lastTS}
			if n := len(pr.batches); n > 0 {
				info.LastSequence = pr.batches[n-1].lastSeq
			}
			out = append(out, info)
		}
		slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.ID, b.ID) })
		return result{producers: out}
	})
	switch {
	case errors.Is(err, raftnode.ErrStopped):
		return nil, errNotLeader
	case err != nil:
		return nil, kerr.RequestTimedOut
	}
	return res.producers, res.err
}
