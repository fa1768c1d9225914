package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// BenchmarkCleanerOverwrites measures one compaction pass over 1,000 keys
// each written 1,000 times: one million 100-byte values in batches of 100
// records, 16 MiB segments, everything sealed and committed. It reports the
// log bytes cleaned per second and the log's size before and after.
//
//	go test -run '^$' -bench CleanerOverwrites -benchtime 1x ./internal/storage
func BenchmarkCleanerOverwrites(b *testing.B) {
	for _, codec := range []struct {
		name  string
		codec int
	}{{"uncompressed", recordbatch.CompressionNone}, {"zstd", recordbatch.CompressionZstd}} {
		b.Run(codec.name, func(b *testing.B) {
			for range b.N {
				benchCleanOverwrites(b, codec.codec)
			}
		})
	}
}

func benchCleanOverwrites(b *testing.B, codec int) {
	b.StopTimer()
	s, err := Open(b.TempDir(), Options{Cleaner: CleanerOptions{Disabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cfg := DefaultLogConfig()
	cfg.SegmentBytes = 16 << 20
	cfg.Compact, cfg.MinCleanableDirtyRatio = true, 0
	l, err := s.OpenLog(InternalLog("bench-compacted"), cfg)
	if err != nil {
		b.Fatal(err)
	}
	const keys, writes, perBatch = 1000, 1000, 100
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, 100)
	now := time.Now().UnixMilli()
	var ents []Entry
	idx, next := l.LastIndex()+1, l.NextOffset()
	flush := func() {
		if err := l.AppendSync(ents); err != nil {
			b.Fatal(err)
		}
		ents = ents[:0]
	}
	for i := 0; i < keys*writes; i += perBatch {
		bt := recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		for k := range perBatch {
			for j := range value {
				value[j] = byte('a' + rng.IntN(26))
			}
			bt.Records = append(bt.Records, recordbatch.Record{Timestamp: now, Key: fmt.Appendf(nil, "key-%04d", (i+k)%keys), Value: append([]byte(nil), value...)})
		}
		data := recordbatch.Build(bt)
		if codec != recordbatch.CompressionNone {
			data = compressBatch(b, data, codec)
		}
		recordbatch.SetBaseOffset(data, next)
		recordbatch.SetLeaderEpoch(data, 1)
		ents = append(ents, Entry{Index: idx, Term: 1, Data: data})
		idx++
		next += perBatch
		if len(ents) == 100 {
			flush()
		}
	}
	flush()
	if err := l.Roll(); err != nil {
		b.Fatal(err)
	}
	if err := l.AppendSync([]Entry{{Index: l.LastIndex() + 1, Term: 1}}); err != nil {
		b.Fatal(err)
	}
	if err := l.Commit(l.LastIndex()); err != nil {
		b.Fatal(err)
	}
	before := l.Size()
	start := time.Now()
	b.StartTimer()
	res := s.Clean(time.Now())
	b.StopTimer()
	took := time.Since(start)
	after := l.Size()
	if res.RecordsRemoved != keys*writes-keys {
		b.Fatalf("removed %d records, want %d", res.RecordsRemoved, keys*writes-keys)
	}
	b.ReportMetric(float64(before)/1e6/took.Seconds(), "MB_cleaned/s")
	b.ReportMetric(float64(before), "bytes_before")
	b.ReportMetric(float64(after), "bytes_after")
	b.ReportMetric(float64(res.BytesRead+res.BytesWritten)/1e6/took.Seconds(), "MB_io/s")
}
