package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// benchBatch builds a batch of 1 KiB records about size bytes long.
func benchBatch(size int) []byte {
	b := recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	val := bytes.Repeat([]byte("chronik!"), 1024/8)
	for range max(size/1040, 1) {
		b.Records = append(b.Records, recordbatch.Record{Timestamp: time.Now().UnixMilli(), Value: val})
	}
	return recordbatch.Build(b)
}

var benchSizes = []struct {
	name string
	size int
}{{"16KiB", 16 << 10}, {"1MiB", 1 << 20}}

// BenchmarkRawWriteFdatasync is the ceiling: append-mode write plus
// fdatasync of the same sizes on the same disk.
func BenchmarkRawWriteFdatasync(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			buf := benchBatch(sz.size)
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(len(buf)))
			var pos int64
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.WriteAt(buf, pos); err != nil {
					b.Fatal(err)
				}
				pos += int64(len(buf))
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// appender appends copies of batch to l at the right index and offset.
type appender struct {
	mu    sync.Mutex
	l     *Log
	batch []byte
	count int64
}

func newAppender(b *testing.B, s *Store, name string, batch []byte) *appender {
	l, err := s.OpenLog(InternalLog(name), DefaultLogConfig())
	if err != nil {
		b.Fatal(err)
	}
	h, _ := recordbatch.ParseHeader(batch)
	return &appender{l: l, batch: batch, count: int64(h.LastOffsetDelta) + 1}
}

// appendOne appends one batch and waits until it is durable.
func (a *appender) appendOne() error {
	ch := make(chan error, 1)
	a.mu.Lock()
	// The broker hands the batch of a request over as it is; a fresh copy
	// here stands for that request's buffer.
	data := bytes.Clone(a.batch)
	err := a.l.Append([]Entry{{Index: a.l.LastIndex() + 1, Term: 1, Data: data}}, func(err error) { ch <- err })
	a.mu.Unlock()
	if err != nil {
		return err
	}
	return <-ch
}

// BenchmarkAppendSync is one writer that waits for each append to be
// durable: one fdatasync per append, like the raw loop.
func BenchmarkAppendSync(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			a := newAppender(b, s, "b-0", benchBatch(sz.size))
			b.SetBytes(int64(len(a.batch)))
			b.ResetTimer()
			for b.Loop() {
				if err := a.appendOne(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendGroupCommit has 8 writers over 4 logs, each waiting for
// durability: the flusher covers many appends per round. The interval
// variants measure the group_commit_interval_ms setting.
func BenchmarkAppendGroupCommit(b *testing.B) {
	for _, sz := range benchSizes {
		for _, iv := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/interval=%v", sz.name, iv), func(b *testing.B) {
				benchGroupCommit(b, sz.size, iv)
			})
		}
	}
}

func benchGroupCommit(b *testing.B, size int, interval time.Duration) {
	{
		{
			s, err := Open(b.TempDir(), Options{GroupCommitInterval: interval})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := benchBatch(size)
			apps := make([]*appender, 4)
			for i := range apps {
				apps[i] = newAppender(b, s, fmt.Sprintf("b-%d", i), batch)
			}
			var next atomic.Int64
			b.SetBytes(int64(len(batch)))
			b.SetParallelism(4) // 8 writers on 2 cores
			startRounds := s.Flusher().Stats().Rounds.Load()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				a := apps[next.Add(1)%int64(len(apps))]
				for pb.Next() {
					if err := a.appendOne(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			rounds := s.Flusher().Stats().Rounds.Load() - startRounds
			b.ReportMetric(float64(b.N)/float64(max(rounds, 1)), "appends/round")
		}
	}
}

// BenchmarkReadPageCache reads a 256 MiB log from the page cache in 1 MiB
// fetches, checking every CRC on the way.
func BenchmarkReadPageCache(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			a := newAppender(b, s, "r-0", benchBatch(sz.size))
			total := 256 << 20
			for range total / len(a.batch) {
				if err := a.appendOne(); err != nil {
					b.Fatal(err)
				}
			}
			l := a.l
			l.Commit(l.LastIndex())
			b.SetBytes(l.Size())
			b.ResetTimer()
			for b.Loop() {
				for off := int64(0); off < l.HighWatermark(); {
					res, err := l.Read(off, 1<<20, l.HighWatermark(), true)
					if err != nil {
						b.Fatal(err)
					}
					off = res.NextOffset
				}
			}
		})
	}
}

// BenchmarkRecovery1GiB opens a log of 1 GiB in one segment after a crash:
// with its index (the tail after the last index entry is scanned) and with
// the index lost (the whole segment is scanned and the index rebuilt).
func BenchmarkRecovery1GiB(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	a := newAppender(b, s, "t-0", benchBatch(16<<10))
	for a.l.Size() < 1<<30 {
		if err := a.appendOne(); err != nil {
			b.Fatal(err)
		}
	}
	entries := a.l.LastIndex()
	size := a.l.Size()
	s.Close()
	idx := filepath.Join(dir, "internal", "t-0", segmentName(1)+".idx")
	idxBytes, err := os.ReadFile(idx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("log: %d bytes, %d batches, index %d bytes (%.2f MiB per GiB)",
		size, entries, len(idxBytes), float64(len(idxBytes))/float64(size)*1024)
	for _, lose := range []bool{false, true} {
		name := "index_intact"
		if lose {
			name = "index_lost"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				b.StopTimer()
				if lose {
					os.Remove(idx)
				} else {
					os.WriteFile(idx, idxBytes, 0o644)
				}
				b.StartTimer()
				s, err := Open(dir, Options{})
				if err != nil {
					b.Fatal(err)
				}
				l, err := s.OpenLog(InternalLog("t-0"), DefaultLogConfig())
				if err != nil || l.LastIndex() != entries {
					b.Fatalf("recovered %v entries, %v", l.LastIndex(), err)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(len(idxBytes))/float64(size)*(1<<30)/(1<<20), "index-MiB/GiB")
		})
	}
}
