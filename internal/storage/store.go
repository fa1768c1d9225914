package storage

import (
	"bytes"
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
}

// Defaults, chosen by measurement (docs/storage.md).
const (
	DefaultGroupCommitInterval    = 0
	DefaultMaxBatchSize           = 1000
	DefaultCheckpointInterval     = time.Second
	DefaultRetentionCheckInterval = 30 * time.Second
)

const (
	storeFormat     = 1
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

	stop chan struct{}
	wg   sync.WaitGroup
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
		logs: map[string]*Log{}, stop: make(chan struct{}),
	}
	if err := s.checkFormat(); err != nil {
		lock.Close()
		return nil, err
	}
	if s.saved, err = readCheckpoint(filepath.Join(dir, checkpointName)); err != nil {
		lock.Close()
		return nil, err
	}
	s.removeDeletedLogs()
	s.flusher = newFlusher(opts.GroupCommitInterval, opts.MaxBatchSize, s.writeCheckpoint, opts.OnSync)
	s.wg.Add(2)
	go s.checkpointLoop()
	go s.retentionLoop()
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

// checkFormat reads the store format version, or writes it for a new store.
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
	if n != storeFormat {
		return fmt.Errorf("data directory %s has store format %d; this release reads format %d", s.dir, n, storeFormat)
	}
	return nil
}

// OpenLog opens the log called name (creating it if new) with cfg.
func (s *Store) OpenLog(name string, cfg LogConfig) (*Log, error) {
	if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." || strings.HasSuffix(name, deletedSuffix) {
		return nil, fmt.Errorf("invalid log name %q", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if l, ok := s.logs[name]; ok {
		return l, nil
	}
	l, err := openLog(s, name, cfg, s.saved[name])
	if err != nil {
		return nil, err
	}
	s.logs[name] = l
	return l, nil
}

// Log returns the open log called name, or nil.
func (s *Store) Log(name string) *Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs[name]
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

// LogNames lists the logs present on disk, open or not.
func (s *Store) LogNames() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasSuffix(e.Name(), deletedSuffix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// RemoveLog closes and deletes the log called name and its files.
func (s *Store) RemoveLog(name string) error {
	s.mu.Lock()
	l := s.logs[name]
	s.mu.Unlock()
	if l != nil {
		l.Close()
	}
	dir := filepath.Join(s.dir, name)
	gone := fmt.Sprintf("%s.%d%s", dir, time.Now().UnixNano(), deletedSuffix)
	if err := os.Rename(dir, gone); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove log %s: %w", name, err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.ckMu.Lock()
	s.mu.Lock()
	delete(s.saved, name)
	s.mu.Unlock()
	s.ckMu.Unlock()
	s.stateDirty.Store(true)
	if err := os.RemoveAll(gone); err != nil {
		s.logger.Warn("could not remove deleted log directory", "dir", gone, "err", err)
	}
	return nil
}

func (s *Store) removeDeletedLogs() {
	ents, _ := os.ReadDir(s.dir)
	for _, e := range ents {
		if e.IsDir() && strings.HasSuffix(e.Name(), deletedSuffix) {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
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
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if s.stateDirty.Load() {
				if err := s.writeCheckpoint(); err != nil {
					s.logger.Error("checkpoint failed", "err", err)
				}
			}
		}
	}
}

func (s *Store) retentionLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.ApplyRetention(time.Now())
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
	s.wg.Wait()
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
