package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testEnv struct {
	t        *testing.T
	dir      string
	store    *Store
	openWith Options
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir()}
	e.open()
	t.Cleanup(func() {
		if e.store != nil {
			e.store.Close()
		}
	})
	return e
}

func (e *testEnv) open() {
	e.t.Helper()
	s, err := Open(e.dir, e.openWith)
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	e.store = s
}

// reopen closes and reopens the store, as a clean restart.
func (e *testEnv) reopen() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatalf("close store: %v", err)
	}
	e.open()
}

func (e *testEnv) log(name string, cfg LogConfig) *Log {
	e.t.Helper()
	l, err := e.store.OpenLog(InternalLog(name), cfg)
	if err != nil {
		e.t.Fatalf("open log %s: %v", name, err)
	}
	return l
}

func smallSegments(n int64) LogConfig {
	c := DefaultLogConfig()
	c.SegmentBytes = n
	return c
}

// makeBatch builds a batch of n records with timestamps from ts.
func makeBatch(n int, ts int64, tag string) []byte {
	b := recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	for i := range n {
		b.Records = append(b.Records, recordbatch.Record{
			Timestamp: ts + int64(i),
			Key:       fmt.Appendf(nil, "%s-k%d", tag, i),
			Value:     bytes.Repeat([]byte{byte('a' + i%26)}, 100),
		})
	}
	return recordbatch.Build(b)
}

// batchEntry makes the entry for batch at the log's next index and offset.
func batchEntry(l *Log, index, term uint64, next int64, batch []byte) Entry {
	b := bytes.Clone(batch)
	recordbatch.SetBaseOffset(b, next)
	recordbatch.SetLeaderEpoch(b, int32(term))
	return Entry{Index: index, Term: term, Type: EntryNormal, Data: b}
}

// appendBatches appends one entry per batch at term and commits them.
func appendBatches(t *testing.T, l *Log, term uint64, batches ...[]byte) {
	t.Helper()
	idx, next := l.LastIndex()+1, l.NextOffset()
	var ents []Entry
	for _, b := range batches {
		h, err := recordbatch.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		ents = append(ents, batchEntry(l, idx, term, next, b))
		idx++
		next += int64(h.LastOffsetDelta) + 1
	}
	if err := l.AppendSync(ents); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := l.Commit(l.LastIndex()); err != nil {
		t.Fatal(err)
	}
}

// appendEmpty appends an entry that takes no offsets (a new leader's empty entry).
func appendEmpty(t *testing.T, l *Log, term uint64) {
	t.Helper()
	if err := l.AppendSync([]Entry{{Index: l.LastIndex() + 1, Term: term}}); err != nil {
		t.Fatalf("append empty: %v", err)
	}
}

// readAll reads every committed record offset from the log start.
func readAll(t *testing.T, l *Log) []int64 {
	t.Helper()
	var offs []int64
	off := l.LogStartOffset()
	for off < l.HighWatermark() {
		res, err := l.Read(off, 1<<20, l.HighWatermark(), true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if res.Count == 0 {
			t.Fatalf("read at %d below hw %d returned nothing", off, l.HighWatermark())
		}
		recs := decodeAll(t, res.Batches)
		for _, r := range recs {
			if r.Offset >= off {
				offs = append(offs, r.Offset)
			}
		}
		off = res.NextOffset
	}
	return offs
}

func decodeAll(t *testing.T, batches []byte) []recordbatch.Record {
	t.Helper()
	var out []recordbatch.Record
	for len(batches) > 0 {
		n := recordbatch.Size(batches)
		if n <= 0 || n > len(batches) {
			t.Fatalf("bad batch framing in read result")
		}
		recs, err := recordbatch.RecordsOf(batches[:n])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
		batches = batches[n:]
	}
	return out
}

func segmentFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func appendToFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms) }
