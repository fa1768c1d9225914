package storage

import (
	"encoding/binary"
	"errors"
	"sort"
)

var (
	errBadLength     = errors.New("frame length does not fit the data read")
	errIndexMismatch = errors.New("frame does not match its index entry")
)

// span is a run of consecutive frames of one segment to read with one call.
// Positions are captured under the log's lock, so reading needs only the
// segment reference.
type span struct {
	seg        *segment
	start, end int64  // byte range in the segment file
	firstIndex uint64 // raft index of the first frame
}

func newSpan(s *segment, from, to int) span {
	s.acquire()
	return span{seg: s, start: int64(s.idx.at(from).pos), end: s.idx.at(to - 1).end(), firstIndex: s.baseIndex + uint64(from)}
}

func frameLength(b []byte) int {
	if len(b) < 4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(b))
}

// batchNextOffset reads the offset after a batch from its header.
func batchNextOffset(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
}

func releaseSpans(spans []span) {
	for _, s := range spans {
		s.seg.release()
	}
}

// ReadResult holds the batches a Read returns.
type ReadResult struct {
	// Batches are whole record batches, back to back, as producers sent them
	// (with their assigned offsets). Empty when nothing is readable.
	Batches []byte
	// NextOffset is the offset after the last batch returned.
	NextOffset int64
	// Count is the number of batches.
	Count int
}

// Read returns the batches starting with the one that contains offset,
// stopping before maxBytes would be exceeded and before any batch that ends
// past limit (the high watermark, or the log end for a follower). If minOne
// is set, the first batch is returned even when it is larger than maxBytes.
// An offset outside [LogStartOffset, NextOffset] gives an
// *OffsetOutOfRangeError. Every batch is checked against its CRCs on the way
// out; a damaged one ends the read (the good batches before it are returned)
// or, if it is the first, gives a *CorruptionError.
func (l *Log) Read(offset int64, maxBytes int, limit int64, minOne bool) (ReadResult, error) {
	spans, err := l.planRead(offset, maxBytes, limit, minOne)
	if err != nil || len(spans) == 0 {
		return ReadResult{NextOffset: offset}, err
	}
	defer releaseSpans(spans)
	res := ReadResult{NextOffset: offset}
	for _, sp := range spans {
		buf, err := sp.seg.readRange(sp.start, sp.end)
		if err != nil {
			return res, err
		}
		// Compact the batches over the frame headers, in place.
		w := 0
		for r, i := 0, uint64(0); r < len(buf); i++ {
			n := frameLength(buf[r:])
			if n < frameHeaderSize || r+n > len(buf) {
				return l.corruptRead(sp, r, sp.firstIndex+i, res, buf[:w], errBadLength)
			}
			e, err := decodeFrame(buf[r : r+n])
			if err != nil {
				return l.corruptRead(sp, r, sp.firstIndex+i, res, buf[:w], err)
			}
			if e.IsBatch() {
				res.NextOffset = batchNextOffset(e.Batch()) // before the copy may overwrite it
				w += copy(buf[w:], e.Batch())
				res.Count++
			}
			r += n
		}
		if len(spans) == 1 {
			res.Batches = buf[:w]
		} else {
			res.Batches = append(res.Batches, buf[:w]...)
		}
	}
	return res, nil
}

// corruptRead reports damage found at byte r of a span, in the frame of
// raft index index. The batches read before it (good holds those of this
// span) are returned; the error surfaces when a read starts at the damage.
func (l *Log) corruptRead(sp span, r int, index uint64, res ReadResult, good []byte, err error) (ReadResult, error) {
	cerr := &CorruptionError{Path: sp.seg.logPath(), Pos: sp.start + int64(r), Index: index, Err: err}
	l.logger.Error("damaged frame found on read; not serving it", "err", cerr)
	if res.Count > 0 {
		res.Batches = append(res.Batches, good...)
		return res, nil
	}
	return res, cerr
}

// planRead locates the frames a Read needs and pins their segments.
func (l *Log) planRead(offset int64, maxBytes int, limit int64, minOne bool) ([]span, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	end := l.active().nextOffset()
	if offset < l.logStart || offset > end {
		return nil, &OffsetOutOfRangeError{Offset: offset, LogStart: l.logStart, NextOffset: end}
	}
	if offset >= limit {
		return nil, nil
	}
	k := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].nextOffset() > offset })
	var spans []span
	total := 0
	for ; k < len(l.segs); k++ {
		s := l.segs[k]
		from := 0
		if len(spans) == 0 {
			from = s.idx.searchOffset(offset)
		}
		to := from
		for ; to < s.idx.len(); to++ {
			e := s.idx.at(to)
			if e.nextOffset > limit {
				break
			}
			if e.count == 0 {
				continue
			}
			n := int(e.size) - frameHeaderSize
			if total+n > maxBytes && (total > 0 || !minOne) {
				break
			}
			total += n
		}
		if to > from {
			spans = append(spans, newSpan(s, from, to))
		}
		if to < s.idx.len() {
			break
		}
	}
	return spans, nil
}

// Entries returns raft entries [lo, hi), at most maxBytes of data but at
// least one entry.
func (l *Log) Entries(lo, hi uint64, maxBytes uint64) ([]Entry, error) {
	spans, err := l.planEntries(lo, hi, maxBytes)
	if err != nil {
		return nil, err
	}
	defer releaseSpans(spans)
	out := make([]Entry, 0, hi-lo)
	for _, sp := range spans {
		buf, err := sp.seg.readRange(sp.start, sp.end)
		if err != nil {
			return nil, err
		}
		for r := 0; r < len(buf); {
			n := frameLength(buf[r:])
			if n < frameHeaderSize || r+n > len(buf) {
				return nil, &CorruptionError{Path: sp.seg.logPath(), Pos: sp.start + int64(r), Index: lo + uint64(len(out)), Err: errBadLength}
			}
			e, err := decodeFrame(buf[r : r+n : r+n])
			if err != nil {
				return nil, &CorruptionError{Path: sp.seg.logPath(), Pos: sp.start + int64(r), Index: lo + uint64(len(out)), Err: err}
			}
			out = append(out, e)
			r += n
		}
	}
	return out, nil
}

func (l *Log) planEntries(lo, hi uint64, maxBytes uint64) ([]span, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	if lo < l.firstIndex() {
		return nil, ErrCompacted
	}
	if hi > l.lastIndex()+1 {
		return nil, ErrUnavailable
	}
	var spans []span
	var total uint64
	for i := lo; i < hi; {
		k := l.segmentFor(i)
		s := l.segs[k]
		from := int(i - s.baseIndex)
		to := from
		for ; to < s.idx.len() && s.baseIndex+uint64(to) < hi; to++ {
			n := uint64(s.idx.at(to).size) - frameHeaderSize
			if total+n > maxBytes && (total > 0 || to > from) {
				break
			}
			total += n
		}
		if to == from {
			break
		}
		spans = append(spans, newSpan(s, from, to))
		i = s.baseIndex + uint64(to)
		if to < s.idx.len() && i < hi {
			break // stopped by the size limit
		}
	}
	return spans, nil
}

// FindTimestamp returns the first committed batch at or after the log start
// holding a record with timestamp >= ts, or a nil batch if there is none.
// The caller looks inside the batch for the exact record.
func (l *Log) FindTimestamp(ts int64) ([]byte, error) {
	l.mu.RLock()
	var s *segment
	j := -1
	for _, cand := range l.segs {
		if cand.nextOffset() <= l.logStart || cand.maxTimestamp() < ts {
			continue
		}
		// Running maxima restart in every segment, so search from the first
		// entry at or after the log start.
		j = max(cand.idx.searchTimestamp(ts), cand.idx.searchOffset(l.logStart))
		if j < cand.idx.len() && cand.idx.at(j).nextOffset <= l.hw {
			s = cand
		}
		break
	}
	if s == nil {
		l.mu.RUnlock()
		return nil, nil
	}
	// Skip entries that carry no batch (the running max is carried over).
	for j < s.idx.len() && s.idx.at(j).count == 0 {
		j++
	}
	if j == s.idx.len() || s.idx.at(j).nextOffset > l.hw {
		l.mu.RUnlock()
		return nil, nil
	}
	sp := newSpan(s, j, j+1)
	l.mu.RUnlock()
	defer sp.seg.release()
	buf, err := sp.seg.readRange(sp.start, sp.end)
	if err != nil {
		return nil, err
	}
	e, err := decodeFrame(buf)
	if err != nil {
		return nil, &CorruptionError{Path: s.logPath(), Pos: sp.start, Index: sp.firstIndex, Err: err}
	}
	return e.Batch(), nil
}

// MaxTimestamp returns the largest record timestamp of the committed log,
// or -1 if it holds no record. Like Kafka it reads the segments' running
// maxima, which in the first segment may include records before the log
// start.
func (l *Log) MaxTimestamp() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	m := int64(-1)
	for _, s := range l.segs {
		if s.nextOffset() <= l.logStart {
			continue
		}
		k := sort.Search(s.idx.len(), func(i int) bool { return s.idx.at(i).nextOffset > l.hw }) - 1
		if k >= 0 {
			m = max(m, s.idx.at(k).maxTimestamp)
		}
	}
	return m
}

// TermAtOffset returns the term (leader epoch) of the batch holding offset,
// or -1 if the log does not hold it.
func (l *Log) TermAtOffset(offset int64) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed || offset < l.segs[0].baseOffset {
		return -1
	}
	k := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].nextOffset() > offset })
	if k == len(l.segs) {
		return -1
	}
	s := l.segs[k]
	return int64(s.idx.at(s.idx.searchOffset(offset)).term)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest term <= epoch
// present in the log and the offset where the next term starts (the log end
// offset if none does). It returns (-1, -1) when the log holds no term at or
// below epoch.
func (l *Log) EndOffsetForEpoch(epoch uint64) (term int64, endOffset int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return -1, -1
	}
	a := l.active()
	if a.lastTerm() <= epoch {
		return int64(a.lastTerm()), a.nextOffset()
	}
	k := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].lastTerm() > epoch })
	s := l.segs[k]
	j := s.idx.searchTermAbove(epoch)
	var prevTerm uint64
	var start int64
	if j == 0 {
		if k == 0 {
			return -1, -1
		}
		prevTerm, start = s.prevTerm, s.baseOffset
	} else {
		e := s.idx.at(j - 1)
		prevTerm, start = uint64(e.term), e.nextOffset
	}
	return int64(prevTerm), start
}

// Scrub reads every frame of every segment and checks its CRCs. It returns
// the damage found, one error per damaged frame; reads never serve those
// frames.
func (l *Log) Scrub() []error { return l.ScrubWith(nil) }

// ScrubWith is Scrub, calling pace (if set) with the bytes of each chunk
// it read, so a background scrub can bound its I/O; it stops early when
// pace returns false.
func (l *Log) ScrubWith(pace func(bytes int) bool) []error {
	type segRef struct {
		seg *segment
		n   int
	}
	l.mu.RLock()
	segs := make([]segRef, 0, len(l.segs))
	for _, s := range l.segs {
		s.acquire()
		segs = append(segs, segRef{s, s.idx.len()})
	}
	l.mu.RUnlock()
	var errs []error
	const chunk = 256
	for k, ref := range segs {
		for from := 0; from < ref.n; from += chunk {
			to := min(from+chunk, ref.n)
			l.mu.RLock()
			if ref.seg.deleted.Load() || ref.seg.idx.len() < to {
				l.mu.RUnlock()
				break // deleted or truncated since: nothing left to check here
			}
			ies := make([]indexEntry, 0, to-from)
			for i := from; i < to; i++ {
				ies = append(ies, ref.seg.idx.at(i))
			}
			l.mu.RUnlock()
			base := int64(ies[0].pos)
			buf, err := ref.seg.readRange(base, ies[len(ies)-1].end())
			if err != nil {
				errs = append(errs, err)
				break
			}
			if pace != nil && !pace(len(buf)) {
				for _, r := range segs[k:] {
					r.seg.release() // this segment and those not reached
				}
				return errs
			}
			for i, ie := range ies {
				e, err := decodeFrame(buf[int64(ie.pos)-base : ie.end()-base])
				if err == nil && (e.Index != ref.seg.baseIndex+uint64(from+i) || e.Term != uint64(ie.term)) {
					err = errIndexMismatch
				}
				if err != nil {
					cerr := &CorruptionError{Path: ref.seg.logPath(), Pos: int64(ie.pos), Index: ref.seg.baseIndex + uint64(from+i), Err: err}
					l.logger.Error("scrub found a damaged frame", "err", cerr)
					errs = append(errs, cerr)
				}
			}
		}
		ref.seg.release()
	}
	return errs
}
