package group

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// errResigned answers writes that were in flight when the shard stopped; it
// maps to NOT_COORDINATOR.
var errResigned = kerr.NotLeaderForPartition

// shard holds the groups of one __consumer_offsets partition that this node
// leads. One goroutine (run) owns every field below q: request handlers,
// Partitions callbacks and timers reach the state only through closures
// pushed onto q. So no lock guards group state, and a closure sees the state
// exactly as the previous closure left it.
//
// Lifecycle: newShard → load (own goroutine) reads the log → install (in the
// loop) → serving → stop (last closure, queued by Resigned or Close).
type shard struct {
	c    *Coordinator
	p    int32
	log  *slog.Logger
	q    *queue
	quit chan struct{} // closed by stop; the loader gives up when it is

	loaded  bool // install ran; requests are served
	stopped bool // stop ran; nothing is served or written any more
	groups  map[string]*group

	// writes are this shard's appends in flight, in the order Append was
	// called, which is their order in the log.
	// Invariant: a write's apply runs only after the apply of every earlier
	// write, so the in-memory state takes writes in log order, whatever the
	// order in which Partitions calls back.
	writes []*write

	// Compaction (compact.go).
	// Invariant: sinceCompaction counts the bytes issued since the last
	// compaction barrier (or loaded at install).
	sinceCompaction int64
	compacting      bool     // a compaction is between its barrier and its end
	barrier         bool     // waiting for writes to drain; new writes are held
	held            []*write // writes held by the barrier, issued after the snapshot

	sweepTimer *time.Timer // offsets retention sweep (retention.go)
}

// write is one append of one or more batches.
type write struct {
	batches [][]byte
	size    int64
	left    int   // batches whose callback has not arrived
	err     error // first error among the batches
	// apply runs in the loop once this write and all earlier writes have
	// their outcome: err nil means every batch is committed.
	apply func(err error)
}

func newShard(c *Coordinator, p int32) *shard {
	return &shard{
		c:      c,
		p:      p,
		log:    c.log.With("partition", p),
		q:      newQueue(),
		quit:   make(chan struct{}),
		groups: map[string]*group{},
	}
}

// run is the shard's loop.
func (s *shard) run() {
	defer s.c.wg.Done()
	for {
		fns, more := s.q.next()
		for _, fn := range fns {
			fn()
		}
		if !more {
			return
		}
	}
}

// servable returns the error code a request for this shard's groups gets,
// or 0 if it can be served.
func (s *shard) servable() int16 {
	switch {
	case s.stopped:
		return kerr.NotCoordinator.Code
	case !s.loaded:
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// after runs fn in the loop after d, unless the shard has stopped by then.
// It returns nil once the shard has stopped.
func (s *shard) after(d time.Duration, fn func()) *time.Timer {
	if s.stopped {
		return nil
	}
	return time.AfterFunc(d, func() {
		s.q.push(func() {
			if !s.stopped {
				fn()
			}
		})
	})
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// append writes batches to the partition and runs apply in the loop with
// the outcome, in log order (see writes). While a compaction barrier is up,
// the write is held and issued right after the snapshot.
func (s *shard) append(batches [][]byte, apply func(err error)) {
	w := &write{batches: batches, left: len(batches), apply: apply}
	for _, b := range batches {
		w.size += int64(len(b))
	}
	switch {
	case s.stopped:
		apply(errResigned)
	case s.barrier:
		s.held = append(s.held, w)
	default:
		s.issue(w)
		s.sinceCompaction += w.size
		s.maybeCompact()
	}
}

// issue hands w's batches to Partitions.
func (s *shard) issue(w *write) {
	s.writes = append(s.writes, w)
	if w.left == 0 {
		s.drainWrites()
		return
	}
	for _, b := range w.batches {
		s.c.parts.Append(s.p, b, func(err error) {
			s.q.push(func() { s.batchDone(w, err) })
		})
	}
}

func (s *shard) batchDone(w *write, err error) {
	if s.stopped {
		return // stop already answered w
	}
	w.left--
	if err != nil && w.err == nil {
		w.err = err
	}
	s.drainWrites()
}

// drainWrites applies the writes at the head of writes that have their
// outcome.
func (s *shard) drainWrites() {
	for len(s.writes) > 0 && s.writes[0].left == 0 {
		w := s.writes[0]
		s.writes[0] = nil
		s.writes = s.writes[1:]
		w.apply(w.err)
	}
	if s.barrier && len(s.writes) == 0 {
		s.snapshot()
	}
}

// stop is the last closure the loop runs: everything waiting is answered
// with NOT_COORDINATOR and the groups are dropped.
func (s *shard) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	close(s.quit)
	ws := append(s.writes, s.held...)
	s.writes, s.held = nil, nil
	for _, w := range ws {
		w.apply(errResigned)
	}
	stopTimer(s.sweepTimer)
	for _, g := range s.groups {
		s.unload(g)
	}
	s.groups = nil
	if s.loaded {
		s.log.Info("resigned as group coordinator")
	}
}
