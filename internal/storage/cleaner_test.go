package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/membudget"
	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// compactConfig is a compacted log with small segments.
func compactConfig(segmentBytes int64, deleteRetention time.Duration) LogConfig {
	c := smallSegments(segmentBytes)
	c.Compact = true
	c.RetentionMs, c.RetentionBytes = -1, -1
	c.DeleteRetention = deleteRetention
	c.MinCleanableDirtyRatio = 0
	return c
}

// openCleanerEnv opens a store whose cleaner runs only when the test says.
func openCleanerEnv(t *testing.T, dedupe int64) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir()}
	e.openWith = Options{Cleaner: CleanerOptions{Disabled: true, DedupeBufferSize: dedupe}}
	e.open()
	t.Cleanup(func() {
		if e.store != nil {
			e.store.Close()
		}
	})
	return e
}

// modelRecord is what the test wrote at one offset.
type modelRecord struct {
	key       string // "" for no key
	value     string
	tombstone bool
	written   int64 // timestamp, ms
}

// compressBatch re-encodes an uncompressed batch with codec.
func compressBatch(t testing.TB, b []byte, codec int) []byte {
	t.Helper()
	if codec == recordbatch.CompressionNone {
		return b
	}
	payload, err := recordbatch.Compress(codec, b[recordbatch.HeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	out := append(bytes.Clone(b[:recordbatch.HeaderSize]), payload...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	attrs := binary.BigEndian.Uint16(out[21:])
	binary.BigEndian.PutUint16(out[21:], attrs|uint16(codec))
	binary.BigEndian.PutUint32(out[17:], recordbatch.Checksum(out[recordbatch.CRCStart:]))
	return out
}

// readRecords reads every committed record from the log start, checking
// that offsets only grow.
func readRecords(t *testing.T, l *Log) map[int64]recordbatch.Record {
	t.Helper()
	out := map[int64]recordbatch.Record{}
	off, last := l.LogStartOffset(), int64(-1)
	for off < l.HighWatermark() {
		res, err := l.Read(off, 1<<20, l.HighWatermark(), true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if res.NextOffset <= off {
			t.Fatalf("read at %d did not advance (next %d)", off, res.NextOffset)
		}
		for _, r := range decodeAll(t, res.Batches) {
			if r.Offset < off {
				continue
			}
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			out[r.Offset] = r
		}
		off = res.NextOffset
	}
	return out
}

// raftShape is the (index, term) of every entry and the header fields of
// every batch that offsets and producer state depend on.
func raftShape(t *testing.T, l *Log) []string {
	t.Helper()
	ents, err := l.Entries(l.FirstIndex(), l.LastIndex()+1, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		s := fmt.Sprintf("%d/%d/%d", e.Index, e.Term, e.Type)
		if e.IsBatch() {
			h, err := recordbatch.Validate(e.Batch())
			if err != nil {
				t.Fatalf("entry %d: %v", e.Index, err)
			}
			s += fmt.Sprintf(" off=%d+%d max=%d pid=%d/%d seq=%d", h.BaseOffset, h.LastOffsetDelta, h.MaxTimestamp, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		out = append(out, s)
	}
	return out
}

// TestCompactionProperty writes random keyed records and tombstones,
// interleaved with cleaning passes, rolls and restarts, and checks after
// every step that each live key's latest value is readable at its offset
// and each tombstone is there until its delete horizon; at the end, that
// the log holds exactly the latest value of every live key. Raft indexes,
// terms and batch headers never change.
func TestCompactionProperty(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dedupe   int64
		keys     int
		complete bool // every replaced record goes in the end
	}{
		{"map holds every key", 1 << 20, 40, true},
		{"map holds a few segments' keys", 100 * offsetSlotSize, 300, true},
		{"map smaller than a segment", 8 * offsetSlotSize, 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seeds := uint64(4)
			if raceEnabled {
				seeds = 1
			}
			for seed := range seeds {
				t.Run(fmt.Sprint(seed), func(t *testing.T) { compactionProperty(t, seed, tc.dedupe, tc.keys, tc.complete) })
			}
		})
	}
}

func compactionProperty(t *testing.T, seed uint64, dedupe int64, keySpace int, complete bool) {
	rng := rand.New(rand.NewPCG(seed, 42))
	const retention = 5 * time.Second
	e := openCleanerEnv(t, dedupe)
	cfg := compactConfig(4<<10, retention)
	l := e.log("compacted", cfg)
	written := map[int64]modelRecord{}
	latest := map[string]int64{}
	now := int64(1_700_000_000_000)
	pid := int64(7)
	seqNo := int32(0)

	check := func(step string) {
		t.Helper()
		got := readRecords(t, l)
		for off, r := range got {
			w, ok := written[off]
			if !ok {
				t.Fatalf("%s: offset %d was never written", step, off)
			}
			if string(r.Key) != w.key || string(r.Value) != w.value || (r.Value == nil) != w.tombstone || r.Timestamp != w.written {
				t.Fatalf("%s: offset %d reads key %q value %q ts %d, wrote key %q value %q tombstone %v ts %d",
					step, off, r.Key, r.Value, r.Timestamp, w.key, w.value, w.tombstone, w.written)
			}
		}
		for key, off := range latest {
			w := written[off]
			_, ok := got[off]
			switch {
			case !w.tombstone && !ok:
				t.Fatalf("%s: latest value of key %s at offset %d is gone", step, key, off)
			case w.tombstone && !ok && now < w.written+retention.Milliseconds():
				t.Fatalf("%s: tombstone of key %s at offset %d written at %d is gone at %d, before delete.retention.ms", step, key, off, w.written, now)
			}
		}
	}

	steps := 400
	if raceEnabled {
		steps = 120
	}
	for step := range steps {
		switch op := rng.IntN(20); {
		case op < 15:
			n := 1 + rng.IntN(4)
			b := recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
			if rng.IntN(3) == 0 {
				b.ProducerID, b.ProducerEpoch, b.BaseSequence = pid, 0, seqNo
				seqNo += int32(n)
			}
			next := l.NextOffset()
			for i := range n {
				r := recordbatch.Record{Timestamp: now}
				m := modelRecord{written: now}
				switch k := rng.IntN(keySpace); {
				case k == 0:
					m.value = fmt.Sprintf("keyless-%d", step)
				default:
					m.key = fmt.Sprintf("k%03d", k)
					if rng.IntN(6) == 0 {
						m.tombstone = true
					} else {
						m.value = fmt.Sprintf("%s-v%d-%s", m.key, step, strings.Repeat("x", rng.IntN(200)))
					}
				}
				if m.key != "" {
					r.Key = []byte(m.key)
					latest[m.key] = next + int64(i)
				}
				if !m.tombstone {
					r.Value = []byte(m.value)
				}
				b.Records = append(b.Records, r)
				written[next+int64(i)] = m
			}
			codec := []int{recordbatch.CompressionNone, recordbatch.CompressionNone, recordbatch.CompressionGzip,
				recordbatch.CompressionSnappy, recordbatch.CompressionLZ4, recordbatch.CompressionZstd}[rng.IntN(6)]
			appendBatches(t, l, 1+uint64(step/100), compressBatch(t, recordbatch.Build(b), codec))
		case op < 16:
			appendEmpty(t, l, 1+uint64(step/100))
			if err := l.Commit(l.LastIndex()); err != nil {
				t.Fatal(err)
			}
		case op < 19:
			shape := raftShape(t, l)
			e.store.Clean(time.UnixMilli(now))
			if after := raftShape(t, l); fmt.Sprint(after) != fmt.Sprint(shape) {
				t.Fatalf("step %d: cleaning changed raft entries or batch headers:\nbefore %v\nafter  %v", step, shape, after)
			}
		default:
			e.reopen()
			l = e.log("compacted", cfg)
		}
		now += int64(rng.IntN(400))
		check(fmt.Sprintf("step %d", step))
	}

	// Everything sealed; one pass stamps the last tombstones, a pass after
	// delete.retention.ms removes them.
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	appendEmpty(t, l, 9)
	if err := l.Commit(l.LastIndex()); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		e.store.Clean(time.UnixMilli(now))
	}
	check("final pass")
	if !complete {
		return
	}
	got := readRecords(t, l)
	for off := range got {
		w := written[off]
		if w.key == "" || latest[w.key] != off {
			t.Fatalf("after the final pass offset %d (key %q) is still there though replaced or keyless", off, w.key)
		}
	}
	now += retention.Milliseconds()
	for range 30 {
		e.store.Clean(time.UnixMilli(now))
	}
	check("after delete.retention.ms")
	got = readRecords(t, l)
	live := 0
	for key, off := range latest {
		if !written[off].tombstone {
			live++
			continue
		}
		if _, ok := got[off]; ok {
			t.Fatalf("tombstone of %s at offset %d outlived delete.retention.ms", key, off)
		}
	}
	if len(got) != live {
		t.Fatalf("log holds %d records, want the %d live keys", len(got), live)
	}
	e.reopen()
	l = e.log("compacted", cfg)
	if again := readRecords(t, l); len(again) != live {
		t.Fatalf("after a restart the log holds %d records, want %d", len(again), live)
	}
}

// TestCleanerLeftoversAndHalfSwap: a crash in the middle of a swap leaves a
// *.cleaned file (removed at open), or the cleaned segment with the old
// index (rebuilt at open); either way the log reads the same.
func TestCleanerLeftoversAndHalfSwap(t *testing.T) {
	e := openCleanerEnv(t, 1<<20)
	cfg := compactConfig(2<<10, time.Hour)
	l := e.log("c", cfg)
	for i := range 40 {
		b := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: []recordbatch.Record{
			{Timestamp: int64(i), Key: []byte(fmt.Sprintf("k%d", i%3)), Value: bytes.Repeat([]byte("v"), 100)},
		}})
		appendBatches(t, l, 1, b)
	}
	before := readRecords(t, l)
	segDir := l.Dir()
	first := segmentFiles(t, segDir, ".log")[0]
	idxPath := strings.TrimSuffix(first, ".log") + ".idx"
	oldIdx, err := os.ReadFile(idxPath)
	if err != nil {
		t.Fatal(err)
	}
	if res := e.store.Clean(time.UnixMilli(1000)); res.Segments == 0 || res.RecordsRemoved == 0 {
		t.Fatalf("nothing cleaned: %+v", res)
	}
	after := readRecords(t, l)
	if len(after) >= len(before) {
		t.Fatalf("cleaning kept %d of %d records", len(after), len(before))
	}
	e.store.Close()
	e.store = nil
	// The state a crash between the two renames leaves, plus a leftover.
	if err := os.WriteFile(idxPath, oldIdx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(first+cleanedSuffix, []byte("half written"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.open()
	l = e.log("c", cfg)
	if _, err := os.Stat(first + cleanedSuffix); !os.IsNotExist(err) {
		t.Fatalf("leftover %s not removed at open: %v", filepath.Base(first+cleanedSuffix), err)
	}
	if again := readRecords(t, l); fmt.Sprint(again) != fmt.Sprint(after) {
		t.Fatalf("after the half swap the log reads\n%v\nwant\n%v", again, after)
	}
}

// TestCompactionLags: min.compaction.lag.ms keeps segments whose newest
// record is younger out of cleaning; max.compaction.lag.ms cleans a log
// whose oldest uncleaned record is older, even when its dirty ratio would
// not (here min.cleanable.dirty.ratio=1, which alone never cleans).
func TestCompactionLags(t *testing.T) {
	const t0 = int64(1_700_000_000_000)
	write := func(t *testing.T, l *Log) {
		for i := range 60 {
			appendBatches(t, l, 1, recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
				Records: []recordbatch.Record{{Timestamp: t0 + int64(i), Key: []byte(fmt.Sprint(i % 2)), Value: bytes.Repeat([]byte("v"), 200)}}}))
		}
	}
	t.Run("min", func(t *testing.T) {
		e := openCleanerEnv(t, 1<<20)
		cfg := compactConfig(2<<10, time.Hour)
		cfg.MinCompactionLag = 10 * time.Second
		l := e.log("min-lag", cfg)
		write(t, l)
		if res := e.store.Clean(time.UnixMilli(t0 + 5_000)); res.Segments != 0 {
			t.Fatalf("segments younger than min.compaction.lag.ms were cleaned: %+v", res)
		}
		if res := e.store.Clean(time.UnixMilli(t0 + 20_000)); res.Segments == 0 || res.RecordsRemoved == 0 {
			t.Fatalf("segments older than min.compaction.lag.ms were not cleaned: %+v", res)
		}
	})
	t.Run("max", func(t *testing.T) {
		e := openCleanerEnv(t, 1<<20)
		cfg := compactConfig(2<<10, time.Hour)
		cfg.MinCleanableDirtyRatio = 1
		cfg.MaxCompactionLag = 10 * time.Second
		l := e.log("max-lag", cfg)
		write(t, l)
		// The first pass after open looks for tombstones due; there are none.
		e.store.Clean(time.UnixMilli(t0))
		if res := e.store.Clean(time.UnixMilli(t0 + 5_000)); res.Segments != 0 {
			t.Fatalf("cleaned before max.compaction.lag.ms with min.cleanable.dirty.ratio=1: %+v", res)
		}
		if res := e.store.Clean(time.UnixMilli(t0 + 20_000)); res.Segments == 0 || res.RecordsRemoved == 0 {
			t.Fatalf("not cleaned after max.compaction.lag.ms: %+v", res)
		}
	})
}

// TestCleanerBesideAppendsAndReads cleans a log while one goroutine appends
// and commits and another reads it from the start: readers never see a
// wrong record, appends never fail, and the race detector watches the
// swap.
func TestCleanerBesideAppendsAndReads(t *testing.T) {
	e := openCleanerEnv(t, 1<<20)
	l := e.log("busy", compactConfig(4<<10, time.Hour))
	const keys, appends = 20, 400
	written := map[int64]string{}
	var mu sync.Mutex
	writerDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(writerDone)
		for i := range appends {
			v := fmt.Sprintf("v%d", i)
			b := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
				Records: []recordbatch.Record{{Timestamp: int64(i), Key: []byte(fmt.Sprint(i % keys)), Value: []byte(v + strings.Repeat("x", 100))}}})
			mu.Lock()
			written[l.NextOffset()] = v
			mu.Unlock()
			ent := batchEntry(l, l.LastIndex()+1, 1, l.NextOffset(), b)
			if err := l.AppendSync([]Entry{ent}); err != nil {
				t.Errorf("append: %v", err)
				return
			}
			if err := l.Commit(ent.Index); err != nil {
				t.Errorf("commit: %v", err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-writerDone:
				return
			default:
			}
			off := l.LogStartOffset()
			for off < l.HighWatermark() {
				res, err := l.Read(off, 64<<10, l.HighWatermark(), true)
				if err != nil {
					t.Errorf("read at %d: %v", off, err)
					return
				}
				for _, r := range decodeAll(t, res.Batches) {
					mu.Lock()
					want := written[r.Offset]
					mu.Unlock()
					if !strings.HasPrefix(string(r.Value), want+"x") {
						t.Errorf("offset %d reads %.10q, wrote %q", r.Offset, r.Value, want)
						return
					}
				}
				off = res.NextOffset
			}
		}
	}()
	cleaned := 0
	for done := false; !done; {
		select {
		case <-writerDone:
			done = true
		default:
		}
		cleaned += e.store.Clean(time.Now()).Segments
	}
	wg.Wait()
	if cleaned == 0 {
		t.Fatal("no segment was cleaned while the log was written")
	}
}

// TestCleanerKeepsABatchTooLargeToOpen: a batch whose records expand to
// more than the decompression budget is kept as it is (its keys stay out
// of the key map), the rest of the log is compacted around it, and the
// segment is not taken for damaged; the budget is all returned.
func TestCleanerKeepsABatchTooLargeToOpen(t *testing.T) {
	budget := membudget.NewRequests(1<<20, 1<<20)
	e := &testEnv{t: t, dir: t.TempDir()}
	e.openWith = Options{Cleaner: CleanerOptions{Disabled: true, DedupeBufferSize: 1 << 20, Budget: budget}}
	e.open()
	t.Cleanup(func() {
		if e.store != nil {
			e.store.Close()
		}
	})
	l := e.log("c", compactConfig(2<<10, time.Hour))
	record := func(i int, value []byte) []byte {
		return recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: []recordbatch.Record{
			{Timestamp: int64(i), Key: []byte(fmt.Sprintf("k%d", i%3)), Value: value}}})
	}
	for i := range 20 {
		appendBatches(t, l, 1, record(i, bytes.Repeat([]byte("v"), 100)))
	}
	bomb := compressBatch(t, record(20, make([]byte, 4<<20)), recordbatch.CompressionZstd)
	appendBatches(t, l, 1, bomb)
	for i := 21; i < 40; i++ {
		appendBatches(t, l, 1, record(i, bytes.Repeat([]byte("v"), 100)))
	}
	if res := e.store.Clean(time.UnixMilli(1000)); res.Segments == 0 || res.RecordsRemoved == 0 {
		t.Fatalf("nothing cleaned: %+v", res)
	}
	if s := e.store.CleanerStats(); s.Errors != 0 || s.BatchesTooLarge == 0 {
		t.Fatalf("cleaner stats %+v: want no error and the batch counted as too large", s)
	}
	recs := readRecords(t, l)
	if r, ok := recs[20]; !ok || len(r.Value) != 4<<20 {
		t.Fatalf("the batch too large to open was not kept whole")
	}
	if len(recs) >= 40 {
		t.Fatalf("cleaning kept %d of 40 records", len(recs))
	}
	if r := budget.Reserved(); r != 0 {
		t.Fatalf("%d bytes of the budget still reserved", r)
	}
}
