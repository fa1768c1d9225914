package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// Options configures a Store.
type Options struct {
	// GroupCommitInterval is how long a flush waits for more appends after
	// the first one (the [wal] group_commit_interval_ms key). Zero flushes as
	// soon as the previous flush is done, which batches naturally under load.
	GroupCommitInterval time.Duration
	// MaxBatchSize ends that wait once this many appends are pending (the
	// [wal] max_batch_size key).
	MaxBatchSize int
	// CheckpointInterval is how often changed high watermarks are written.
	CheckpointInterval time.Duration
	// RetentionCheckInterval is how often retention runs.
	RetentionCheckInterval time.Duration
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// OnSync, if set, observes the duration of every fdatasync.
	OnSync func(time.Duration)
	// Cleaner configures compaction of logs whose config says Compact.
	Cleaner CleanerOptions
}

// Defaults, chosen by measurement (docs/storage.md).
const (
	DefaultGroupCommitInterval    = 0
	DefaultMaxBatchSize           = 1000
	DefaultCheckpointInterval     = time.Second
	DefaultRetentionCheckInterval = 30 * time.Second
)

const (
	// storeFormat 2 keeps logs in namespaces (internal/, kafka/) and binds
	// partition logs to topic ids; format 1 kept every log at the top level
	// under its topic-partition name, and is migrated at open.
	storeFormat     = 2
	metaFileName    = "store.meta"
	lockFileName    = ".lock"
	checkpointName  = "store.checkpoint"
	checkpointMagic = "CHRONIKC"
	checkpointVer   = 1
)

// Store owns the logs of one node.
type Store struct {
	dir      string
	opts     Options
	logger   *slog.Logger
	lockFile *os.File
	flusher  *Flusher

	mu     sync.Mutex
	logs   map[string]*Log
	saved  map[string]logState // last checkpointed state of every known log
	closed bool

	ckMu       sync.Mutex // serializes checkpoint writes
	stateDirty atomic.Bool

	cleaner *cleaner
	// ctx ends when the store closes; it interrupts a cleaning pass.
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	wg     sync.WaitGroup
}

// logState is what the checkpoint keeps per log.
type logState struct {
	hw        int64
	committed uint64
	logStart  int64
	hs        HardState
	// conf is the raft configuration (an encoded raftpb.ConfState), opaque here.
	conf []byte
}

// Open opens (creating if needed) the store in dir. It takes an exclusive
// lock on the directory: a second process gets an error at once.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBatchSize <= 0 {
		opts.MaxBatchSize = DefaultMaxBatchSize
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.RetentionCheckInterval <= 0 {
		opts.RetentionCheckInterval = DefaultRetentionCheckInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir: dir, opts: opts, logger: opts.Logger, lockFile: lock,
		logs: map[string]*Log{}, stop: make(chan struct{}), cleaner: newCleaner(opts.Cleaner),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.checkFormat(); err != nil {
		lock.Close()
		return nil, err
	}
	if s.saved, err = readCheckpoint(filepath.Join(dir, checkpointName)); err != nil {
		lock.Close()
		return nil, err
	}
	for name := range s.saved {
		if _, ok := parseLogName(name); !ok {
			lock.Close()
			return nil, fmt.Errorf("checkpoint %s names a log %q outside every namespace; this release did not write it", filepath.Join(dir, checkpointName), name)
		}
	}
	s.removeDeletedLogs()
	s.flusher = newFlusher(opts.GroupCommitInterval, opts.MaxBatchSize, s.writeCheckpoint, opts.OnSync)
	s.wg.Add(2)
	go s.checkpointLoop()
	go s.every(opts.RetentionCheckInterval, s.ApplyRetention)
	if !opts.Cleaner.Disabled {
		s.wg.Add(1)
		go s.every(s.cleaner.opts.Backoff, func(now time.Time) { s.Clean(now) })
	}
	return s, nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Flusher returns the group commit flusher, for its statistics.
func (s *Store) Flusher() *Flusher { return s.flusher }

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another chronik-server (pid %s)", dir, strings.TrimSpace(string(owner)))
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// checkFormat reads the store format version, writes it for a new store,
// and migrates a format-1 store.
func (s *Store) checkFormat() error {
	path := filepath.Join(s.dir, metaFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return writeFileAtomic(path, fmt.Appendf(nil, "format=%d\n", storeFormat), nil)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "format=")
	n, err := strconv.Atoi(v)
	if !ok || err != nil {
		return fmt.Errorf("%s is not a chronik store meta file", path)
	}
	switch n {
	case storeFormat:
		return nil
	case 1:
		return s.migrateFormat1()
	}
	return fmt.Errorf("data directory %s has store format %d; this release reads format %d", s.dir, n, storeFormat)
}

// migrateFormat1 moves every log of a format-1 store into the legacy
// namespace, where the server adopts each under its new name
// (AdoptLegacyLog) once it knows the topic's id. Each step can be repeated,
// so a crash in the middle is finished at the next open.
func (s *Store) migrateFormat1() error {
	s.logger.Warn("migrating a format-1 data directory: logs move to the legacy namespace until they are bound to their topic ids", "dir", s.dir)
	if err := os.MkdirAll(filepath.Join(s.dir, legacyDir), 0o755); err != nil {
		return fmt.Errorf("migrate store format 1: %w", err)
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("migrate store format 1: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || name == internalDir || name == partitionDir || name == legacyDir || strings.HasSuffix(name, deletedSuffix) {
			continue
		}
		if err := os.Rename(filepath.Join(s.dir, name), legacyLog(name).dir(s.dir)); err != nil {
			return fmt.Errorf("migrate store format 1: move log %s: %w", name, err)
		}
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	ckPath := filepath.Join(s.dir, checkpointName)
	states, err := readCheckpoint(ckPath)
	if err != nil {
		return err
	}
	moved := make(map[string]logState, len(states))
	for name, st := range states {
		if !strings.Contains(name, "/") {
			name = legacyLog(name).path
		}
		moved[name] = st
	}
	if err := writeFileAtomic(ckPath, encodeCheckpoint(moved), nil); err != nil {
		return fmt.Errorf("migrate store format 1: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.dir, metaFileName), fmt.Appendf(nil, "format=%d\n", storeFormat), nil)
}

// AdoptLegacyLog gives the format-1 log called legacy (its old
// <topic>-<partition> directory name) its new name, with its checkpointed
// state. It reports false when there is no such log.
func (s *Store) AdoptLegacyLog(legacy string, to LogName) (bool, error) {
	from, ok := parseLogName(legacyLog(legacy).path)
	if !ok {
		return false, fmt.Errorf("adopt legacy log: bad name %q", legacy)
	}
	if _, ok := parseLogName(to.path); !ok {
		return false, fmt.Errorf("adopt legacy log %s: bad target name %q", legacy, to.path)
	}
	if _, err := os.Stat(from.dir(s.dir)); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs[from.path] != nil || s.logs[to.path] != nil {
		return false, fmt.Errorf("adopt legacy log %s as %s: a log is open", legacy, to)
	}
	if _, err := os.Stat(to.dir(s.dir)); err == nil {
		return false, fmt.Errorf("adopt legacy log %s: %s exists already", legacy, to)
	}
	if err := os.MkdirAll(filepath.Dir(to.dir(s.dir)), 0o755); err != nil {
		return false, fmt.Errorf("adopt legacy log %s: %w", legacy, err)
	}
	if err := os.Rename(from.dir(s.dir), to.dir(s.dir)); err != nil {
		return false, fmt.Errorf("adopt legacy log %s: %w", legacy, err)
	}
	if err := syncDir(filepath.Dir(to.dir(s.dir))); err != nil {
		return false, err
	}
	if st, ok := s.saved[from.path]; ok {
		s.saved[to.path] = st
		delete(s.saved, from.path)
		s.stateDirty.Store(true)
	}
	s.logger.Info("adopted a log of a format-1 data directory", "from", from.path, "as", to.path)
	return true, nil
}

// OpenLog opens the log called name (creating it if new) with cfg.
func (s *Store) OpenLog(name LogName, cfg LogConfig) (*Log, error) {
	if _, ok := parseLogName(name.path); !ok {
		return nil, fmt.Errorf("invalid log name %q", name.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if l, ok := s.logs[name.path]; ok {
		return l, nil
	}
	l, err := openLog(s, name.path, cfg, s.saved[name.path])
	if err != nil {
		return nil, err
	}
	s.logs[name.path] = l
	return l, nil
}

// Log returns the open log called name, or nil.
func (s *Store) Log(name LogName) *Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs[name.path]
}

// Logs returns the open logs.
func (s *Store) Logs() []*Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *Log) int { return strings.Compare(a.name, b.name) })
	return out
}

// LogNames lists the logs the store knows: those on disk, open or not, and
// those only its checkpoint remembers (a log whose removal a crash cut
// short, or whose directory was lost).
func (s *Store) LogNames() ([]LogName, error) {
	seen := map[string]bool{}
	var out []LogName
	add := func(path string) {
		if n, ok := parseLogName(path); ok && !seen[path] {
			seen[path] = true
			out = append(out, n)
		}
	}
	for _, ns := range []string{internalDir, legacyDir} {
		ents, err := readDirIfExists(filepath.Join(s.dir, ns))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() && !strings.HasSuffix(e.Name(), deletedSuffix) {
				add(ns + "/" + e.Name())
			}
		}
	}
	topics, err := readDirIfExists(filepath.Join(s.dir, partitionDir))
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		if !t.IsDir() {
			continue
		}
		parts, err := readDirIfExists(filepath.Join(s.dir, partitionDir, t.Name()))
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			if p.IsDir() && !strings.HasSuffix(p.Name(), deletedSuffix) {
				add(partitionDir + "/" + t.Name() + "/" + p.Name())
			}
		}
	}
	s.mu.Lock()
	for path := range s.saved {
		add(path)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b LogName) int { return strings.Compare(a.path, b.path) })
	return out, nil
}

func readDirIfExists(dir string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return ents, nil
}

// RemoveLog closes and deletes the log called name, its files and its
// checkpointed state.
func (s *Store) RemoveLog(name LogName) error {
	s.mu.Lock()
	l := s.logs[name.path]
	s.mu.Unlock()
	if l != nil {
		l.Close()
	}
	dir := name.dir(s.dir)
	gone := fmt.Sprintf("%s.%d%s", dir, time.Now().UnixNano(), deletedSuffix)
	if err := os.Rename(dir, gone); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove log %s: %w", name, err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s.ckMu.Lock()
	s.mu.Lock()
	delete(s.saved, name.path)
	s.mu.Unlock()
	s.ckMu.Unlock()
	s.stateDirty.Store(true)
	if err := os.RemoveAll(gone); err != nil {
		s.logger.Warn("could not remove deleted log directory", "dir", gone, "err", err)
	}
	if _, ok := name.Partition(); ok {
		// The topic's directory goes with its last partition.
		os.Remove(filepath.Dir(dir))
	}
	return nil
}

// removeDeletedLogs finishes removals a crash interrupted.
func (s *Store) removeDeletedLogs() {
	dirs := []string{s.dir, filepath.Join(s.dir, internalDir), filepath.Join(s.dir, legacyDir)}
	topics, _ := readDirIfExists(filepath.Join(s.dir, partitionDir))
	for _, t := range topics {
		if t.IsDir() {
			dirs = append(dirs, filepath.Join(s.dir, partitionDir, t.Name()))
		}
	}
	for _, d := range dirs {
		ents, _ := readDirIfExists(d)
		for _, e := range ents {
			if e.IsDir() && strings.HasSuffix(e.Name(), deletedSuffix) {
				os.RemoveAll(filepath.Join(d, e.Name()))
			}
		}
	}
}

func (s *Store) logClosed(l *Log) {
	st := l.state()
	s.mu.Lock()
	if s.logs[l.name] == l {
		delete(s.logs, l.name)
		s.saved[l.name] = st
	}
	s.mu.Unlock()
	s.stateDirty.Store(true)
}

// stateChanged notes that a high watermark moved; the checkpoint loop
// writes it. May be called with a log's mutex held.
func (s *Store) stateChanged() { s.stateDirty.Store(true) }

// persistConf writes the checkpoint with l's raft configuration set to conf.
func (s *Store) persistConf(l *Log, conf []byte) error {
	return s.writeCheckpointWith(func(states map[string]logState) {
		st := states[l.name]
		st.conf = conf
		states[l.name] = st
	})
}

// persistLogStart writes the checkpoint with l's log start at offset.
func (s *Store) persistLogStart(l *Log, offset int64) error {
	return s.writeCheckpointWith(func(states map[string]logState) {
		st := states[l.name]
		st.logStart = max(st.logStart, offset)
		states[l.name] = st
	})
}

func (s *Store) writeCheckpoint() error { return s.writeCheckpointWith(nil) }

// writeCheckpointWith writes the state of every log, durably, after letting
// adjust change it.
func (s *Store) writeCheckpointWith(adjust func(map[string]logState)) error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	s.stateDirty.Store(false)
	s.mu.Lock()
	states := make(map[string]logState, len(s.saved)+len(s.logs))
	for name, st := range s.saved {
		states[name] = st
	}
	open := make([]*Log, 0, len(s.logs))
	for name, l := range s.logs {
		states[name] = l.state()
		open = append(open, l)
	}
	s.mu.Unlock()
	if adjust != nil {
		adjust(states)
	}
	if err := writeFileAtomic(filepath.Join(s.dir, checkpointName), encodeCheckpoint(states), nil); err != nil {
		s.stateDirty.Store(true)
		return fmt.Errorf("write checkpoint: %w", err)
	}
	s.mu.Lock()
	for name, st := range states {
		s.saved[name] = st
	}
	s.mu.Unlock()
	for _, l := range open {
		l.setHardStateDurable(states[l.name].hs)
	}
	return nil
}

func encodeCheckpoint(states map[string]logState) []byte {
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	slices.Sort(names)
	b := []byte(checkpointMagic)
	b = binary.BigEndian.AppendUint32(b, checkpointVer)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for _, n := range names {
		st := states[n]
		b = binary.BigEndian.AppendUint16(b, uint16(len(n)))
		b = append(b, n...)
		b = binary.BigEndian.AppendUint64(b, uint64(st.hw))
		b = binary.BigEndian.AppendUint64(b, st.committed)
		b = binary.BigEndian.AppendUint64(b, uint64(st.logStart))
		b = binary.BigEndian.AppendUint64(b, st.hs.Term)
		b = binary.BigEndian.AppendUint64(b, st.hs.Vote)
		b = binary.BigEndian.AppendUint64(b, st.hs.Commit)
		b = binary.BigEndian.AppendUint32(b, uint32(len(st.conf)))
		b = append(b, st.conf...)
	}
	return binary.BigEndian.AppendUint32(b, recordbatch.Checksum(b))
}

func readCheckpoint(path string) (map[string]logState, error) {
	states := map[string]logState{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return states, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	bad := func(why string) error {
		return fmt.Errorf("checkpoint %s is damaged (%s); it is written atomically, so this is not a crash artifact: restore it or remove it to rebuild from the logs", path, why)
	}
	if len(b) < 20 || !bytes.Equal(b[:8], []byte(checkpointMagic)) {
		return nil, bad("bad header")
	}
	if binary.BigEndian.Uint32(b[len(b)-4:]) != recordbatch.Checksum(b[:len(b)-4]) {
		return nil, bad("CRC mismatch")
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != checkpointVer {
		return nil, fmt.Errorf("checkpoint %s has version %d; this release reads version %d", path, v, checkpointVer)
	}
	n := int(binary.BigEndian.Uint32(b[12:]))
	p := b[16 : len(b)-4]
	for range n {
		if len(p) < 2 {
			return nil, bad("truncated")
		}
		nl := int(binary.BigEndian.Uint16(p))
		if len(p) < 2+nl+48 {
			return nil, bad("truncated")
		}
		name := string(p[2 : 2+nl])
		p = p[2+nl:]
		states[name] = logState{
			hw:        int64(binary.BigEndian.Uint64(p)),
			committed: binary.BigEndian.Uint64(p[8:]),
			logStart:  int64(binary.BigEndian.Uint64(p[16:])),
			hs: HardState{
				Term:   binary.BigEndian.Uint64(p[24:]),
				Vote:   binary.BigEndian.Uint64(p[32:]),
				Commit: binary.BigEndian.Uint64(p[40:]),
			},
		}
		p = p[48:]
		if len(p) < 4 || len(p) < 4+int(binary.BigEndian.Uint32(p)) {
			return nil, bad("truncated")
		}
		cl := int(binary.BigEndian.Uint32(p))
		st := states[name]
		if cl > 0 {
			st.conf = bytes.Clone(p[4 : 4+cl])
		}
		states[name] = st
		p = p[4+cl:]
	}
	return states, nil
}

func (s *Store) checkpointLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.CheckpointInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if !s.stateDirty.Load() {
				continue
			}
			// Logged when it starts and stops failing, not every second
			// while the disk stays full.
			err := s.writeCheckpoint()
			switch {
			case err != nil && !failing:
				s.logger.Error("checkpoint failed; retrying every checkpoint interval", "err", err)
				failing = true
			case err == nil && failing:
				s.logger.Info("checkpoint written again")
				failing = false
			}
		}
	}
}

// every calls run every interval until the store closes.
func (s *Store) every(interval time.Duration, run func(now time.Time)) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			run(now)
		}
	}
}

// ApplyRetention runs retention on every open log now.
func (s *Store) ApplyRetention(now time.Time) {
	for _, l := range s.Logs() {
		if err := l.ApplyRetention(now); err != nil && !errors.Is(err, ErrClosed) {
			s.logger.Error("retention failed", "log", l.name, "err", err)
		}
	}
}

// Clean runs a compaction pass now over every open log that needs one, and
// returns what it did.
func (s *Store) Clean(now time.Time) CleanResult {
	var total CleanResult
	for _, l := range s.Logs() {
		start := time.Now()
		res, err := s.cleaner.clean(s.ctx, l, now)
		took := time.Since(start)
		s.cleaner.record(res, err, took)
		switch {
		case err != nil && !errors.Is(err, ErrClosed) && s.ctx.Err() == nil:
			s.logger.Error("log cleaning failed; it is retried at the next pass", "log", l.name, "err", err)
		case res.Segments > 0:
			s.logger.Info("log cleaned", "log", l.name, "segments", res.Segments, "records_removed", res.RecordsRemoved,
				"bytes_before", res.BytesBefore, "bytes_after", res.BytesAfter, "took", took)
		}
		total.add(res)
	}
	return total
}

// CleanerStats returns what the cleaner did since the store opened.
func (s *Store) CleanerStats() CleanerStats {
	s.cleaner.statsMu.Lock()
	defer s.cleaner.statsMu.Unlock()
	return s.cleaner.stats
}

// Close closes every log, writes the checkpoint and releases the lock.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.cancel()
	s.wg.Wait()
	s.flusher.drain()
	var errs []error
	for _, l := range s.Logs() {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", l.name, err))
		}
	}
	s.flusher.close()
	if err := s.writeCheckpoint(); err != nil {
		errs = append(errs, err)
	}
	s.lockFile.Close()
	return errors.Join(errs...)
}
