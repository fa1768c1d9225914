// Package membudget holds the node-wide byte budgets that bound the memory
// a node spends on what clients send and ask for: [Requests], the bytes of
// request frames read and not yet answered (kafka.queued_max_request_bytes),
// and [Pool], the bytes of Fetch responses read from the log and not yet
// written (kafka.queued_max_fetch_bytes). A reader or fetch that finds its
// budget short waits or reads less; it never allocates beyond the budget.
package membudget

import (
	"container/list"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrCanceled is returned by Acquire when its cancel channel closes first.
var ErrCanceled = errors.New("membudget: wait canceled")

// SmallMax is the largest reservation of the small class: requests of
// ordinary clients (ApiVersions, Metadata, Fetch, a producer's batches of
// up to Kafka's default max.request.size of 1 MiB).
const SmallMax = 1 << 20

// Requests is the budget of request bytes read but not yet answered.
//
// Reservations come in two classes so that small requests never queue
// behind large ones (no head-of-line blocking behind a 100 MiB waiter):
//
//   - small (at most [SmallMax] bytes) may use the whole limit;
//   - large ones together may use at most limit-reserve, so reserve bytes
//     are always left to small ones. reserve is a quarter of the limit, less
//     if that would leave no room for a request of the largest size.
//
// Within a class, waiters are served in arrival order. While a large
// reservation waits, small ones may only grow into the reserve, so a
// steady stream of small requests cannot starve a large one.
type Requests struct {
	limit   int64
	reserve int64

	mu sync.Mutex
	// Invariant: 0 <= large <= used <= limit; large <= limit-reserve.
	used, large int64
	smallQ      list.List // of *waiter, oldest first
	largeQ      list.List

	waits atomic.Uint64
}

type waiter struct {
	n     int64
	ready chan struct{} // closed once granted
}

// NewRequests returns a budget of limit bytes for requests of at most
// maxRequest bytes each. limit must be at least maxRequest.
func NewRequests(limit, maxRequest int64) *Requests {
	return &Requests{limit: limit, reserve: max(0, min(limit/4, limit-maxRequest))}
}

// Limit is the configured limit in bytes.
func (r *Requests) Limit() int64 { return r.limit }

// Reserve is the part of the limit only small requests may use.
func (r *Requests) Reserve() int64 { return r.reserve }

// Reserved returns the bytes held now.
func (r *Requests) Reserved() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.used
}

// Waits counts reservations that could not be granted at once.
func (r *Requests) Waits() uint64 { return r.waits.Load() }

// Waiting returns the reservations queued now.
func (r *Requests) Waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.smallQ.Len() + r.largeQ.Len()
}

func isSmall(n int64) bool { return n <= SmallMax }

// fits reports whether a reservation of n bytes can be granted now,
// ignoring the order of the queues.
func (r *Requests) fits(n int64) bool {
	if r.used+n > r.limit {
		return false
	}
	if isSmall(n) {
		return r.largeQ.Len() == 0 || r.used-r.large+n <= r.reserve
	}
	return r.large+n <= r.limit-r.reserve
}

func (r *Requests) grant(n int64) {
	r.used += n
	if !isSmall(n) {
		r.large += n
	}
}

// Acquire reserves n bytes, waiting until they are free or cancel closes.
// n must be positive and at most the largest request the budget was made
// for. waited reports whether it had to wait.
func (r *Requests) Acquire(n int64, cancel <-chan struct{}) (waited bool, err error) {
	r.mu.Lock()
	q := &r.largeQ
	if isSmall(n) {
		q = &r.smallQ
	}
	if q.Len() == 0 && r.fits(n) {
		r.grant(n)
		r.mu.Unlock()
		return false, nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	e := q.PushBack(w)
	r.waits.Add(1)
	r.mu.Unlock()

	select {
	case <-w.ready:
		return true, nil
	case <-cancel:
		r.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: hand the bytes back.
			r.releaseLocked(n)
		default:
			q.Remove(e)
			// The head may have been what held the others back.
			r.grantWaitersLocked()
		}
		r.mu.Unlock()
		return true, ErrCanceled
	}
}

// Release returns n bytes reserved by Acquire.
func (r *Requests) Release(n int64) {
	r.mu.Lock()
	r.releaseLocked(n)
	r.mu.Unlock()
}

func (r *Requests) releaseLocked(n int64) {
	r.used -= n
	if !isSmall(n) {
		r.large -= n
	}
	if r.used < 0 || r.large < 0 {
		panic("membudget: released more than was reserved")
	}
	r.grantWaitersLocked()
}

// grantWaitersLocked grants the heads of both queues while they fit. The
// large queue goes first: while it waits, small ones are confined to the
// reserve, which it cannot touch.
func (r *Requests) grantWaitersLocked() {
	for _, q := range []*list.List{&r.largeQ, &r.smallQ} {
		for q.Len() > 0 {
			w := q.Front().Value.(*waiter)
			if !r.fits(w.n) {
				break
			}
			q.Remove(q.Front())
			r.grant(w.n)
			close(w.ready)
		}
	}
}
