package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// LogConfig holds the per-partition settings (Kafka topic configs).
type LogConfig struct {
	// SegmentBytes rolls the active segment once it would grow past this.
	SegmentBytes int64
	// SegmentMs rolls the active segment this long after its first append.
	SegmentMs time.Duration
	// RetentionMs deletes sealed segments whose newest timestamp is older;
	// negative keeps data forever.
	RetentionMs time.Duration
	// RetentionBytes deletes the oldest sealed segments while the log is
	// larger; negative means no limit.
	RetentionBytes int64

	// Compact has the cleaner keep only the latest record of every key in
	// the sealed, committed part of the log (cleanup.policy compact).
	Compact bool
	// DeleteRetention is how long a tombstone (a record with a null value)
	// stays after the cleaner first met it (delete.retention.ms).
	DeleteRetention time.Duration
	// MinCleanableDirtyRatio is the share of not yet cleaned bytes in the
	// cleanable part above which the log is cleaned
	// (min.cleanable.dirty.ratio).
	MinCleanableDirtyRatio float64
	// MinCompactionLag keeps a segment out of cleaning until its newest
	// record is this old (min.compaction.lag.ms).
	MinCompactionLag time.Duration
	// MaxCompactionLag cleans a log whatever its dirty ratio once its
	// oldest uncleaned record is this old (max.compaction.lag.ms).
	MaxCompactionLag time.Duration
}

// Kafka's defaults.
const (
	DefaultSegmentBytes           = 1 << 30
	DefaultSegmentMs              = 7 * 24 * time.Hour
	DefaultRetentionMs            = 7 * 24 * time.Hour
	MaxSegmentBytes               = 1<<31 - 1
	MinSegmentBytes               = 1 << 10
	DefaultDeleteRetention        = 24 * time.Hour
	DefaultMinCleanableDirtyRatio = 0.5
	DefaultMaxCompactionLag       = time.Duration(1<<63 - 1)
)

// DefaultLogConfig returns Kafka's defaults.
func DefaultLogConfig() LogConfig {
	return LogConfig{
		SegmentBytes:           DefaultSegmentBytes,
		SegmentMs:              DefaultSegmentMs,
		RetentionMs:            DefaultRetentionMs,
		RetentionBytes:         -1,
		DeleteRetention:        DefaultDeleteRetention,
		MinCleanableDirtyRatio: DefaultMinCleanableDirtyRatio,
		MaxCompactionLag:       DefaultMaxCompactionLag,
	}
}

// Validate checks the settings and names the one that is wrong.
func (c LogConfig) Validate() error {
	if c.SegmentBytes < MinSegmentBytes || c.SegmentBytes > MaxSegmentBytes {
		return fmt.Errorf("segment.bytes %d must be between %d and %d", c.SegmentBytes, MinSegmentBytes, MaxSegmentBytes)
	}
	if c.SegmentMs <= 0 {
		return fmt.Errorf("segment.ms %v must be positive", c.SegmentMs)
	}
	if c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1 {
		return fmt.Errorf("min.cleanable.dirty.ratio %v must be between 0 and 1", c.MinCleanableDirtyRatio)
	}
	if c.DeleteRetention < 0 || c.MinCompactionLag < 0 {
		return fmt.Errorf("delete.retention.ms %v and min.compaction.lag.ms %v must not be negative", c.DeleteRetention, c.MinCompactionLag)
	}
	if c.Compact && c.MaxCompactionLag <= 0 {
		return fmt.Errorf("max.compaction.lag.ms %v must be positive", c.MaxCompactionLag)
	}
	return nil
}

// HardState is the raft state that must survive a restart with the log.
type HardState struct {
	Term, Vote, Commit uint64
}

// Log is one partition's log. All methods are safe for concurrent use.
type Log struct {
	name   string
	dir    string
	store  *Store
	logger *slog.Logger

	// startMu serializes log start moves, which persist before they act.
	startMu sync.Mutex

	mu  sync.RWMutex
	cfg LogConfig
	// segs is ordered by base index; the last one is active.
	// Invariant: len(segs) >= 1; segs[i+1].baseIndex == segs[i].lastIndex()+1.
	segs []*segment
	// Invariant: logStart <= hw <= nextOffset; committed <= lastIndex.
	committed uint64
	hw        int64
	logStart  int64
	hs        HardState
	conf      []byte
	// hsDurable is the term and vote last written to the checkpoint.
	hsDurable HardState
	frames    frameWriter // reused across appends; guarded by mu

	// seq counts operations that need durability; durableSeq is the last one
	// made durable. Invariant: durableSeq <= seq.
	seq, durableSeq uint64
	waiters         []waiter
	// truncated holds waiters whose entries a truncation removed; they are
	// told ErrTruncated once l.mu is released.
	truncated []waiter
	// durableIndex is the last entry known to be on disk: covered by a
	// successful fdatasync and not truncated since. Entries after it may
	// be only in the page cache. Invariant: durableIndex <= lastIndex.
	durableIndex uint64
	// truncations counts truncations, so a flush that began before one
	// does not vouch for entries written after it.
	truncations uint64
	failed      error
	closed      bool
	// tombstoneHorizon is the earliest delete horizon (Unix ms) of a
	// tombstone the cleaner kept; zero (unknown, after open) lets the next
	// pass find out.
	tombstoneHorizon int64

	// flushQueued is guarded by the flusher's mutex.
	flushQueued bool
}

type waiter struct {
	seq uint64
	// last is the index of the last entry the append wrote, 0 for none
	// (a hard state change or a Sync).
	last uint64
	done func(error)
}

// ErrTruncated is given to the waiters of an append whose entries a later
// truncation removed before they were known durable: they never will be.
var ErrTruncated = errors.New("entries were truncated before they became durable")

// Name returns the log's name (its directory name, topic-partition).
func (l *Log) Name() string { return l.name }

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

func openLog(store *Store, name string, cfg LogConfig, st logState) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Join(store.dir, filepath.FromSlash(name))
	l := &Log{name: name, dir: dir, store: store, cfg: cfg, logger: store.logger.With("log", name)}
	_, statErr := os.Stat(dir)
	lost := errors.Is(statErr, os.ErrNotExist) && st.holdsEntries()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	if lost {
		// The checkpoint says this log held entries, but its directory is
		// gone: they may have counted towards a quorum. Start it empty, in
		// repair, so the replica votes again only once it holds them anew
		// (raft's term and vote are kept: a vote is never cast twice).
		until := max(st.committed, st.hs.Commit)
		l.logger.Error("log directory is missing although the checkpoint says it held entries; starting it empty and refilling it from the other replicas", "dir", dir, "commit_was", until)
		if err := writeRepairUntil(dir, until); err != nil {
			return nil, err
		}
		st.committed, st.hw, st.logStart = 0, 0, 0
	}
	bases, err := listSegments(dir, l.logger)
	if err != nil {
		return nil, err
	}
	for i, base := range bases {
		s, err := openSegment(dir, base, i == len(bases)-1, l.logger)
		if err != nil {
			l.closeSegments()
			return nil, fmt.Errorf("open log %s: %w", name, err)
		}
		if n := len(l.segs); n > 0 {
			prev := l.segs[n-1]
			if s.baseIndex <= prev.lastIndex() {
				// Left over from a truncation whose unlink did not reach the
				// disk: every entry it holds was truncated away.
				l.logger.Warn("removing stale segment left by an interrupted truncation", "segment", s.logPath())
				if err := l.dropSegment(s); err != nil {
					l.closeSegments()
					return nil, err
				}
				continue
			}
			if s.baseIndex != prev.lastIndex()+1 || s.baseOffset != prev.nextOffset() {
				s.release()
				l.closeSegments()
				return nil, &CorruptionError{Path: s.logPath(), Index: prev.lastIndex() + 1,
					Err: fmt.Errorf("segment starts at index %d offset %d, previous ends before index %d offset %d",
						s.baseIndex, s.baseOffset, prev.lastIndex()+1, prev.nextOffset())}
			}
			if !prev.sealed {
				// The previous "active" segment is followed by another: it was
				// sealed before the crash but opened as active here.
				if err := prev.seal(l.logger); err != nil {
					s.release()
					l.closeSegments()
					return nil, err
				}
			}
		}
		l.segs = append(l.segs, s)
	}
	if len(l.segs) > 0 && l.segs[len(l.segs)-1].sealed {
		if err := l.segs[len(l.segs)-1].unseal(); err != nil {
			l.closeSegments()
			return nil, err
		}
	}
	if len(l.segs) == 0 {
		s, err := createSegment(dir, 1, 0, 0)
		if err != nil {
			return nil, err
		}
		l.segs = []*segment{s}
	}
	// What the active segment holds may be only in the page cache (the
	// process died, not the machine): make it durable before raft counts
	// it as persisted and acknowledges it.
	if err := fdatasync(l.active().f); err != nil {
		l.closeSegments()
		return nil, fmt.Errorf("open log %s: sync recovered tail: %w", name, err)
	}
	l.durableIndex = l.lastIndex()
	l.restoreState(st)
	return l, nil
}

// holdsEntries reports whether the checkpointed state is that of a log
// that had entries.
func (st logState) holdsEntries() bool { return st.committed > 0 || st.hs.Commit > 0 || st.hw > 0 }

// restoreState applies the checkpointed state, clamped to what the log holds.
func (l *Log) restoreState(st logState) {
	l.hs = st.hs
	l.hsDurable = st.hs
	l.conf = st.conf
	l.committed = max(st.committed, l.firstIndex()-1)
	if last := l.lastIndex(); l.committed > last {
		l.logger.Warn("checkpointed commit index is beyond the log; clamping", "commit", l.committed, "last_index", last)
		l.committed = last
	}
	l.hw, _ = l.offsetAfterLocked(l.committed)
	l.logStart = min(max(st.logStart, l.segs[0].baseOffset), l.hw)
	// Raft refuses a commit beyond its log; only a DiscardFrom cut short
	// by a crash leaves one. It also refuses an applied index above its
	// commit: what was applied was committed, so the commit is raised to
	// it (a checkpoint written while a hard state waited for disk space
	// could hold the two the other way round).
	l.hs.Commit = max(min(l.hs.Commit, l.lastIndex()), l.committed)
}

func listSegments(dir string, logger *slog.Logger) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var bases []uint64
	idx := map[uint64]bool{}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"), strings.HasSuffix(name, deletedSuffix), strings.HasSuffix(name, cleanedSuffix):
			os.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, ".log"):
			n, err := strconv.ParseUint(strings.TrimSuffix(name, ".log"), 10, 64)
			if err != nil || len(name) != 24 {
				logger.Warn("ignoring unexpected file in log directory", "file", name)
				continue
			}
			bases = append(bases, n)
		case strings.HasSuffix(name, ".idx"):
			if n, err := strconv.ParseUint(strings.TrimSuffix(name, ".idx"), 10, 64); err == nil {
				idx[n] = true
			}
		}
	}
	slices.Sort(bases)
	for _, b := range bases {
		delete(idx, b)
	}
	for b := range idx {
		os.Remove(filepath.Join(dir, segmentName(b)+".idx"))
	}
	return bases, nil
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

func (l *Log) firstIndex() uint64 { return l.segs[0].baseIndex }
func (l *Log) lastIndex() uint64  { return l.active().lastIndex() }

// FirstIndex returns the raft index of the first entry held (or of the next
// entry when the log is empty).
func (l *Log) FirstIndex() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.firstIndex()
}

// LastIndex returns the raft index of the last entry (FirstIndex()-1 when
// empty).
func (l *Log) LastIndex() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastIndex()
}

// LastTerm returns the term of the last entry.
func (l *Log) LastTerm() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.active().lastTerm()
}

// NextOffset returns the log end offset: the offset the next batch gets.
func (l *Log) NextOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.active().nextOffset()
}

// HighWatermark returns the offset after the last committed batch.
func (l *Log) HighWatermark() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hw
}

// LogStartOffset returns the first offset a reader may ask for.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStart
}

// Committed returns the raft index the high watermark derives from.
func (l *Log) Committed() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.committed
}

// Config returns the log's settings.
func (l *Log) Config() LogConfig {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// SetConfig changes the log's settings; they apply from the next append and
// the next retention pass.
func (l *Log) SetConfig(cfg LogConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	l.cfg = cfg
	l.mu.Unlock()
	return nil
}

// Size returns the bytes held in segment files.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// SegmentCount returns the number of segment files.
func (l *Log) SegmentCount() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segs)
}

// segmentFor returns the position in l.segs of the segment holding index i;
// i must be within [firstIndex, lastIndex].
func (l *Log) segmentFor(i uint64) int {
	return sort.Search(len(l.segs), func(k int) bool { return l.segs[k].lastIndex() >= i })
}

// Term returns the term of entry i, for i in [FirstIndex()-1, LastIndex()].
func (l *Log) Term(i uint64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if i+1 < l.firstIndex() {
		return 0, ErrCompacted
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	if i == l.firstIndex()-1 {
		return l.segs[0].prevTerm, nil
	}
	return l.segs[l.segmentFor(i)].term(i), nil
}

// OffsetAfter returns the Kafka offset following entry i.
func (l *Log) OffsetAfter(i uint64) (int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.offsetAfterLocked(i)
}

func (l *Log) offsetAfterLocked(i uint64) (int64, error) {
	if i+1 < l.firstIndex() {
		return 0, ErrCompacted
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	if i == l.firstIndex()-1 {
		return l.segs[0].baseOffset, nil
	}
	s := l.segs[l.segmentFor(i)]
	return s.idx.at(int(i - s.baseIndex)).nextOffset, nil
}

// Append writes entries to the end of the log. If the first entry's index is
// at or below LastIndex, the log is first truncated back to just before it
// (raft conflict resolution). Batch entries must hold a valid v2 batch; the
// stored copy gets the log's next offset as baseOffset and the entry's term
// as partitionLeaderEpoch (e.Data itself is not modified). done, if not nil, is called once the entries (and any hard state
// set before) are durable, or with the error that prevented it; it runs on
// the flusher's goroutine and must not block.
func (l *Log) Append(entries []Entry, done func(error)) error {
	l.mu.Lock()
	err := l.appendLocked(entries)
	if err == nil && done != nil {
		w := waiter{seq: l.seq, done: done}
		if len(entries) > 0 {
			w.last = entries[len(entries)-1].Index
		}
		l.waiters = append(l.waiters, w)
	}
	truncated := l.truncated
	l.truncated = nil
	l.mu.Unlock()
	callWaiters(truncated, ErrTruncated)
	if err == nil || len(truncated) > 0 {
		l.store.flusher.markDirty(l)
	}
	return err
}

// AppendSync appends and waits until the entries are durable.
func (l *Log) AppendSync(entries []Entry) error {
	ch := make(chan error, 1)
	if err := l.Append(entries, func(err error) { ch <- err }); err != nil {
		return err
	}
	return <-ch
}

// Sync waits until everything appended so far is durable.
func (l *Log) Sync() error { return l.AppendSync(nil) }

func (l *Log) appendLocked(entries []Entry) error {
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("log %s failed earlier and must be reopened: %w", l.name, l.failed)
	}
	if len(entries) == 0 {
		l.seq++
		return nil
	}
	first := entries[0].Index
	if first <= l.lastIndex() {
		if err := l.truncateAfterLocked(first - 1); err != nil {
			return err
		}
	} else if first != l.lastIndex()+1 {
		return fmt.Errorf("append at index %d leaves a gap after last index %d", first, l.lastIndex())
	}
	if err := l.checkEntries(entries); err != nil {
		return err
	}
	// Counted after any truncation, which made everything before it durable.
	l.seq++
	prevLast := l.lastIndex()
	if err := l.writeEntries(entries); err != nil {
		// A roll may have let part of the call reach the disk: take it back
		// so the append stays all or nothing.
		if l.lastIndex() > prevLast {
			if terr := l.truncateAfterLocked(prevLast); terr != nil {
				return l.fail(fmt.Errorf("%w; undoing the partial append: %v", err, terr))
			}
		}
		return err
	}
	return nil
}

// checkEntries validates the whole call before anything is written, so an
// append is all or nothing.
func (l *Log) checkEntries(entries []Entry) error {
	a := l.active()
	next, term, maxTS := a.nextOffset(), a.lastTerm(), a.maxTimestamp()
	for i := range entries {
		e := &entries[i]
		if want := l.lastIndex() + 1 + uint64(i); e.Index != want {
			return fmt.Errorf("entry index %d, expected %d", e.Index, want)
		}
		if e.Type > EntryConfChangeV2 {
			return fmt.Errorf("entry %d has unknown type %d", e.Index, e.Type)
		}
		if len(e.Data) > maxFrameSize-frameHeaderSize {
			return fmt.Errorf("entry %d of %d bytes is over the %d byte limit", e.Index, len(e.Data), maxFrameSize-frameHeaderSize)
		}
		if e.IsBatch() {
			if _, err := recordbatch.Validate(e.Batch()); err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
		}
		ie, err := newIndexEntry(e, 0, next, term, maxTS, true)
		if err != nil {
			return err
		}
		next, term, maxTS = ie.nextOffset, e.Term, ie.maxTimestamp
	}
	return nil
}

func (l *Log) writeEntries(entries []Entry) error {
	a := l.active()
	w := &l.frames
	w.reset()
	var ies []indexEntry
	pos := a.size
	flush := func() error {
		if len(ies) == 0 {
			return nil
		}
		err := a.writeFrames(w, ies, l.logger)
		w.reset()
		ies = ies[:0]
		pos = a.size
		return err
	}
	next, term, maxTS := a.nextOffset(), a.lastTerm(), a.maxTimestamp()
	for i := range entries {
		e := &entries[i]
		size := int64(frameHeaderSize + len(e.Data))
		if l.shouldRoll(a, pos-a.size+int64(len(ies)), pos+size) {
			if err := flush(); err != nil {
				return err
			}
			if err := l.roll(); err != nil {
				return err
			}
			a = l.active()
			pos, maxTS = a.size, -1
		}
		ie, err := newIndexEntry(e, pos, next, term, maxTS, true)
		if err != nil {
			return err
		}
		w.add(e, ie.baseOffset())
		ies = append(ies, ie)
		next, term, maxTS, pos = ie.nextOffset, e.Term, ie.maxTimestamp, pos+size
	}
	err := flush()
	if cap(w.small) > 4<<20 {
		w.small = nil // do not keep a buffer grown by large commands
	}
	w.parts = nil // drop references to the callers' batches
	return err
}

// shouldRoll reports whether the active segment a must be sealed before a
// frame ending at end is added; pending counts frames buffered for a.
func (l *Log) shouldRoll(a *segment, pending, end int64) bool {
	if a.idx.len() == 0 && pending == 0 {
		return false
	}
	if end > l.cfg.SegmentBytes {
		return true
	}
	rollAfter := l.cfg.SegmentMs
	if l.cfg.Compact {
		// The active segment is never cleaned: roll it in time for its
		// records to be compacted within max.compaction.lag.ms, as Kafka.
		rollAfter = min(rollAfter, l.cfg.MaxCompactionLag)
	}
	return !a.firstAppend.IsZero() && time.Since(a.firstAppend) >= rollAfter
}

// roll seals the active segment and starts a new one after it.
func (l *Log) roll() error {
	a := l.active()
	if err := a.seal(l.logger); err != nil {
		return l.fail(fmt.Errorf("seal segment: %w", err))
	}
	s, err := createSegment(l.dir, a.lastIndex()+1, a.nextOffset(), a.lastTerm())
	if err != nil {
		// Keep appending to the old segment; the roll is retried next time.
		if uerr := a.unseal(); uerr != nil {
			return l.fail(fmt.Errorf("roll segment: %w; reopen old segment: %v", err, uerr))
		}
		return fmt.Errorf("roll segment: %w", err)
	}
	l.segs = append(l.segs, s)
	l.logger.Debug("rolled segment", "base_index", s.baseIndex, "base_offset", s.baseOffset)
	return nil
}

// fail marks the log unusable after an error that may have lost data the
// page cache held (a failed fsync); it must be reopened, which recovers from
// what is on disk.
func (l *Log) fail(err error) error {
	if l.failed == nil {
		l.failed = err
		l.logger.Error("log failed; it must be reopened", "err", err)
	}
	return err
}

// Roll seals the active segment now if it holds any entry.
func (l *Log) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active().idx.len() == 0 {
		return nil
	}
	return l.roll()
}

// SetHardState records raft's hard state. A change of term or vote is made
// durable by the next flush, before the waiters of later appends are told.
func (l *Log) SetHardState(hs HardState) {
	l.mu.Lock()
	l.hs = hs
	changed := hs.Term != l.hsDurable.Term || hs.Vote != l.hsDurable.Vote
	if changed {
		l.seq++
	}
	l.mu.Unlock()
	if changed {
		l.store.flusher.markDirty(l)
	}
}

// SetConfState records the raft configuration (opaque bytes) durably
// before returning; configuration changes are rare.
func (l *Log) SetConfState(conf []byte) error {
	conf = slices.Clone(conf)
	if err := l.store.persistConf(l, conf); err != nil {
		return err
	}
	l.mu.Lock()
	l.conf = conf
	l.mu.Unlock()
	return nil
}

// ConfState returns the raft configuration last set.
func (l *Log) ConfState() []byte {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.conf
}

// HardState returns the last hard state set.
func (l *Log) HardState() HardState {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hs
}

// Commit records that entries up to index are committed; the high watermark
// becomes the offset after it. It never moves backwards.
func (l *Log) Commit(index uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if index <= l.committed {
		return nil
	}
	hw, err := l.offsetAfterLocked(index)
	if err != nil {
		return fmt.Errorf("commit %d: %w", index, err)
	}
	l.committed, l.hw = index, hw
	// An entry applied is committed: raft's commit index is at least its
	// index, even while the hard state saying so waits (for disk space).
	// The checkpoint must never hold an applied index above raft's commit,
	// which raft refuses at start.
	l.hs.Commit = max(l.hs.Commit, index)
	l.store.stateChanged()
	return nil
}

// TruncateAfter drops every entry after index, durably. Committed entries
// cannot be dropped. The waiters of appends that wrote dropped entries are
// told ErrTruncated: those entries never become durable.
func (l *Log) TruncateAfter(index uint64) error {
	l.mu.Lock()
	err := l.truncateAfterLocked(index)
	truncated := l.truncated
	l.truncated = nil
	l.mu.Unlock()
	callWaiters(truncated, ErrTruncated)
	l.store.flusher.markDirty(l)
	return err
}

// truncateAfterLocked drops the entries after index. The waiters of
// appends that wrote any of them move to l.truncated; the others stay:
// the truncation makes nothing durable that a flush has not.
func (l *Log) truncateAfterLocked(index uint64) error {
	if l.closed {
		return ErrClosed
	}
	if index >= l.lastIndex() {
		return nil
	}
	if index+1 < l.firstIndex() {
		return fmt.Errorf("truncate after %d: %w", index, ErrCompacted)
	}
	if index < l.committed {
		return fmt.Errorf("truncate after %d would drop committed entries (commit index %d)", index, l.committed)
	}
	l.truncations++
	l.durableIndex = min(l.durableIndex, index)
	l.removeStateAfter(index)
	l.waiters = slices.DeleteFunc(l.waiters, func(w waiter) bool {
		if w.last > index {
			l.truncated = append(l.truncated, w)
			return true
		}
		return false
	})
	k := l.segmentFor(index + 1)
	n := int(index + 1 - l.segs[k].baseIndex)
	removed := false
	for len(l.segs) > k+1 || (n == 0 && k > 0 && len(l.segs) == k+1) {
		last := l.segs[len(l.segs)-1]
		l.segs = l.segs[:len(l.segs)-1]
		if err := l.dropSegment(last); err != nil {
			return l.fail(err)
		}
		removed = true
		if len(l.segs) == k {
			// The whole of segment k went; truncate at the end of k-1.
			k--
			n = l.segs[k].idx.len()
		}
	}
	if removed {
		if err := syncDir(l.dir); err != nil {
			return l.fail(err)
		}
	}
	s := l.segs[k]
	if n < s.idx.len() || s.sealed {
		if err := s.truncateTo(n); err != nil {
			return l.fail(err)
		}
	}
	return nil
}

// dropSegment removes s from use; its files go once readers are done.
func (l *Log) dropSegment(s *segment) error {
	err := s.markDeleted()
	s.unmapIndex()
	s.release()
	return err
}

// SetLogStartOffset moves the log start forward to offset (DeleteRecords,
// retention) and deletes whole segments below it. The new start is made
// durable before anything is deleted or reported.
func (l *Log) SetLogStartOffset(offset int64) error {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.RLock()
	cur, hw := l.logStart, l.hw
	l.mu.RUnlock()
	if offset <= cur {
		return nil
	}
	if offset > hw {
		return &OffsetOutOfRangeError{Offset: offset, LogStart: cur, NextOffset: hw}
	}
	if err := l.store.persistLogStart(l, offset); err != nil {
		return err
	}
	l.mu.Lock()
	l.logStart = max(l.logStart, offset)
	dropped, err := l.deleteSegmentsLocked(func(s *segment) bool { return s.nextOffset() <= l.logStart })
	l.mu.Unlock()
	return errors.Join(err, l.finishDelete(dropped))
}

// deleteSegmentsLocked takes sealed segments off the front while del says so
// and the segment is entirely committed, renaming their files to *.deleted.
// The caller passes them to finishDelete once it has released l.mu: removing
// large files can take tens of milliseconds each (more with online discard),
// and appends must not wait behind it.
func (l *Log) deleteSegmentsLocked(del func(*segment) bool) ([]*segment, error) {
	n := 0
	for n < len(l.segs)-1 && l.segs[n].lastIndex() <= l.committed && del(l.segs[n]) {
		n++
	}
	if n == 0 {
		return nil, nil
	}
	for _, s := range l.segs[:n] {
		l.logger.Info("deleting segment", "base_index", s.baseIndex, "base_offset", s.baseOffset, "next_offset", s.nextOffset())
		if err := s.markDeleted(); err != nil {
			return nil, l.fail(err)
		}
	}
	dropped := slices.Clone(l.segs[:n])
	for _, s := range dropped {
		s.unmapIndex()
	}
	l.segs = slices.Delete(l.segs, 0, n)
	l.logStart = max(l.logStart, l.segs[0].baseOffset)
	return dropped, nil
}

// finishDelete drops the log's references to segments taken off it (their
// files are removed once no reader holds them) and makes the removal
// durable. Called without l.mu.
func (l *Log) finishDelete(dropped []*segment) error {
	if len(dropped) == 0 {
		return nil
	}
	start := time.Now()
	for _, s := range dropped {
		s.release()
	}
	err := syncDir(l.dir)
	l.logger.Debug("deleted segments", "segments", len(dropped), "took", time.Since(start))
	return err
}

// Reset drops every entry and restarts the log empty after (index, term) at
// nextOffset; a replica installing a snapshot uses it. The log start and high
// watermark become nextOffset.
func (l *Log) Reset(index, term uint64, nextOffset int64) error {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.Lock()
	err := l.resetLocked(index, term, nextOffset)
	truncated := l.truncated
	l.truncated = nil
	l.mu.Unlock()
	callWaiters(truncated, ErrTruncated)
	l.store.flusher.markDirty(l)
	if err == nil {
		l.store.stateChanged()
	}
	return err
}

func (l *Log) resetLocked(index, term uint64, nextOffset int64) error {
	if l.closed {
		return ErrClosed
	}
	l.truncations++
	l.removeStateAfter(0)
	l.waiters = slices.DeleteFunc(l.waiters, func(w waiter) bool {
		if w.last > 0 {
			l.truncated = append(l.truncated, w)
			return true
		}
		return false
	})
	for _, s := range l.segs {
		if err := l.dropSegment(s); err != nil {
			return l.fail(err)
		}
	}
	l.segs = nil
	if err := syncDir(l.dir); err != nil {
		return l.fail(err)
	}
	s, err := createSegment(l.dir, index+1, nextOffset, term)
	if err != nil {
		return l.fail(err)
	}
	l.segs = []*segment{s}
	l.committed, l.hw, l.logStart = index, nextOffset, nextOffset
	l.hs.Commit = max(l.hs.Commit, index)
	l.durableIndex = index
	return nil
}

// Close syncs and closes the log. Waiters still pending are told.
func (l *Log) Close() error {
	err := l.Sync()
	if errors.Is(err, ErrClosed) {
		return nil
	}
	l.mu.Lock()
	l.closed = true
	ws := l.takeWaitersLocked()
	l.closeSegments()
	l.mu.Unlock()
	callWaiters(ws, ErrClosed)
	l.store.logClosed(l)
	return err
}

// closeSegments releases the segment files. A log that had any keeps an
// empty stand-in at its end, so a closed log still answers its first and
// last index, last term and next offset (a failed replica is inspected
// after its log closed) instead of panicking.
func (l *Log) closeSegments() {
	if len(l.segs) == 0 {
		return
	}
	a := l.active()
	end := &segment{dir: l.dir, baseIndex: a.lastIndex() + 1, baseOffset: a.nextOffset(), prevTerm: a.lastTerm(), sealed: true}
	end.refs.Store(1)
	for _, s := range l.segs {
		s.unmapIndex()
		s.release()
	}
	l.segs = []*segment{end}
}

// syncTarget is what one flush round makes durable for a log.
type syncTarget struct {
	log         *Log
	seg         *segment
	seq         uint64
	last        uint64 // the log's last index when the round began
	truncations uint64
	checkpoint  bool
}

// beginSync captures what a flush must cover and pins the active segment.
func (l *Log) beginSync() (syncTarget, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.failed != nil || l.durableSeq == l.seq {
		return syncTarget{}, false
	}
	t := syncTarget{log: l, seg: l.active(), seq: l.seq, last: l.lastIndex(), truncations: l.truncations}
	t.seg.acquire()
	t.checkpoint = l.hs.Term != l.hsDurable.Term || l.hs.Vote != l.hsDurable.Vote
	return t, true
}

// endSync records the outcome of a flush and tells the waiters it covers.
// A failed fdatasync fails the log: the page cache may have dropped what it
// held. A failed checkpoint write (the hard state) fails nothing: the
// waiters wait, and the flush is tried again later, so a full disk stalls
// the log until space is freed rather than killing it.
func (l *Log) endSync(t syncTarget, dataErr, ckErr error) {
	t.seg.release()
	l.mu.Lock()
	var ws []waiter
	switch {
	case dataErr != nil:
		dataErr = l.fail(fmt.Errorf("fdatasync: %w", dataErr))
		ws = l.takeWaitersLocked()
	case ckErr != nil:
	default:
		if t.truncations == l.truncations {
			l.durableIndex = max(l.durableIndex, t.last)
		}
		ws = l.markDurableLocked(t.seq)
	}
	l.mu.Unlock()
	callWaiters(ws, dataErr)
	if dataErr == nil && ckErr != nil {
		l.store.flusher.retryLater(l)
	}
}

// DurableIndex returns the last entry known to be on disk. After a failure
// the entries past it may have been lost with the page cache, even if a
// read still finds them.
func (l *Log) DurableIndex() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.durableIndex
}

// markDurableLocked moves durableSeq to seq and returns the waiters it
// covers, to be called after l.mu is released.
func (l *Log) markDurableLocked(seq uint64) []waiter {
	if seq <= l.durableSeq {
		return nil
	}
	l.durableSeq = seq
	n := 0
	for n < len(l.waiters) && l.waiters[n].seq <= seq {
		n++
	}
	done := slices.Clone(l.waiters[:n])
	l.waiters = slices.Delete(l.waiters, 0, n)
	return done
}

func (l *Log) takeWaitersLocked() []waiter {
	ws := l.waiters
	l.waiters = nil
	return ws
}

func callWaiters(ws []waiter, err error) {
	for _, w := range ws {
		w.done(err)
	}
}

// finishUnflushed tells waiters that no flush will come: the store closed.
func (l *Log) finishUnflushed() {
	l.mu.Lock()
	ws := l.takeWaitersLocked()
	l.mu.Unlock()
	callWaiters(ws, ErrClosed)
}

// setHardStateDurable records that the checkpoint now holds hs.
func (l *Log) setHardStateDurable(hs HardState) {
	l.mu.Lock()
	l.hsDurable = hs
	l.mu.Unlock()
}

func (l *Log) state() logState {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return logState{hw: l.hw, committed: l.committed, logStart: l.logStart, hs: l.hs, conf: l.conf}
}
