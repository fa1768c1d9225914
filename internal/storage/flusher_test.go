package storage

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// TestGroupCommitAcrossLogs has many writers on many logs at once. Every
// append must come back durable and in place, and the flusher must have
// covered many appends per fdatasync round.
func TestGroupCommitAcrossLogs(t *testing.T) {
	e := newEnv(t)
	const logs, writers, perWriter = 6, 4, 40
	var wg sync.WaitGroup
	errs := make(chan error, logs*writers)
	for i := range logs {
		l := e.log(fmt.Sprintf("t-%d", i), smallSegments(16<<10))
		var mu sync.Mutex // writers of one log take turns to pick the next index
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perWriter {
					mu.Lock()
					ent := batchEntry(l, l.LastIndex()+1, 1, l.NextOffset(), makeBatch(2, 0, "g"))
					ch := make(chan error, 1)
					err := l.Append([]Entry{ent}, func(err error) { ch <- err })
					mu.Unlock()
					if err == nil {
						err = <-ch
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	appends := uint64(logs * writers * perWriter)
	rounds := e.store.Flusher().Stats().Rounds.Load()
	t.Logf("%d appends in %d flush rounds, %d fdatasyncs", appends, rounds, e.store.Flusher().Stats().Syncs.Load())
	if rounds >= appends {
		t.Fatalf("no group commit: %d rounds for %d appends", rounds, appends)
	}
	e.reopen()
	for i := range logs {
		l := e.log(fmt.Sprintf("t-%d", i), smallSegments(16<<10))
		l.Commit(l.LastIndex())
		if got := readAll(t, l); !slices.Equal(got, seq(0, 2*writers*perWriter)) {
			t.Fatalf("log %d: %d offsets", i, len(got))
		}
	}
}

// TestFullDisk runs the log on a real, tiny filesystem until it is full:
// the failing append returns an error naming the cause, nothing partial is
// left, and once space is back the log goes on.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	ballast := dir + "/ballast"
	if err := os.WriteFile(ballast, make([]byte, 256<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir+"/data", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.OpenLog(InternalLog("t-0"), smallSegments(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	big := makeBatch(50, 0, "fill") // about 6 KiB
	var full error
	for range 1000 {
		ent := batchEntry(l, l.LastIndex()+1, 1, l.NextOffset(), big)
		if full = l.AppendSync([]Entry{ent}); full != nil {
			break
		}
		l.Commit(l.LastIndex())
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("filling the disk gave %v, want ENOSPC", full)
	}
	t.Logf("full disk error: %v", full)
	want := l.NextOffset()
	if got := readAll(t, l); !slices.Equal(got, seq(0, want)) {
		t.Fatalf("after ENOSPC: %d offsets readable, want %d", len(got), want)
	}
	os.Remove(ballast)
	appendBatches(t, l, 1, big)
	if l.NextOffset() != want+50 {
		t.Fatalf("append after freeing space: next offset %d", l.NextOffset())
	}
}
