package group

import (
	"bytes"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// Compaction. Chronik has no log cleaner, so the coordinator bounds each
// offsets partition itself. When CompactThreshold bytes were appended since
// the last compaction:
//
//  1. Barrier: new writes are held back until every write in flight has its
//     outcome. Then memory holds exactly what replaying the log gives.
//  2. The high watermark H is read: the log end, as every write is done.
//  3. The live state (each group's last metadata record, each committed
//     offset) is appended as a snapshot, its first record marked with the
//     compactionHeader; the held writes are issued right after it, so in
//     the log every later commit follows the snapshot.
//  4. Once the snapshot is committed, the batch at H is read back; if it is
//     the snapshot's first batch, DeleteRecords(H) drops everything before.
//     Otherwise (someone else wrote, or H was stale) nothing is deleted.
//
// Replaying from H gives the snapshot (the state at the barrier) and then
// every later write: exactly the live state. Tombstones and overwritten
// values are gone. A failure at any step only skips the deletion; the
// next threshold tries again.

// maybeCompact starts a compaction if enough was written.
func (s *shard) maybeCompact() {
	if s.compacting || s.stopped || !s.loaded || s.sinceCompaction < s.c.cfg.CompactThreshold {
		return
	}
	s.compacting = true
	s.barrier = true
	s.log.Info("compacting offsets partition", "written", s.sinceCompaction)
	if len(s.writes) == 0 {
		s.snapshot()
	}
}

// snapshot runs when the barrier is up and no write is in flight.
func (s *shard) snapshot() {
	s.barrier = false
	held := s.held
	s.held = nil
	release := func() {
		for _, w := range held {
			s.issue(w)
			s.sinceCompaction += w.size
		}
	}
	parts := s.c.parts
	_, _, hw, err := parts.Read(s.p, parts.LogStartOffset(s.p), 1)
	if err != nil {
		s.log.Warn("compaction: reading the high watermark failed", "err", err)
		s.compacting = false
		release()
		return
	}
	s.sinceCompaction = 0
	recs := s.liveRecords()
	if len(recs) == 0 {
		release()
		s.deleteBefore(hw)
		return
	}
	marker := []kmsg.Header{{Key: compactionHeader, Value: []byte(strconv.FormatInt(hw, 10))}}
	batches := buildBatches(recs, time.Now().UnixMilli(), marker)
	first := batches[0]
	w := &write{batches: batches, left: len(batches), apply: func(err error) {
		if err != nil {
			s.log.Warn("compaction: writing the snapshot failed", "err", err)
			s.compacting = false
			return
		}
		s.verifyAndDelete(hw, first)
	}}
	for _, b := range batches {
		w.size += int64(len(b))
	}
	s.issue(w)
	release()
	s.log.Info("compaction snapshot written", "at", hw, "records", len(recs), "batches", len(batches), "bytes", w.size)
}

// liveRecords is the live state of the partition: what replaying it gives.
func (s *shard) liveRecords() []record {
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var recs []record
	for _, id := range ids {
		g := s.groups[id]
		if g.meta != nil {
			recs = append(recs, record{groupKey(id), g.meta})
		}
		tps := make([]topicPartition, 0, len(g.offsets))
		for tp := range g.offsets {
			tps = append(tps, tp)
		}
		slices.SortFunc(tps, compareTP)
		for _, tp := range tps {
			recs = append(recs, record{offsetKey(id, tp), offsetValue(g.offsets[tp])})
		}
	}
	return recs
}

// verifyAndDelete deletes the log before start if the snapshot's first
// batch is there.
func (s *shard) verifyAndDelete(start int64, first []byte) {
	b, _, _, err := s.c.parts.Read(s.p, start, len(first))
	if err != nil {
		s.log.Warn("compaction: reading the snapshot back failed", "err", err)
		s.compacting = false
		return
	}
	n := recordbatch.Size(b)
	if n != len(first) || recordbatch.BaseOffset(b) != start ||
		!bytes.Equal(b[recordbatch.CRCStart:n], first[recordbatch.CRCStart:]) {
		s.log.Warn("compaction: the snapshot is not at the expected offset; nothing deleted", "offset", start)
		s.compacting = false
		return
	}
	s.deleteBefore(start)
}

func (s *shard) deleteBefore(offset int64) {
	if offset <= s.c.parts.LogStartOffset(s.p) {
		s.compacting = false
		return
	}
	s.c.parts.DeleteRecords(s.p, offset, func(err error) {
		s.q.push(func() {
			s.compacting = false
			if err != nil {
				s.log.Warn("compaction: deleting records failed", "offset", offset, "err", err)
				return
			}
			s.log.Info("compaction: log start moved", "offset", offset)
		})
	})
}
