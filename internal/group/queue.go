package group

import "sync"

// queue is an unbounded FIFO of closures for one shard's loop. push never
// blocks, so request handlers, Partitions callbacks and timers can all hand
// work to the loop from any goroutine.
type queue struct {
	mu     sync.Mutex
	fns    []func()
	closed bool
	wake   chan struct{} // capacity 1: "fns is not empty or closed"
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

// push appends fn and reports whether it was accepted; after closeWith it
// is refused, and the caller must answer whatever fn would have answered.
func (q *queue) push(fn func()) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.fns = append(q.fns, fn)
	q.mu.Unlock()
	q.signal()
	return true
}

// closeWith appends last and refuses every later push; last is the final
// closure the loop runs. A second call does nothing.
func (q *queue) closeWith(last func()) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.fns = append(q.fns, last)
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next waits for closures and returns all that are queued; more is false
// once the queue is closed and these are the last.
func (q *queue) next() (fns []func(), more bool) {
	for {
		q.mu.Lock()
		fns, closed := q.fns, q.closed
		q.fns = nil
		q.mu.Unlock()
		if len(fns) > 0 || closed {
			return fns, !closed
		}
		<-q.wake
	}
}
