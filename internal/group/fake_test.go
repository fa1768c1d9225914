package group

import (
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// fakeLog is an in-memory Partitions. Appends are stored at once; a batch
// becomes readable (below the high watermark) when it is committed, which
// is immediately unless hold is set. Callbacks run on their own goroutines,
// so they arrive in any order, as Partitions allows.
type fakeLog struct {
	mu    sync.Mutex
	parts map[int32]*fakePart
	// fail, if set, decides the outcome of each append: a non-nil error
	// fails it and nothing is stored.
	fail func(p int32, batch []byte) error
	// hold keeps new appends uncommitted (and their callbacks pending)
	// until release.
	hold bool
	held []heldAppend
	// notLeader makes every call for the partition fail.
	notLeader map[int32]bool
	// readGate, if set, blocks Read until it is closed.
	readGate chan struct{}
	wg       sync.WaitGroup // callback goroutines

	appends int
	deletes []int64
}

type fakePart struct {
	start   int64
	end     int64 // log end offset
	hw      int64
	batches []fakeBatch
	history []fakeBatch // every batch ever appended, even deleted ones
}

type fakeBatch struct {
	base, next int64
	data       []byte
}

type heldAppend struct {
	p    int32
	next int64
	cb   func(error)
}

func newFakeLog() *fakeLog {
	return &fakeLog{parts: map[int32]*fakePart{}, notLeader: map[int32]bool{}}
}

func (f *fakeLog) part(p int32) *fakePart {
	fp := f.parts[p]
	if fp == nil {
		fp = &fakePart{}
		f.parts[p] = fp
	}
	return fp
}

func (f *fakeLog) callback(cb func(error), err error) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		cb(err)
	}()
}

func (f *fakeLog) Append(p int32, batch []byte, cb func(error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appends++
	if f.notLeader[p] {
		f.callback(cb, kerr.NotLeaderForPartition)
		return
	}
	if f.fail != nil {
		if err := f.fail(p, batch); err != nil {
			f.callback(cb, err)
			return
		}
	}
	fb, err := f.store(p, batch)
	if err != nil {
		f.callback(cb, kerr.CorruptMessage)
		return
	}
	fp := f.part(p)
	if f.hold {
		f.held = append(f.held, heldAppend{p, fb.next, cb})
		return
	}
	fp.hw = fp.end
	f.callback(cb, nil)
}

// store appends batch to p's log (not committed). Callers hold f.mu.
func (f *fakeLog) store(p int32, batch []byte) (fakeBatch, error) {
	h, err := recordbatch.Validate(batch)
	if err != nil {
		return fakeBatch{}, err
	}
	fp := f.part(p)
	b := slices.Clone(batch)
	recordbatch.SetBaseOffset(b, fp.end)
	fb := fakeBatch{base: fp.end, next: fp.end + int64(h.LastOffsetDelta) + 1, data: b}
	fp.batches = append(fp.batches, fb)
	fp.history = append(fp.history, fb)
	fp.end = fb.next
	return fb, nil
}

// release commits the held appends and runs their callbacks.
func (f *fakeLog) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = false
	for _, h := range f.held {
		fp := f.part(h.p)
		fp.hw = max(fp.hw, h.next)
		f.callback(h.cb, nil)
	}
	f.held = nil
}

func (f *fakeLog) heldCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.held)
}

func (f *fakeLog) Read(p int32, offset int64, maxBytes int) ([]byte, int64, int64, error) {
	f.mu.Lock()
	gate := f.readGate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notLeader[p] {
		return nil, 0, 0, kerr.NotLeaderForPartition
	}
	fp := f.part(p)
	if offset < fp.start || offset > fp.hw {
		return nil, 0, fp.hw, kerr.OffsetOutOfRange
	}
	var out []byte
	next := offset
	for _, b := range fp.batches {
		if b.next <= offset || b.next > fp.hw {
			continue
		}
		if len(out) > 0 && len(out)+len(b.data) > maxBytes {
			break
		}
		out = append(out, b.data...)
		next = b.next
	}
	return out, next, fp.hw, nil
}

func (f *fakeLog) LogStartOffset(p int32) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.part(p).start
}

func (f *fakeLog) DeleteRecords(p int32, offset int64, cb func(error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notLeader[p] {
		f.callback(cb, kerr.NotLeaderForPartition)
		return
	}
	fp := f.part(p)
	if offset > fp.hw {
		f.callback(cb, kerr.OffsetOutOfRange)
		return
	}
	fp.start = max(fp.start, offset)
	fp.batches = slices.DeleteFunc(fp.batches, func(b fakeBatch) bool { return b.next <= fp.start })
	f.deletes = append(f.deletes, offset)
	f.callback(cb, nil)
}

// size is the number of bytes stored for p.
func (f *fakeLog) size(p int32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, b := range f.part(p).batches {
		n += len(b.data)
	}
	return n
}

func (f *fakeLog) setNotLeader(p int32, v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notLeader[p] = v
}

func (f *fakeLog) setFail(fn func(p int32, batch []byte) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fn
}

func (f *fakeLog) setHold() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = true
}

// replay decodes every record of p from its log start in order and
// returns the last value of each key in a canonical text form: what any
// reader of the partition would rebuild.
func (f *fakeLog) replay(p int32) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.part(p)
	return replayBatches(fp.batches, fp.start, fp.hw)
}

// replayHistory is replay over every batch ever appended to p, as if
// nothing had been deleted.
func (f *fakeLog) replayHistory(p int32) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.part(p)
	return replayBatches(fp.history, 0, fp.hw)
}

// records counts the records stored for p.
func (f *fakeLog) records(p int32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, b := range f.part(p).batches {
		recs, _ := recordbatch.RecordsOf(b.data)
		n += len(recs)
	}
	return n
}

func replayBatches(batches []fakeBatch, start, hw int64) (map[string]string, error) {
	state := map[string]string{}
	for _, fb := range batches {
		b := fb
		if b.next > hw {
			break
		}
		recs, err := recordbatch.RecordsOf(b.data)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Offset < start {
				continue
			}
			e, err := decodeEntry(r.Key, r.Value)
			if err != nil {
				return nil, err
			}
			k, v := describeEntry(e)
			if v == "" {
				delete(state, k)
			} else {
				state[k] = v
			}
		}
	}
	return state, nil
}

// describeEntry is a one-line form of a log entry: key and value ("" for
// a tombstone).
func describeEntry(e logEntry) (string, string) {
	if e.isOffset {
		k := fmt.Sprintf("offset %s %s", e.group, e.tp)
		if e.offset == nil {
			return k, ""
		}
		return k, fmt.Sprintf("%d epoch=%d md=%q", e.offset.offset, e.offset.leaderEpoch, e.offset.metadata)
	}
	k := "group " + e.group
	if e.meta == nil {
		return k, ""
	}
	v := fmt.Sprintf("type=%s gen=%d", e.meta.ProtocolType, e.meta.Generation)
	if e.meta.Protocol != nil {
		v += " protocol=" + *e.meta.Protocol
	}
	if e.meta.Leader != nil {
		v += " leader=" + *e.meta.Leader
	}
	for _, m := range e.meta.Members {
		v += fmt.Sprintf(" member=%s/%x", m.MemberID, m.Assignment)
	}
	return k, v
}
