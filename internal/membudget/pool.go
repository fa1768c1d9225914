package membudget

import (
	"sync"
	"sync/atomic"
)

// Pool is the budget of Fetch response bytes. A fetch takes what is free
// (possibly less than it asked for) instead of queueing, and reads that
// much; a fetch that got nothing waits on [Pool.Freed] within its
// max_wait, like a long poll waits for data.
//
// Asks come in two classes, as in [Requests]: a small ask (a partition
// read of at most SmallMax bytes, what ordinary consumers ask per
// partition) may use the whole limit; large asks only bring the total up
// to limit-reserve, so that the reserve is left to small ones while
// clients asking for hundreds of megabytes take the rest. The reserve is a
// quarter of the limit, less if that would leave no room for the largest
// ask.
type Pool struct {
	limit   int64
	reserve int64

	mu sync.Mutex
	// used may exceed limit only through Force.
	used  int64
	freed chan struct{} // closed and replaced by the next Release

	waits atomic.Uint64
}

// NewPool returns a budget of limit bytes for asks of at most largestAsk
// bytes each.
func NewPool(limit, largestAsk int64) *Pool {
	return &Pool{limit: limit, reserve: max(0, min(limit/4, limit-largestAsk)), freed: make(chan struct{})}
}

// Ceiling is the most one ask of the class can be granted.
func (p *Pool) Ceiling(small bool) int64 {
	if small {
		return p.limit
	}
	return p.limit - p.reserve
}

// Limit is the configured limit in bytes.
func (p *Pool) Limit() int64 { return p.limit }

// Reserved returns the bytes held now.
func (p *Pool) Reserved() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}

// Waits counts fetches that read less than they asked for, or waited,
// because the budget was short.
func (p *Pool) Waits() uint64 { return p.waits.Load() }

// NoteWait counts one fetch held back by the budget.
func (p *Pool) NoteWait() { p.waits.Add(1) }

// TryAcquire reserves up to n bytes without waiting and returns how many
// it got (0 when the budget is spent for the ask's class).
func (p *Pool) TryAcquire(n int64, small bool) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	got := max(0, min(n, p.Ceiling(small)-p.used))
	p.used += got
	return got
}

// Force reserves n bytes even beyond the limit. It is for memory that
// already exists and must be counted, so that other fetches wait until it
// is gone.
func (p *Pool) Force(n int64) {
	p.mu.Lock()
	p.used += n
	p.mu.Unlock()
}

// Unused returns n bytes that TryAcquire granted but the fetch did not
// fill. It wakes nobody: the budget is as it was before the TryAcquire,
// and waking the fetches that wait on it would have them spin.
func (p *Pool) Unused(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used -= n
	if p.used < 0 {
		panic("membudget: released more than was reserved")
	}
}

// Release returns n bytes and wakes the fetches waiting on Freed.
func (p *Pool) Release(n int64) {
	if n == 0 {
		return
	}
	p.mu.Lock()
	p.used -= n
	if p.used < 0 {
		p.mu.Unlock()
		panic("membudget: released more than was reserved")
	}
	close(p.freed)
	p.freed = make(chan struct{})
	p.mu.Unlock()
}

// Freed returns a channel closed at the next Release. Take it before
// trying to reserve, so that a release in between is not missed.
func (p *Pool) Freed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.freed
}
