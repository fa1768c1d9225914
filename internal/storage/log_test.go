package storage

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

func TestAppendAndReadInsideBatches(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	appendEmpty(t, l, 1) // a new leader's empty entry takes no offset
	appendBatches(t, l, 1, makeBatch(3, 1000, "a"), makeBatch(4, 2000, "b"))
	appendEmpty(t, l, 2)
	appendBatches(t, l, 2, makeBatch(2, 3000, "c"))

	if got, want := l.NextOffset(), int64(9); got != want {
		t.Fatalf("next offset %d, want %d", got, want)
	}
	if got := l.LastIndex(); got != 5 {
		t.Fatalf("last index %d, want 5", got)
	}
	if got := readAll(t, l); !slices.Equal(got, seq(0, 9)) {
		t.Fatalf("offsets %v", got)
	}
	// An offset inside the second batch returns that whole batch first.
	res, err := l.Read(5, 1<<20, l.HighWatermark(), true)
	if err != nil {
		t.Fatal(err)
	}
	recs := decodeAll(t, res.Batches)
	if recs[0].Offset != 3 || res.Count != 2 || res.NextOffset != 9 {
		t.Fatalf("read at 5: first offset %d, %d batches, next %d", recs[0].Offset, res.Count, res.NextOffset)
	}
	// The byte limit stops before the second batch; minOne returns one batch
	// even when it alone is over the limit.
	first := recordbatch.Size(makeBatch(3, 1000, "a"))
	res, _ = l.Read(0, first+1, l.HighWatermark(), true)
	if res.Count != 1 {
		t.Fatalf("limit %d: %d batches", first+1, res.Count)
	}
	res, _ = l.Read(0, 1, l.HighWatermark(), true)
	if res.Count != 1 {
		t.Fatalf("minOne: %d batches", res.Count)
	}
	res, _ = l.Read(0, 1, l.HighWatermark(), false)
	if res.Count != 0 {
		t.Fatalf("without minOne: %d batches", res.Count)
	}
	// Nothing past the limit (the high watermark) is served.
	res, _ = l.Read(0, 1<<20, 7, true)
	if res.Count != 2 || res.NextOffset != 7 {
		t.Fatalf("limit 7: %d batches up to %d", res.Count, res.NextOffset)
	}
	res, _ = l.Read(9, 1<<20, l.HighWatermark(), true)
	if res.Count != 0 {
		t.Fatalf("read at the end returned %d batches", res.Count)
	}
	var oor *OffsetOutOfRangeError
	if _, err := l.Read(10, 1<<20, 10, true); !errors.As(err, &oor) {
		t.Fatalf("read past the end: %v", err)
	}
	// Terms and raft entries.
	for i, want := range map[uint64]uint64{0: 0, 1: 1, 3: 1, 4: 2, 5: 2} {
		if got, err := l.Term(i); err != nil || got != want {
			t.Fatalf("term(%d) = %d, %v; want %d", i, got, err, want)
		}
	}
	if _, err := l.Term(6); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("term past the end: %v", err)
	}
	ents, err := l.Entries(1, 6, 1<<20)
	if err != nil || len(ents) != 5 {
		t.Fatalf("entries: %d, %v", len(ents), err)
	}
	if ents[0].IsBatch() || !ents[1].IsBatch() || ents[3].IsBatch() || ents[3].Term != 2 {
		t.Fatalf("entry kinds wrong: %+v", ents)
	}
	ents, _ = l.Entries(1, 6, 1)
	if len(ents) != 1 {
		t.Fatalf("entries with a 1-byte limit: %d, want 1", len(ents))
	}
}

func TestAppendRejectsBadInputAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	appendBatches(t, l, 1, makeBatch(2, 1000, "a"))
	size := l.Size()
	good := makeBatch(2, 1000, "b")
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 0xff

	cases := map[string][]Entry{
		"bad crc":        {batchEntry(l, 2, 1, 2, corrupt)},
		"gap":            {batchEntry(l, 4, 1, 2, good)},
		"term goes down": {batchEntry(l, 2, 0, 2, good)},
		"second bad": {
			batchEntry(l, 2, 1, 2, good),
			batchEntry(l, 3, 1, 4, corrupt),
		},
		"unknown type": {{Index: 2, Term: 1, Type: 9}},
	}
	for name, ents := range cases {
		t.Run(name, func(t *testing.T) {
			if err := l.AppendSync(ents); err == nil {
				t.Fatal("append accepted bad input")
			}
			if l.Size() != size || l.LastIndex() != 1 || l.NextOffset() != 2 {
				t.Fatalf("log changed: size %d->%d, last %d, next %d", size, l.Size(), l.LastIndex(), l.NextOffset())
			}
		})
	}
	var ce *recordbatch.CorruptError
	if err := l.AppendSync(cases["bad crc"]); !errors.As(err, &ce) {
		t.Fatalf("corrupt batch error %v is not a CorruptError", err)
	}
	// And the log still works. The stored copy gets the offset and epoch
	// the log assigns, whatever the batch said; the caller's bytes stay.
	ent := batchEntry(l, 2, 3, 0, good)
	recordbatch.SetLeaderEpoch(ent.Data, 9)
	before := bytes.Clone(ent.Data)
	if err := l.AppendSync([]Entry{ent}); err != nil {
		t.Fatal(err)
	}
	l.Commit(2)
	if !bytes.Equal(ent.Data, before) {
		t.Fatal("Append modified the caller's data")
	}
	if got := readAll(t, l); !slices.Equal(got, seq(0, 4)) {
		t.Fatalf("offsets %v", got)
	}
	res, _ := l.Read(2, 1<<20, 4, true)
	h, _ := recordbatch.ParseHeader(res.Batches)
	if h.BaseOffset != 2 || h.LeaderEpoch != 3 {
		t.Fatalf("stored batch has offset %d epoch %d, want 2 and 3", h.BaseOffset, h.LeaderEpoch)
	}
}

func TestSegmentsRollAndReopen(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", smallSegments(4096))
	for i := range 40 {
		appendBatches(t, l, uint64(1+i/10), makeBatch(5, int64(1000*i), "x"))
	}
	if n := l.SegmentCount(); n < 5 {
		t.Fatalf("only %d segments after 40 batches of ~700 bytes in 4 KiB segments", n)
	}
	want := readAll(t, l)
	if !slices.Equal(want, seq(0, 200)) {
		t.Fatalf("offsets %v", want)
	}
	terms := map[uint64]uint64{}
	for i := l.FirstIndex() - 1; i <= l.LastIndex(); i++ {
		terms[i], _ = l.Term(i)
	}
	e.reopen()
	l = e.log("t-0", smallSegments(4096))
	if got := readAll(t, l); !slices.Equal(got, want) {
		t.Fatalf("after reopen: %v", got)
	}
	for i, tm := range terms {
		if got, _ := l.Term(i); got != tm {
			t.Fatalf("term(%d) %d after reopen, was %d", i, got, tm)
		}
	}
	if l.HighWatermark() != 200 {
		t.Fatalf("hw %d after reopen", l.HighWatermark())
	}
	ents, err := l.Entries(1, l.LastIndex()+1, 1<<30)
	if err != nil || len(ents) != 40 {
		t.Fatalf("entries across segments: %d %v", len(ents), err)
	}
}

func TestSegmentRollsByTime(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultLogConfig()
	cfg.SegmentMs = 1 // any later append is past it
	l := e.log("t-0", cfg)
	for range 3 {
		appendBatches(t, l, 1, makeBatch(1, 1, "x"))
	}
	if n := l.SegmentCount(); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
}

func TestTruncateAfterEveryBoundary(t *testing.T) {
	// Build one log with entries spread over several segments, then for every
	// truncation point start from a fresh copy of it.
	build := func(t *testing.T) (*testEnv, *Log) {
		e := newEnv(t)
		l := e.log("t-0", smallSegments(2048))
		for i := range 12 {
			if i%4 == 0 {
				appendEmpty(t, l, uint64(1+i/4))
			}
			ents := []Entry{batchEntry(l, l.LastIndex()+1, uint64(1+i/4), l.NextOffset(), makeBatch(3, int64(i), "x"))}
			if err := l.AppendSync(ents); err != nil {
				t.Fatal(err)
			}
		}
		return e, l
	}
	_, ref := build(t)
	last := ref.LastIndex()
	for cut := ref.FirstIndex() - 1; cut <= last; cut++ {
		wantNext, _ := ref.OffsetAfter(cut)
		wantTerm, _ := ref.Term(cut)
		e, l := build(t)
		if err := l.TruncateAfter(cut); err != nil {
			t.Fatalf("truncate after %d: %v", cut, err)
		}
		check := func(when string) {
			if l.LastIndex() != cut || l.NextOffset() != wantNext {
				t.Fatalf("cut %d %s: last %d next %d, want %d %d", cut, when, l.LastIndex(), l.NextOffset(), cut, wantNext)
			}
			if tm, _ := l.Term(cut); tm != wantTerm {
				t.Fatalf("cut %d %s: term %d want %d", cut, when, tm, wantTerm)
			}
			l.Commit(l.LastIndex())
			if got := readAll(t, l); !slices.Equal(got, seq(0, wantNext)) {
				t.Fatalf("cut %d %s: offsets %v", cut, when, got)
			}
		}
		check("before reopen")
		e.reopen()
		l = e.log("t-0", smallSegments(2048))
		check("after reopen")
		// New entries at a new term go on from there.
		appendBatches(t, l, 9, makeBatch(2, 99, "new"))
		if l.LastIndex() != cut+1 || l.NextOffset() != wantNext+2 {
			t.Fatalf("cut %d: append after truncation: last %d next %d", cut, l.LastIndex(), l.NextOffset())
		}
	}
}

func TestAppendOverlappingTruncates(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	ents := []Entry{
		batchEntry(l, 1, 1, 0, makeBatch(2, 0, "a")),
		batchEntry(l, 2, 1, 2, makeBatch(2, 0, "b")),
		batchEntry(l, 3, 1, 4, makeBatch(2, 0, "c")),
	}
	if err := l.AppendSync(ents); err != nil {
		t.Fatal(err)
	}
	l.Commit(1)
	// A new leader overwrites indexes 2.. with its own entries.
	over := []Entry{{Index: 2, Term: 2}, batchEntry(l, 3, 2, 2, makeBatch(5, 0, "d"))}
	if err := l.AppendSync(over); err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != 3 || l.NextOffset() != 7 {
		t.Fatalf("last %d next %d", l.LastIndex(), l.NextOffset())
	}
	// Committed entries cannot be overwritten.
	if err := l.AppendSync([]Entry{{Index: 1, Term: 3}}); err == nil {
		t.Fatal("overwrote a committed entry")
	}
}

func TestLogStartOffsetAndSegmentDeletion(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", smallSegments(2048))
	for range 20 {
		appendBatches(t, l, 1, makeBatch(4, 0, "x"))
	}
	segs := l.SegmentCount()
	if err := l.SetLogStartOffset(l.HighWatermark() + 1); err == nil {
		t.Fatal("log start moved past the high watermark")
	}
	if err := l.SetLogStartOffset(41); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 41 || l.SegmentCount() >= segs {
		t.Fatalf("log start %d, segments %d (were %d)", l.LogStartOffset(), l.SegmentCount(), segs)
	}
	var oor *OffsetOutOfRangeError
	if _, err := l.Read(40, 1<<20, l.HighWatermark(), true); !errors.As(err, &oor) {
		t.Fatalf("read below log start: %v", err)
	}
	// Reading at the log start returns the batch that contains it.
	if got := readAll(t, l); !slices.Equal(got, seq(41, 80)) {
		t.Fatalf("offsets %v", got)
	}
	if err := l.SetLogStartOffset(10); err != nil || l.LogStartOffset() != 41 {
		t.Fatalf("log start moved backwards: %v %d", err, l.LogStartOffset())
	}
	e.reopen()
	l = e.log("t-0", smallSegments(2048))
	if l.LogStartOffset() != 41 || l.HighWatermark() != 80 {
		t.Fatalf("after reopen: log start %d hw %d", l.LogStartOffset(), l.HighWatermark())
	}
	if _, err := l.Term(l.FirstIndex() - 1); err != nil {
		t.Fatalf("term before the first index: %v", err)
	}
}

func TestHighWatermarkAndHardStatePersist(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	appendBatches(t, l, 1, makeBatch(3, 0, "a"))
	ents := []Entry{batchEntry(l, 2, 1, 3, makeBatch(2, 0, "b"))}
	l.SetHardState(HardState{Term: 1, Vote: 3, Commit: 1})
	if err := l.AppendSync(ents); err != nil {
		t.Fatal(err)
	}
	if l.HighWatermark() != 3 {
		t.Fatalf("uncommitted entry moved the high watermark to %d", l.HighWatermark())
	}
	if err := l.Commit(0); err != nil || l.HighWatermark() != 3 {
		t.Fatalf("high watermark moved backwards: %d %v", l.HighWatermark(), err)
	}
	// The term and vote were checkpointed by the flush that made the append
	// durable; no clean close is needed.
	st, err := readCheckpoint(e.dir + "/" + checkpointName)
	if err != nil {
		t.Fatal(err)
	}
	if hs := st["internal/t-0"].hs; hs.Term != 1 || hs.Vote != 3 {
		t.Fatalf("checkpoint hard state %+v", hs)
	}
	e.reopen()
	l = e.log("t-0", DefaultLogConfig())
	if l.HighWatermark() != 3 || l.NextOffset() != 5 {
		t.Fatalf("after reopen: hw %d next %d", l.HighWatermark(), l.NextOffset())
	}
	if hs := l.HardState(); hs.Term != 1 || hs.Vote != 3 {
		t.Fatalf("hard state after reopen %+v", hs)
	}
}

func TestFindTimestampAndEpochs(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", smallSegments(2048))
	// Timestamps are not monotonic across batches; the search must still
	// find the first batch holding a timestamp >= the target.
	appendBatches(t, l, 1, makeBatch(2, 100, "a"), makeBatch(2, 50, "b"))
	appendEmpty(t, l, 3)
	appendBatches(t, l, 3, makeBatch(2, 300, "c"), makeBatch(2, 200, "d"))
	for ts, wantBase := range map[int64]int64{0: 0, 100: 0, 101: 0, 102: 4, 250: 4, 301: 4} {
		b, err := l.FindTimestamp(ts)
		if err != nil || b == nil {
			t.Fatalf("find %d: %v %v", ts, b, err)
		}
		if got := recordbatch.BaseOffset(b); got != wantBase {
			t.Fatalf("find %d: batch at %d, want %d", ts, got, wantBase)
		}
	}
	if b, _ := l.FindTimestamp(302); b != nil {
		t.Fatal("found a batch past every timestamp")
	}
	for epoch, want := range map[uint64][2]int64{0: {-1, -1}, 1: {1, 4}, 2: {1, 4}, 3: {3, 8}, 9: {3, 8}} {
		tm, off := l.EndOffsetForEpoch(epoch)
		if tm != want[0] || off != want[1] {
			t.Fatalf("epoch %d: (%d, %d), want %v", epoch, tm, off, want)
		}
	}
}

func TestRetention(t *testing.T) {
	e := newEnv(t)
	cfg := smallSegments(2048)
	cfg.RetentionMs = 1000
	l := e.log("t-0", cfg)
	now := int64(1_000_000)
	for i := range 10 {
		appendBatches(t, l, 1, makeBatch(4, now-5000+int64(i), "old"))
	}
	for range 10 {
		appendBatches(t, l, 1, makeBatch(4, now, "new"))
	}
	if err := l.ApplyRetention(timeMs(now)); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() == 0 || l.LogStartOffset() > 40 {
		t.Fatalf("time retention moved the log start to %d", l.LogStartOffset())
	}
	// Everything expires later, the active segment too.
	if err := l.ApplyRetention(timeMs(now + 10_000)); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 80 || l.SegmentCount() != 1 || l.NextOffset() != 80 {
		t.Fatalf("all expired: start %d, %d segments, next %d", l.LogStartOffset(), l.SegmentCount(), l.NextOffset())
	}
	appendBatches(t, l, 1, makeBatch(1, now, "after"))
	if got := readAll(t, l); !slices.Equal(got, []int64{80}) {
		t.Fatalf("offsets after retention %v", got)
	}

	// Size retention keeps the newest segments within the limit.
	cfg = smallSegments(2048)
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 5000
	l2 := e.log("t-1", cfg)
	for range 30 {
		appendBatches(t, l2, 1, makeBatch(4, 0, "x"))
	}
	l2.ApplyRetention(timeMs(now))
	if size := l2.Size(); size > 5000+2048 || l2.LogStartOffset() == 0 {
		t.Fatalf("size retention: %d bytes left, start %d", size, l2.LogStartOffset())
	}
}

// An idle partition whose log holds only raft's own entries (a new
// leader's empty entry) keeps them through retention: deleting them frees
// nothing, and a follower that has not fetched them could never catch up.
func TestRetentionKeepsARecordlessLog(t *testing.T) {
	e := newEnv(t)
	cfg := smallSegments(2048)
	cfg.RetentionMs = 1000
	l := e.log("t-0", cfg)
	appendEmpty(t, l, 1)
	if err := l.Commit(l.LastIndex()); err != nil {
		t.Fatal(err)
	}
	if err := l.ApplyRetention(timeMs(1_000_000)); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 1 || l.SegmentCount() != 1 {
		t.Fatalf("retention dropped raft's entries of a log without records: first index %d, %d segments", l.FirstIndex(), l.SegmentCount())
	}
}

func TestUncommittedSegmentsAreNotDeleted(t *testing.T) {
	e := newEnv(t)
	cfg := smallSegments(2048)
	cfg.RetentionMs = 0
	l := e.log("t-0", cfg)
	var ents []Entry
	for i := range 10 {
		ents = append(ents, batchEntry(l, uint64(i+1), 1, int64(4*i), makeBatch(4, 0, "x")))
	}
	if err := l.AppendSync(ents); err != nil {
		t.Fatal(err)
	}
	l.ApplyRetention(timeMs(1 << 50))
	if l.FirstIndex() != 1 || l.LogStartOffset() != 0 {
		t.Fatalf("retention deleted uncommitted entries: first index %d", l.FirstIndex())
	}
}

func TestReset(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", smallSegments(2048))
	for range 10 {
		appendBatches(t, l, 1, makeBatch(4, 0, "x"))
	}
	if err := l.Reset(100, 5, 500); err != nil {
		t.Fatal(err)
	}
	check := func() {
		if l.FirstIndex() != 101 || l.LastIndex() != 100 || l.NextOffset() != 500 || l.LogStartOffset() != 500 || l.HighWatermark() != 500 {
			t.Fatalf("after reset: first %d last %d next %d start %d hw %d",
				l.FirstIndex(), l.LastIndex(), l.NextOffset(), l.LogStartOffset(), l.HighWatermark())
		}
		if tm, err := l.Term(100); tm != 5 || err != nil {
			t.Fatalf("term(100) = %d %v", tm, err)
		}
	}
	check()
	e.reopen()
	l = e.log("t-0", smallSegments(2048))
	check()
	appendBatches(t, l, 5, makeBatch(2, 0, "y"))
	if got := readAll(t, l); !slices.Equal(got, []int64{500, 501}) {
		t.Fatalf("offsets %v", got)
	}
}

func TestSecondStoreOnSameDirFails(t *testing.T) {
	e := newEnv(t)
	_, err := Open(e.dir, Options{})
	if err == nil {
		t.Fatal("a second store opened the same directory")
	}
	if !bytes.Contains([]byte(err.Error()), []byte("in use")) {
		t.Fatalf("unclear error: %v", err)
	}
}

func TestRemoveLog(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	appendBatches(t, l, 1, makeBatch(2, 0, "x"))
	if err := e.store.RemoveLog(InternalLog("t-0")); err != nil {
		t.Fatal(err)
	}
	names, _ := e.store.LogNames()
	if len(names) != 0 {
		t.Fatalf("log dirs left: %v", names)
	}
	l = e.log("t-0", DefaultLogConfig())
	if l.NextOffset() != 0 || l.HighWatermark() != 0 {
		t.Fatalf("recreated log kept state: next %d hw %d", l.NextOffset(), l.HighWatermark())
	}
}

func TestConfStatePersists(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", DefaultLogConfig())
	if err := l.SetConfState([]byte("voters 1 2 3")); err != nil {
		t.Fatal(err)
	}
	// Durable at once, before any clean close.
	st, err := readCheckpoint(e.dir + "/" + checkpointName)
	if err != nil || string(st["internal/t-0"].conf) != "voters 1 2 3" {
		t.Fatalf("checkpoint conf %q %v", st["internal/t-0"].conf, err)
	}
	e.reopen()
	if got := e.log("t-0", DefaultLogConfig()).ConfState(); string(got) != "voters 1 2 3" {
		t.Fatalf("conf after reopen %q", got)
	}
}

func TestTermAtOffset(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", smallSegments(2048))
	appendBatches(t, l, 1, makeBatch(3, 0, "a"))
	appendEmpty(t, l, 4)
	appendBatches(t, l, 4, makeBatch(3, 0, "b"))
	for off, want := range map[int64]int64{0: 1, 2: 1, 3: 4, 5: 4, 6: -1, -1: -1} {
		if got := l.TermAtOffset(off); got != want {
			t.Fatalf("TermAtOffset(%d) = %d, want %d", off, got, want)
		}
	}
}
