package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// heldFlushes opens a store whose flusher waits until maxBatch appends are
// pending, so a test decides when a flush happens.
func heldFlushes(t *testing.T, maxBatch int) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir()}
	s, err := Open(e.dir, Options{GroupCommitInterval: time.Hour, MaxBatchSize: maxBatch})
	if err != nil {
		t.Fatal(err)
	}
	e.store = s
	t.Cleanup(func() { e.store.Close() })
	return e
}

func waiterResult(ch chan error) (error, bool) {
	select {
	case err := <-ch:
		return err, true
	default:
		return nil, false
	}
}

// Entries removed by a truncation before they were flushed are never
// reported durable: their waiters get ErrTruncated. A waiter for what
// remains, and one for a hard state, still wait for the flush.
func TestTruncationNeverReportsRemovedEntriesDurable(t *testing.T) {
	// Six calls mark the log dirty (four appends, the hard state, the
	// Sync): the flush runs at the sixth, never earlier.
	e := heldFlushes(t, 6)
	l := e.log("t-0", DefaultLogConfig())
	b := makeBatch(1, 0, "x")
	old := make(chan error, 1)
	kept := make(chan error, 1)
	if err := l.Append([]Entry{batchEntry(l, 1, 1, 0, b)}, func(err error) { kept <- err }); err != nil {
		t.Fatal(err)
	}
	if err := l.Append([]Entry{batchEntry(l, 2, 1, 1, b), batchEntry(l, 3, 1, 2, b)}, func(err error) { old <- err }); err != nil {
		t.Fatal(err)
	}
	l.SetHardState(HardState{Term: 2, Vote: 2})
	hs := make(chan error, 1)
	if err := l.Append(nil, func(err error) { hs <- err }); err != nil {
		t.Fatal(err)
	}
	// A new leader's entry replaces index 2 onwards.
	if err := l.Append([]Entry{batchEntry(l, 2, 2, 1, b)}, nil); err != nil {
		t.Fatal(err)
	}
	if err, ok := waiterResult(old); !ok || !errors.Is(err, ErrTruncated) {
		t.Fatalf("waiter of the truncated entries: %v (told: %v), want ErrTruncated at once", err, ok)
	}
	if err, ok := waiterResult(kept); ok {
		t.Fatalf("waiter of a kept entry told %v before any flush", err)
	}
	if err, ok := waiterResult(hs); ok {
		t.Fatalf("waiter of a hard state told %v before any flush", err)
	}
	if err := l.Sync(); err != nil { // the sixth: the flush runs
		t.Fatal(err)
	}
	for name, ch := range map[string]chan error{"kept entry": kept, "hard state": hs} {
		if err, ok := waiterResult(ch); !ok || err != nil {
			t.Fatalf("%s after the flush: %v (told: %v)", name, err, ok)
		}
	}
	if got := l.DurableIndex(); got != 2 {
		t.Fatalf("durable index %d, want 2", got)
	}
}

// A hard state that cannot be written (here the checkpoint's temporary
// file cannot be created, as on a full disk) fails no log: the appends
// behind it wait, and complete once it can be written.
func TestCheckpointFailureStallsInsteadOfFailing(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	blocker := filepath.Join(e.dir, checkpointName+".tmp")
	if err := os.Mkdir(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	l.SetHardState(HardState{Term: 7, Vote: 1})
	done := make(chan error, 1)
	if err := l.Append([]Entry{batchEntry(l, 1, 7, 0, makeBatch(1, 0, "x"))}, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.store.Flusher().Stats().CheckpointErrors.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the checkpoint write never failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err, ok := waiterResult(done); ok {
		t.Fatalf("append reported %v while its hard state could not be written", err)
	}
	// The log still takes appends.
	if err := l.Append([]Entry{batchEntry(l, 2, 7, 1, makeBatch(1, 0, "y"))}, nil); err != nil {
		t.Fatalf("append while the checkpoint fails: %v", err)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("append after the checkpoint could be written: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the append never completed once the checkpoint could be written")
	}
	st, err := readCheckpoint(filepath.Join(e.dir, checkpointName))
	if err != nil || st["internal/t-0"].hs.Term != 7 {
		t.Fatalf("checkpoint %+v %v", st["internal/t-0"], err)
	}
}

// The applied (committed) index saved never exceeds raft's saved commit,
// which raft would refuse at start; an older checkpoint that has it the
// other way round is mended when read.
func TestSavedAppliedNeverExceedsSavedCommit(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	l.SetHardState(HardState{Term: 1, Vote: 1, Commit: 1})
	b := makeBatch(1, 0, "x")
	if err := l.AppendSync([]Entry{batchEntry(l, 1, 1, 0, b), batchEntry(l, 2, 1, 1, b), batchEntry(l, 3, 1, 2, b)}); err != nil {
		t.Fatal(err)
	}
	// Entries are applied while the hard state carrying their commit
	// index is still to be written.
	if err := l.Commit(3); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	st, err := readCheckpoint(filepath.Join(e.dir, checkpointName))
	if err != nil {
		t.Fatal(err)
	}
	if s := st["internal/t-0"]; s.committed > s.hs.Commit {
		t.Fatalf("checkpoint holds applied %d above commit %d", s.committed, s.hs.Commit)
	}
	e.store.Close()
	s := st["internal/t-0"]
	s.hs.Commit = 1
	st["internal/t-0"] = s
	if err := os.WriteFile(filepath.Join(e.dir, checkpointName), encodeCheckpoint(st), 0o644); err != nil {
		t.Fatal(err)
	}
	e.open()
	l = e.log("t-0", DefaultLogConfig())
	if hs := l.HardState(); hs.Commit < l.Committed() {
		t.Fatalf("restored commit %d below applied %d", hs.Commit, l.Committed())
	}
}

// Everything a log holds when it opens is durable: a tail the process
// wrote but did not flush before it died (here: the files copied while
// the flush is held) is synced at open before it counts as durable.
func TestOpenedLogIsDurable(t *testing.T) {
	e := heldFlushes(t, 1000)
	l := e.log("t-0", DefaultLogConfig())
	b := makeBatch(1, 0, "x")
	if err := l.Append([]Entry{batchEntry(l, 1, 1, 0, b), batchEntry(l, 2, 1, 1, b)}, nil); err != nil {
		t.Fatal(err)
	}
	if got := l.DurableIndex(); got != 0 {
		t.Fatalf("durable index %d before any flush", got)
	}
	crashed := t.TempDir()
	copyTree(t, e.dir, crashed)
	os.Remove(filepath.Join(crashed, lockFileName))
	s, err := Open(crashed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l2, err := s.OpenLog(InternalLog("t-0"), DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	if l2.LastIndex() != 2 || l2.DurableIndex() != 2 {
		t.Fatalf("reopened: last index %d, durable index %d, want 2 and 2", l2.LastIndex(), l2.DurableIndex())
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A closed log (a failed replica's, inspected by the admin API and the
// metrics until it is reopened) answers its accessors instead of
// panicking, and refuses reads and writes.
func TestClosedLogAnswers(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	appendBatches(t, l, 3, makeBatch(2, 0, "a"), makeBatch(2, 0, "b"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != 2 || l.NextOffset() != 4 || l.LastTerm() != 3 || l.HighWatermark() != 4 {
		t.Fatalf("closed log: last %d next %d term %d hw %d", l.LastIndex(), l.NextOffset(), l.LastTerm(), l.HighWatermark())
	}
	// The other accessors only have to answer without panicking.
	_ = l.Size() + int64(l.SegmentCount()) + l.TermAtOffset(1)
	l.EndOffsetForEpoch(1)
	l.Scrub()
	if _, err := l.Read(0, 1<<20, 4, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("read from a closed log: %v", err)
	}
	if err := l.Append([]Entry{{Index: 3, Term: 3}}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("append to a closed log: %v", err)
	}
}
