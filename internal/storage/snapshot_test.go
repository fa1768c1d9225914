package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestSnapshotsCompactionAndInstall(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", smallSegments(2048))
	if _, ok, err := l.LatestSnapshot(); ok || err != nil {
		t.Fatalf("a new log has a snapshot: %v %v", ok, err)
	}
	for range 40 {
		appendBatches(t, l, 2, makeBatch(4, 0, "x"))
	}
	if l.SegmentCount() < 3 {
		t.Fatalf("%d segments, want several", l.SegmentCount())
	}
	for _, i := range []uint64{10, 30} {
		if err := l.SaveSnapshot(Snapshot{Index: i, Term: 2, Conf: []byte("conf"), Data: []byte("state")}); err != nil {
			t.Fatal(err)
		}
	}
	s, ok, err := l.LatestSnapshot()
	if !ok || err != nil || s.Index != 30 || string(s.Data) != "state" || string(s.Conf) != "conf" {
		t.Fatalf("latest snapshot %+v %v %v", s, ok, err)
	}
	if idx, _ := snapshotIndexes(l.Dir()); len(idx) != 1 {
		t.Fatalf("older snapshots kept: %v", idx)
	}
	dropped, err := l.CompactTo(30)
	if err != nil || dropped == 0 {
		t.Fatalf("compact: dropped %d, %v", dropped, err)
	}
	if f := l.FirstIndex(); f > 31 || f <= 1 {
		t.Fatalf("first index %d after compacting to 30", f)
	}
	if _, err := l.Term(l.FirstIndex() - 1); err != nil {
		t.Fatalf("the term before the first index is gone: %v", err)
	}

	// A damaged snapshot is reported as such, not used.
	path := filepath.Join(l.Dir(), snapshotName(30))
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o644)
	var ce *CorruptionError
	if _, _, err := l.LatestSnapshot(); !errors.As(err, &ce) {
		t.Fatalf("damaged snapshot: %v", err)
	}

	// A follower installs a snapshot: the log restarts after it.
	f := e.log("f-0", DefaultLogConfig())
	appendBatches(t, f, 1, makeBatch(1, 0, "old"))
	if err := f.InstallSnapshot(Snapshot{Index: 100, Term: 5, Conf: []byte("c2"), Data: []byte("s2")}, 0); err != nil {
		t.Fatal(err)
	}
	if f.FirstIndex() != 101 || f.LastIndex() != 100 || f.LastTerm() != 5 || string(f.ConfState()) != "c2" || f.Committed() != 100 {
		t.Fatalf("after install: first %d last %d term %d conf %q committed %d", f.FirstIndex(), f.LastIndex(), f.LastTerm(), f.ConfState(), f.Committed())
	}
	e.reopen()
	f = e.log("f-0", DefaultLogConfig())
	if s, ok, err := f.LatestSnapshot(); !ok || err != nil || s.Index != 100 {
		t.Fatalf("snapshot after reopen: %+v %v %v", s, ok, err)
	}
	if f.FirstIndex() != 101 || f.HardState().Commit < 100 {
		t.Fatalf("after reopen: first %d, commit %d", f.FirstIndex(), f.HardState().Commit)
	}
}

func TestStateFiles(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	for _, i := range []uint64{5, 9, 12} {
		if err := l.SaveState("producers", i, []byte(fmt.Sprintf("as of %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if idx, _ := stateFileIndexes(l.Dir(), "producers"); len(idx) != stateFilesKept || idx[len(idx)-1] != 12 {
		t.Fatalf("state files kept: %v", idx)
	}
	if i, d, ok, err := l.LatestState("producers", 11); !ok || err != nil || i != 9 || string(d) != "as of 9" {
		t.Fatalf("latest at or below 11: %d %q %v %v", i, d, ok, err)
	}
	// The newest damaged: the one before it serves.
	path := filepath.Join(l.Dir(), stateFileName("producers", 12))
	b, _ := os.ReadFile(path)
	b[0] ^= 1
	os.WriteFile(path, b, 0o644)
	if i, _, ok, err := l.LatestState("producers", 100); !ok || err != nil || i != 9 {
		t.Fatalf("with the newest damaged: %d %v %v", i, ok, err)
	}
	// A truncation below a state's index removes it.
	appendBatches(t, l, 1, makeBatch(1, 0, "x"))
	l.removeStateAfter(10)
	if idx, _ := stateFileIndexes(l.Dir(), "producers"); len(idx) != 1 || idx[0] != 9 {
		t.Fatalf("after a truncation to 10: %v", idx)
	}
}
