package storage

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// crashImage copies the store directory while the store is open: what the
// page cache holds is what a crash right now could leave on disk at best.
// Tests then damage the copy the way a crash or a bad disk would.
func crashImage(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	os.Remove(filepath.Join(dst, lockFileName))
	return dst
}

func openImage(t *testing.T, dir string, cfg LogConfig) (*Store, *Log, error) {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l, err := s.OpenLog(InternalLog("t-0"), cfg)
	return s, l, err
}

// buildImage writes n durable, committed batches of 3 records into segments
// of segBytes and returns a crash image of it.
func buildImage(t *testing.T, n int, segBytes int64) string {
	t.Helper()
	e := newEnv(t)
	l := e.log("t-0", smallSegments(segBytes))
	for i := range n {
		appendBatches(t, l, 1, makeBatch(3, int64(i), "r"))
	}
	return crashImage(t, e.dir)
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs := segmentFiles(t, filepath.Join(dir, "internal", "t-0"), ".log")
	slices.Sort(segs)
	return segs[len(segs)-1]
}

func firstSegment(t *testing.T, dir string) string {
	t.Helper()
	segs := segmentFiles(t, filepath.Join(dir, "internal", "t-0"), ".log")
	slices.Sort(segs)
	return segs[0]
}

// lastFrameSize is the size of the last frame of the segment at path.
func lastFrameSize(t *testing.T, path string) int64 {
	t.Helper()
	idx, err := os.ReadFile(strings.TrimSuffix(path, ".log") + ".idx")
	if err != nil {
		t.Fatal(err)
	}
	return int64(decodeIndexEntry(idx[len(idx)-indexEntrySize:]).size)
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	f.ReadAt(b, at)
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryOfTheActiveSegment damages the tail of the active segment or
// its index in the ways a crash can, and checks how many batches survive.
// Batches that were durable before the damage always do.
func TestRecoveryOfTheActiveSegment(t *testing.T) {
	const n = 10
	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 100)
	cases := []struct {
		name    string
		damage  func(t *testing.T, seg string)
		survive int
	}{
		{"clean", func(t *testing.T, seg string) {}, n},
		{"garbage_tail", func(t *testing.T, seg string) { appendToFile(t, seg, garbage) }, n},
		{"zero_tail", func(t *testing.T, seg string) { appendToFile(t, seg, make([]byte, 4096)) }, n},
		{"torn_last_frame", func(t *testing.T, seg string) {
			truncateFile(t, seg, fileSize(t, seg)-lastFrameSize(t, seg)/2)
		}, n - 1},
		{"cut_in_frame_header", func(t *testing.T, seg string) {
			truncateFile(t, seg, fileSize(t, seg)-lastFrameSize(t, seg)+10)
		}, n - 1},
		{"bad_checksum_last_frame", func(t *testing.T, seg string) { flipByte(t, seg, fileSize(t, seg)-5) }, n - 1},
		{"bad_length_last_frame", func(t *testing.T, seg string) {
			flipByte(t, seg, fileSize(t, seg)-lastFrameSize(t, seg)+1)
		}, n - 1},
		{"missing_index", func(t *testing.T, seg string) { os.Remove(idxOf(seg)) }, n},
		{"index_with_bad_header", func(t *testing.T, seg string) { flipByte(t, idxOf(seg), 0) }, n},
		{"index_behind", func(t *testing.T, seg string) {
			truncateFile(t, idxOf(seg), indexHeaderSize+3*indexEntrySize)
		}, n},
		{"index_zero_filled_tail", func(t *testing.T, seg string) { appendToFile(t, idxOf(seg), make([]byte, 10*indexEntrySize)) }, n},
		{"index_garbage", func(t *testing.T, seg string) {
			truncateFile(t, idxOf(seg), indexHeaderSize)
			appendToFile(t, idxOf(seg), garbage)
		}, n},
		{"index_ahead_of_segment", func(t *testing.T, seg string) {
			// The index was written, the frame never reached the disk.
			truncateFile(t, seg, fileSize(t, seg)-lastFrameSize(t, seg))
		}, n - 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := buildImage(t, n, 1<<20)
			c.damage(t, lastSegment(t, dir))
			_, l, err := openImage(t, dir, smallSegments(1<<20))
			if err != nil {
				t.Fatalf("open after %s: %v", c.name, err)
			}
			if got := int(l.LastIndex()); got != c.survive {
				t.Fatalf("%d entries survived, want %d", got, c.survive)
			}
			l.Commit(l.LastIndex())
			if got := readAll(t, l); !slices.Equal(got, seq(0, int64(3*c.survive))) {
				t.Fatalf("offsets %v", got)
			}
			// The log takes appends at the right place afterwards.
			appendBatches(t, l, 2, makeBatch(1, 0, "after"))
			if l.NextOffset() != int64(3*c.survive+1) {
				t.Fatalf("next offset %d after append", l.NextOffset())
			}
		})
	}
}

func idxOf(seg string) string { return strings.TrimSuffix(seg, ".log") + ".idx" }

// TestCorruptSealedSegment flips a byte inside a batch of a sealed segment:
// the log opens (sealed segments are not rescanned when their index is
// sound), the damaged batch is never served, its neighbours are, and Scrub
// reports it.
func TestCorruptSealedSegment(t *testing.T) {
	dir := buildImage(t, 30, 2048)
	seg := firstSegment(t, dir)
	idx, _ := os.ReadFile(idxOf(seg))
	second := decodeIndexEntry(idx[indexHeaderSize+indexEntrySize:])
	flipByte(t, seg, int64(second.pos)+second.end()-int64(second.pos)-3) // inside its records

	_, l, err := openImage(t, dir, smallSegments(2048))
	if err != nil {
		t.Fatal(err)
	}
	l.Commit(l.LastIndex()) // the high watermark is checkpointed lazily; raft recommits
	var ce *CorruptionError
	if _, err := l.Read(3, 1<<20, l.HighWatermark(), true); !errors.As(err, &ce) || ce.Index != 2 {
		t.Fatalf("read of the damaged batch: %v, want a CorruptionError at raft index 2", err)
	}
	// The batch before it comes back alone, bytes and all; the read stops
	// at the damage.
	res, err := l.Read(0, 1<<20, l.HighWatermark(), true)
	if err != nil || res.Count != 1 || res.NextOffset != 3 {
		t.Fatalf("read before the damage: %d batches to %d, %v", res.Count, res.NextOffset, err)
	}
	if h, err := recordbatch.Validate(res.Batches); err != nil || h.BaseOffset != 0 || h.NextOffset() != 3 {
		t.Fatalf("read before the damage returned %d bytes: %+v, %v; want the batch of offsets 0-2", len(res.Batches), h, err)
	}
	if res, err := l.Read(6, 1<<20, l.HighWatermark(), true); err != nil || res.Count == 0 {
		t.Fatalf("read after the damage: %v", err)
	}
	errs := l.Scrub()
	if len(errs) != 1 || !errors.As(errs[0], &ce) || ce.Index != 2 {
		t.Fatalf("scrub: %v", errs)
	}
	if _, err := l.Entries(2, 3, 1<<20); !errors.As(err, &ce) {
		t.Fatalf("raft read of the damaged entry: %v", err)
	}
}

// TestSealedSegmentWithoutIndex rebuilds a lost index of a sealed segment;
// if the segment is also damaged, opening fails with a CorruptionError that
// names the place, rather than silently dropping durable data.
func TestSealedSegmentWithoutIndex(t *testing.T) {
	dir := buildImage(t, 30, 2048)
	seg := firstSegment(t, dir)
	os.Remove(idxOf(seg))
	_, l, err := openImage(t, dir, smallSegments(2048))
	if err != nil {
		t.Fatal(err)
	}
	l.Commit(l.LastIndex())
	if got := readAll(t, l); !slices.Equal(got, seq(0, 90)) {
		t.Fatalf("offsets %v", got)
	}
	if _, err := os.Stat(idxOf(seg)); err != nil {
		t.Fatalf("index not rebuilt: %v", err)
	}

	dir = buildImage(t, 30, 2048)
	seg = firstSegment(t, dir)
	os.Remove(idxOf(seg))
	flipByte(t, seg, segmentHeaderSize+frameHeaderSize+40)
	_, _, err = openImage(t, dir, smallSegments(2048))
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Path != seg {
		t.Fatalf("open of a damaged sealed segment: %v", err)
	}
}

func TestStaleSegmentAfterInterruptedTruncation(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", smallSegments(4096))
	for range 12 {
		appendBatches(t, l, 1, makeBatch(3, 0, "x"))
	}
	if l.SegmentCount() < 2 {
		t.Fatal("want at least two segments")
	}
	last := lastSegment(t, e.dir)
	saved := filepath.Join(t.TempDir(), "saved")
	copyFile(t, last, saved)
	copyFile(t, idxOf(last), saved+".idx")
	// A new leader overwrites the uncommitted tail: truncate into the
	// previous segment, then grow it past where the saved segment begins.
	base := l.segs[len(l.segs)-1].baseIndex
	l.mu.Lock()
	l.committed = base - 3
	l.mu.Unlock()
	if err := l.TruncateAfter(base - 2); err != nil {
		t.Fatal(err)
	}
	var ents []Entry
	for i := range 4 {
		ents = append(ents, Entry{Index: base - 1 + uint64(i), Term: 2})
	}
	if err := l.AppendSync(ents); err != nil {
		t.Fatal(err)
	}
	dir := crashImage(t, e.dir)
	// The unlink of the old last segment did not reach the disk.
	copyFile(t, saved, filepath.Join(dir, "internal", "t-0", filepath.Base(last)))
	copyFile(t, saved+".idx", filepath.Join(dir, "internal", "t-0", filepath.Base(idxOf(last))))
	_, l2, err := openImage(t, dir, smallSegments(4096))
	if err != nil {
		t.Fatalf("open with a stale segment: %v", err)
	}
	if l2.LastIndex() != base+2 {
		t.Fatalf("last index %d, want %d", l2.LastIndex(), base+2)
	}
	if tm, _ := l2.Term(base + 2); tm != 2 {
		t.Fatalf("stale entries were kept: term %d", tm)
	}
	if _, err := os.Stat(filepath.Join(dir, "internal", "t-0", filepath.Base(last))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale segment not removed: %v", err)
	}
}

func TestSegmentAfterAGapIsCorruption(t *testing.T) {
	dir := buildImage(t, 20, 2048)
	last := lastSegment(t, dir)
	far := filepath.Join(filepath.Dir(last), segmentName(900)+".log")
	// A segment past a gap: rewrite a copy's header to claim base 900.
	copyFile(t, last, far)
	f, _ := os.OpenFile(far, os.O_RDWR, 0)
	f.WriteAt(encodeSegmentHeader(900, 1000, 1, 0), 0)
	f.Close()
	_, _, err := openImage(t, dir, smallSegments(2048))
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("a segment past a gap: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	io.Copy(dst, src)
}

// FuzzRecoverTail cuts the active segment anywhere within its last frame and
// appends arbitrary bytes: opening must succeed and keep every earlier batch
// exactly as written.
func FuzzRecoverTail(f *testing.F) {
	f.Add(uint16(0), []byte("garbage"))
	f.Add(uint16(7), []byte{})
	f.Add(uint16(100), make([]byte, 64))
	f.Fuzz(func(t *testing.T, cut uint16, tail []byte) {
		const n = 5
		dir := buildImage(t, n, 1<<20)
		seg := lastSegment(t, dir)
		want, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		last := lastFrameSize(t, seg)
		keep := int64(len(want)) - last
		c := int64(cut) % last
		truncateFile(t, seg, int64(len(want))-c)
		appendToFile(t, seg, tail)
		_, l, err := openImage(t, dir, smallSegments(1<<20))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		min := n
		if c > 0 {
			min = n - 1
		}
		if int(l.LastIndex()) < min {
			t.Fatalf("%d entries survived, want at least %d", l.LastIndex(), min)
		}
		got, _ := os.ReadFile(seg)
		if !bytes.Equal(got[:keep], want[:keep]) {
			t.Fatal("recovery changed durable bytes")
		}
		ents, err := l.Entries(1, uint64(min)+1, 1<<30)
		if err != nil || len(ents) != min {
			t.Fatalf("entries: %d %v", len(ents), err)
		}
		for _, e := range ents {
			if _, err := recordbatch.Validate(e.Batch()); err != nil {
				t.Fatal(err)
			}
		}
	})
}
