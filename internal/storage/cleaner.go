package storage

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/chronik-stream/chronik/internal/membudget"
	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// Log compaction. The cleaner keeps the latest record of every key in the
// sealed, committed part of a compacted log, as Kafka's log cleaner does,
// with one difference that the log being the Raft log imposes: every frame
// survives with its raft index and term, and every batch keeps its header
// (offsets, producer id and sequence, max timestamp) even when none of its
// records is left. Offsets never change; readers see gaps.
//
// A pass over one log:
//  1. takes the sealed segments whose entries are all committed and whose
//     newest record is older than min.compaction.lag.ms;
//  2. maps every key of the not yet cleaned ("dirty") segments among them
//     to the offset of its latest record, in a map of bounded size;
//  3. rewrites each segment up to the last one mapped without the records
//     a later record of their key replaced, without records that have no
//     key, and without tombstones whose delete horizon passed;
//  4. swaps each rewritten segment in: the new file is synced, then renamed
//     over the old one. A crash leaves the old segment, or the new one with
//     a stale index that is rebuilt at open; a *.cleaned leftover is removed
//     at open.
//
// Tombstones follow Kafka's KIP-534: the first pass that keeps a tombstone
// stamps its batch with a delete horizon, now + delete.retention.ms; a pass
// after that horizon removes it. A consumer that reads the log from its
// start to its end within delete.retention.ms therefore sees every delete.

// CleanerOptions configures the log cleaner of a store.
type CleanerOptions struct {
	// Disabled turns compaction off (log.cleaner.enable=false).
	Disabled bool
	// DedupeBufferSize bounds the memory of the key map of one pass
	// (log.cleaner.dedupe.buffer.size).
	DedupeBufferSize int64
	// IOMaxBytesPerSecond bounds the bytes the cleaner reads plus writes per
	// second; zero or negative means no bound
	// (log.cleaner.io.max.bytes.per.second).
	IOMaxBytesPerSecond float64
	// Backoff is the pause between passes (log.cleaner.backoff.ms).
	Backoff time.Duration
	// Budget holds the batches the cleaner decompresses, node-wide with
	// the other readers of records (nil: a budget of its own of
	// recordbatch.MaxDecompressed).
	Budget recordbatch.Budget
}

// Kafka's defaults for the cleaner.
const (
	DefaultCleanerDedupeBufferSize = 128 << 20
	DefaultCleanerBackoff          = 15 * time.Second
)

// cleanedSuffix marks a segment being written by the cleaner; it is not
// part of the log until renamed.
const cleanedSuffix = ".cleaned"

// CleanerStats counts what the cleaner did since the store opened.
type CleanerStats struct {
	Passes          int64 // log passes that rewrote at least one segment
	SegmentsCleaned int64
	BytesRead       int64
	BytesWritten    int64
	// BytesReclaimed is the size of the rewritten segments before minus
	// after.
	BytesReclaimed int64
	RecordsRemoved int64
	Errors         int64
	Time           time.Duration // spent in passes that rewrote something
	// BatchesTooLarge counts batches kept as they are because they expand
	// to more than the decompression budget holds.
	BatchesTooLarge int64
}

// cleaner runs compaction passes for one store, one log at a time.
type cleaner struct {
	opts    CleanerOptions
	limiter *rate.Limiter // nil: no I/O bound

	// mapMu guards keys, the map reused across passes (allocated on the
	// first pass that needs it, so a node without compacted topics never
	// holds it), and serializes passes.
	mapMu sync.Mutex
	keys  *offsetMap
	// batch, frames and out are reused by every pass: a pass must not
	// leave megabytes of garbage behind for the collector.
	batch    recordbatch.Opened
	frames   frameReader
	out      *bufio.Writer
	outIndex *bufio.Writer

	statsMu sync.Mutex
	stats   CleanerStats
}

// throttleBurst is the most bytes one wait of the I/O bound covers.
const throttleBurst = 1 << 20

func newCleaner(opts CleanerOptions) *cleaner {
	if opts.DedupeBufferSize <= 0 {
		opts.DedupeBufferSize = DefaultCleanerDedupeBufferSize
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultCleanerBackoff
	}
	if opts.Budget == nil {
		opts.Budget = membudget.NewRequests(recordbatch.MaxDecompressed, recordbatch.MaxDecompressed)
	}
	c := &cleaner{opts: opts}
	if opts.IOMaxBytesPerSecond > 0 && opts.IOMaxBytesPerSecond < math.MaxFloat64 {
		c.limiter = rate.NewLimiter(rate.Limit(opts.IOMaxBytesPerSecond), throttleBurst)
	}
	return c
}

// throttle waits until n more bytes of I/O fit the bound. It also yields
// the processor after each frame: a pass is CPU-bound for seconds, and
// without yielding, the request and raft goroutines waiting for a
// processor would wait for the scheduler's 10 ms preemption.
func (c *cleaner) throttle(ctx context.Context, n int) error {
	runtime.Gosched()
	if c.limiter == nil {
		return ctx.Err()
	}
	for n > 0 {
		k := min(n, throttleBurst)
		if err := c.limiter.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// CleanResult says what one pass over one log did.
type CleanResult struct {
	Segments       int // segments rewritten
	BytesRead      int64
	BytesWritten   int64
	BytesBefore    int64 // size of the rewritten segments before
	BytesAfter     int64 // and after
	RecordsRemoved int64
}

func (r *CleanResult) add(o CleanResult) {
	r.Segments += o.Segments
	r.BytesRead += o.BytesRead
	r.BytesWritten += o.BytesWritten
	r.BytesBefore += o.BytesBefore
	r.BytesAfter += o.BytesAfter
	r.RecordsRemoved += o.RecordsRemoved
}

func (c *cleaner) record(r CleanResult, err error, took time.Duration) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	st := &c.stats
	if err != nil {
		st.Errors++
	}
	st.BytesRead += r.BytesRead
	st.BytesWritten += r.BytesWritten
	if r.Segments > 0 {
		st.Passes++
		st.SegmentsCleaned += int64(r.Segments)
		st.BytesReclaimed += r.BytesBefore - r.BytesAfter
		st.RecordsRemoved += r.RecordsRemoved
		st.Time += took
	}
}

// cleanableSegment is what a pass needs of a segment, captured under the
// log's lock.
type cleanableSegment struct {
	seg     *segment
	size    int64
	cleaned bool
	// firstTimestamp is the max timestamp of the segment's first batch, -1
	// if it has none: how old its oldest records are, for
	// max.compaction.lag.ms.
	firstTimestamp int64
}

// cleanable pins the segments a pass may rewrite: sealed, wholly
// committed, and (with min.compaction.lag.ms) old enough.
func (l *Log) cleanable(now time.Time) ([]cleanableSegment, LogConfig, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	cfg := l.cfg
	if l.closed || l.failed != nil || !cfg.Compact {
		return nil, cfg, 0
	}
	lagCutoff := now.Add(-cfg.MinCompactionLag).UnixMilli()
	var out []cleanableSegment
	for _, s := range l.segs[:len(l.segs)-1] {
		if s.lastIndex() > l.committed || (cfg.MinCompactionLag > 0 && s.maxTimestamp() > lagCutoff) {
			break
		}
		first := int64(-1)
		if i := s.idx.searchTimestamp(0); i < s.idx.len() {
			first = s.idx.at(i).maxTimestamp
		}
		s.acquire()
		out = append(out, cleanableSegment{seg: s, size: s.size, cleaned: s.cleaned, firstTimestamp: first})
	}
	return out, cfg, l.tombstoneHorizon
}

// clean runs one compaction pass over the log if it needs one: its dirty
// ratio is above min.cleanable.dirty.ratio, its oldest dirty record passed
// max.compaction.lag.ms, or a kept tombstone's delete horizon passed.
func (c *cleaner) clean(ctx context.Context, l *Log, now time.Time) (CleanResult, error) {
	segs, cfg, horizon := l.cleanable(now)
	defer func() {
		for _, s := range segs {
			s.seg.release()
		}
	}()
	if len(segs) == 0 {
		return CleanResult{}, nil
	}
	firstDirty := len(segs)
	var clean, dirty int64
	for i, s := range segs {
		if !s.cleaned && firstDirty == len(segs) {
			firstDirty = i
		}
		if i < firstDirty {
			clean += s.size
		} else {
			dirty += s.size
		}
	}
	dirtyDue := false
	if firstDirty < len(segs) {
		ratio := float64(dirty) / float64(clean+dirty)
		lagged := cfg.MaxCompactionLag < DefaultMaxCompactionLag && segs[firstDirty].firstTimestamp >= 0 &&
			segs[firstDirty].firstTimestamp < now.Add(-cfg.MaxCompactionLag).UnixMilli()
		dirtyDue = ratio > cfg.MinCleanableDirtyRatio || lagged
	}
	// Tombstones are stamped only in cleaned segments: a pass for them
	// alone rewrites those, with an empty key map.
	tombstonesDue := now.UnixMilli() >= horizon && firstDirty > 0
	if !dirtyDue && !tombstonesDue {
		return CleanResult{}, nil
	}

	c.mapMu.Lock()
	defer c.mapMu.Unlock()
	if c.keys == nil {
		c.keys = newOffsetMap(c.opts.DedupeBufferSize)
	}
	keys := c.keys
	keys.reset()
	var res CleanResult
	mapped := firstDirty
	for dirtyDue && mapped < len(segs) {
		full, n, err := c.mapSegment(ctx, segs[mapped], keys)
		res.BytesRead += n
		if err != nil {
			return res, err
		}
		if full {
			if mapped == firstDirty {
				// Not even one dirty segment fits the map. Cleaning with the
				// keys that did fit is still right (each names a later record
				// of its key), and the segment counts as cleaned so that the
				// next pass moves on; records replaced by ones past the
				// map's end may stay.
				l.logger.Warn("the cleaner's key map (kafka.log_cleaner_dedupe_buffer_size) holds fewer keys than one segment has; some replaced records of this segment stay",
					"segment", segs[firstDirty].seg.logPath(), "keys", keys.used)
				mapped++
			}
			break
		}
		mapped++
	}
	nextHorizon := int64(math.MaxInt64)
	for i := 0; i < mapped; i++ {
		r, h, err := c.cleanSegment(ctx, l, segs[i], keys, now, cfg)
		res.add(r)
		if err != nil {
			return res, err
		}
		nextHorizon = min(nextHorizon, h)
	}
	l.mu.Lock()
	l.tombstoneHorizon = nextHorizon
	l.mu.Unlock()
	return res, nil
}

// mapSegment records the latest offset of every key of the segment. It
// reports full when the map ran out of room before the segment's end.
func (c *cleaner) mapSegment(ctx context.Context, cs cleanableSegment, keys *offsetMap) (full bool, read int64, err error) {
	fr := c.frames.reset(cs.seg, segmentHeaderSize, cs.size)
	for {
		frame, e, err := fr.next()
		if errors.Is(err, io.EOF) {
			return false, read, nil
		}
		if err != nil {
			return false, read, err
		}
		read += int64(len(frame))
		if err := c.throttle(ctx, len(frame)); err != nil {
			return false, read, err
		}
		if !e.IsBatch() {
			continue
		}
		o, release, err := c.openForCleaning(ctx, e.Batch(), false)
		if err != nil {
			return false, read, fr.damageUnless(ctx, err)
		}
		if o == nil {
			continue
		}
		full = false
		for _, r := range o.Records {
			if r.Key != nil && !keys.put(r.Key, r.Offset) {
				full = true
				break
			}
		}
		release()
		if full {
			return true, read, nil
		}
	}
}

// openForCleaning decodes a batch the cleaner may filter into c.batch,
// held in the decompression budget until release (with room to rewrite
// it if rewrite); nil for a batch kept as
// it is: a control batch, or one too large to decompress within the
// budget (its keys then stay out of the map, which only keeps more
// records). The caller holds c.mapMu.
func (c *cleaner) openForCleaning(ctx context.Context, batch []byte, rewrite bool) (o *recordbatch.Opened, release func(), err error) {
	h, err := recordbatch.ParseHeader(batch)
	if err != nil {
		return nil, nil, err
	}
	if h.IsControl() {
		return nil, nil, nil
	}
	release, err = c.batch.ResetWithin(batch, c.opts.Budget, rewrite, ctx.Done())
	if errors.Is(err, recordbatch.ErrTooLarge) {
		c.statsMu.Lock()
		c.stats.BatchesTooLarge++
		c.statsMu.Unlock()
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return &c.batch, release, nil
}

// cleanSegment writes the cleaned copy of s, flagged cleaned, and swaps it
// in if it differs. It returns the earliest delete horizon of a tombstone
// it kept.
func (c *cleaner) cleanSegment(ctx context.Context, l *Log, cs cleanableSegment, keys *offsetMap, now time.Time, cfg LogConfig) (CleanResult, int64, error) {
	var res CleanResult
	horizon := int64(math.MaxInt64)
	s, end := cs.seg, cs.size
	logTmp, idxTmp := s.logPath()+cleanedSuffix, s.idxPath()+cleanedSuffix
	os.Remove(logTmp)
	os.Remove(idxTmp)
	f, err := createFileWith(logTmp, encodeSegmentHeader(s.baseIndex, s.baseOffset, s.prevTerm, segmentFlagCleaned))
	if err != nil {
		return res, horizon, err
	}
	swapped := false
	defer func() {
		if !swapped {
			os.Remove(logTmp)
			os.Remove(idxTmp)
		}
	}()
	defer f.Close()
	// The index goes to its file as it is built: a segment of a gigabyte
	// in small batches has an index of tens of megabytes.
	idxF, err := createFileWith(idxTmp, appendIndexHeader(nil, s.baseIndex))
	if err != nil {
		return res, horizon, err
	}
	defer idxF.Close()
	if c.out == nil {
		c.out, c.outIndex = bufio.NewWriterSize(f, 1<<20), bufio.NewWriterSize(idxF, 64<<10)
	}
	w, wi := c.out, c.outIndex
	w.Reset(f)
	wi.Reset(idxF)
	changed := !cs.cleaned
	pos, next, term, maxTS := int64(segmentHeaderSize), s.baseOffset, s.prevTerm, int64(-1)
	var ieBuf [indexEntrySize]byte
	fr := c.frames.reset(s, segmentHeaderSize, end)
	nowMs := now.UnixMilli()
	for index := s.baseIndex; ; index++ {
		frame, e, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, horizon, err
		}
		if e.Index != index {
			return res, horizon, fr.damage(fmt.Errorf("frame holds raft index %d, expected %d", e.Index, index))
		}
		res.BytesRead += int64(len(frame))
		out := frame
		if e.IsBatch() {
			o, release, err := c.openForCleaning(ctx, e.Batch(), true)
			if err != nil {
				return res, horizon, fr.damageUnless(ctx, err)
			}
			if o != nil {
				keep, removed, h, newHorizon := filterRecords(o, keys, nowMs, cfg.DeleteRetention)
				horizon = min(horizon, h)
				var data []byte
				if removed > 0 || newHorizon >= 0 {
					data, err = o.Rebuild(keep, newHorizon)
				}
				release()
				if err != nil {
					return res, horizon, fmt.Errorf("rewrite batch at raft index %d: %w", e.Index, err)
				}
				if data != nil {
					e.Data = data
					out = encodeFrame(&e)
					res.RecordsRemoved += int64(removed)
					changed = true
				}
			}
		}
		ie, err := newIndexEntry(&e, pos, next, term, maxTS, false)
		if err != nil {
			return res, horizon, fr.damage(err)
		}
		if _, err := w.Write(out); err != nil {
			return res, horizon, fmt.Errorf("write %s: %w", logTmp, err)
		}
		if _, err := wi.Write(ie.appendTo(ieBuf[:0])); err != nil {
			return res, horizon, fmt.Errorf("write %s: %w", idxTmp, err)
		}
		pos, next, term, maxTS = ie.end(), ie.nextOffset, e.Term, ie.maxTimestamp
		res.BytesWritten += int64(len(out))
		if err := c.throttle(ctx, len(frame)+len(out)); err != nil {
			return res, horizon, err
		}
	}
	if !changed {
		return CleanResult{BytesRead: res.BytesRead}, horizon, nil
	}
	if err := w.Flush(); err != nil {
		return res, horizon, fmt.Errorf("write %s: %w", logTmp, err)
	}
	if err := fdatasync(f); err != nil {
		return res, horizon, fmt.Errorf("sync %s: %w", logTmp, err)
	}
	if err := wi.Flush(); err != nil {
		return res, horizon, fmt.Errorf("write %s: %w", idxTmp, err)
	}
	if err := idxF.Sync(); err != nil {
		return res, horizon, fmt.Errorf("sync %s: %w", idxTmp, err)
	}
	swapped, err = l.swapCleaned(s, logTmp, idxTmp)
	if err != nil || !swapped {
		return res, horizon, err
	}
	res.Segments = 1
	res.BytesBefore, res.BytesAfter = end, pos
	return res, horizon, nil
}

// filterRecords decides which records of a batch stay: those with a key
// whose latest record is not later, and tombstones until their delete
// horizon. It returns the keep mask, how many records go, the delete
// horizon of the tombstones kept (MaxInt64 if none) and, for a batch that
// keeps tombstones but has no horizon yet, the horizon to stamp it with
// (-1 otherwise).
func filterRecords(o *recordbatch.Opened, keys *offsetMap, nowMs int64, deleteRetention time.Duration) (keep []bool, removed int, horizon, stamp int64) {
	h := &o.Header
	keep = make([]bool, len(o.Records))
	horizon, stamp = math.MaxInt64, -1
	tombstones := false
	for i := range o.Records {
		r := &o.Records[i]
		switch {
		case r.Key == nil:
			// A compacted log has no use for a record without a key; Kafka's
			// cleaner drops them too (they predate the compact policy).
		case func() bool { latest, ok := keys.get(r.Key); return ok && latest > r.Offset }():
		case r.Tombstone && h.HasDeleteHorizon() && nowMs >= h.BaseTimestamp:
		default:
			keep[i] = true
			tombstones = tombstones || r.Tombstone
			continue
		}
		removed++
	}
	if tombstones {
		if h.HasDeleteHorizon() {
			horizon = h.BaseTimestamp
		} else {
			stamp = nowMs + deleteRetention.Milliseconds()
			horizon = stamp
		}
	}
	return keep, removed, horizon, stamp
}

// encodeFrame encodes an entry whose batch already holds its final offset
// and epoch.
func encodeFrame(e *Entry) []byte {
	b := make([]byte, frameHeaderSize, frameHeaderSize+len(e.Data))
	binary.BigEndian.PutUint32(b[0:], uint32(frameHeaderSize+len(e.Data)))
	binary.BigEndian.PutUint64(b[8:], e.Index)
	binary.BigEndian.PutUint32(b[16:], uint32(e.Term))
	b[20] = byte(e.Type)
	b = append(b, e.Data...)
	binary.BigEndian.PutUint32(b[4:], frameCRC(b, b[frameHeaderSize:]))
	return b
}

// swapCleaned replaces the sealed segment old by the cleaned files. It
// reports false, leaving the log as it was, when old left the log meanwhile
// (retention, a reset, a close).
func (l *Log) swapCleaned(old *segment, logTmp, idxTmp string) (bool, error) {
	// Retention, log start moves and resets rename and drop segments under
	// startMu; holding it keeps old's names ours until the swap is done.
	l.startMu.Lock()
	defer l.startMu.Unlock()
	if !l.holds(old) {
		return false, nil
	}
	if err := os.Rename(logTmp, old.logPath()); err != nil {
		return false, fmt.Errorf("swap cleaned segment: %w", err)
	}
	// From here the cleaned data is the segment's: with the old index, a
	// crash is repaired at open (the index is rebuilt from the segment).
	if err := os.Rename(idxTmp, old.idxPath()); err != nil {
		l.logger.Warn("cleaned segment's index not swapped in; it is rebuilt at the next open", "err", err)
	}
	if err := syncDir(l.dir); err != nil {
		return true, l.failWithLock(err)
	}
	ns, err := openSegment(l.dir, old.baseIndex, false, l.logger)
	if err != nil {
		return true, l.failWithLock(fmt.Errorf("open cleaned segment: %w", err))
	}
	l.mu.Lock()
	i := l.position(old)
	if i < 0 || l.closed {
		l.mu.Unlock()
		ns.release()
		return true, nil
	}
	l.segs[i] = ns
	old.unmapIndex()
	l.mu.Unlock()
	old.release()
	return true, nil
}

// holds reports whether s is still one of the log's segments.
func (l *Log) holds(s *segment) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return !l.closed && l.position(s) >= 0
}

func (l *Log) position(s *segment) int {
	for i, x := range l.segs {
		if x == s {
			return i
		}
	}
	return -1
}

func (l *Log) failWithLock(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fail(err)
}
