package storage

import (
	"sync"
	"sync/atomic"
	"time"
)

// Flusher makes the appends of every log of a node durable together. One
// goroutine runs rounds: it takes the set of logs written since the last
// round, fdatasyncs their active segments (in parallel), writes the
// checkpoint if a raft term or vote changed, and then tells each log which
// of its appends are durable. Appends that arrive during a round wait for
// the next, so the number of fsyncs per second stays bounded however many
// producers write: this is the group commit.
type Flusher struct {
	// interval is how long a round waits for more appends after the first
	// (0: start as soon as the previous round ends). maxBatch ends that
	// wait early once this many appends are pending.
	interval time.Duration
	maxBatch int
	// checkpoint writes the store checkpoint; called when a hard state
	// change must become durable within the round.
	checkpoint func() error
	// onSync, if set, observes the duration of each fdatasync.
	onSync func(time.Duration)

	mu      sync.Mutex
	dirty   []*Log
	pending int
	wake    chan struct{}
	closed  bool
	// draining ends the waits for more appends: the store is closing and
	// only the last flushes remain.
	draining bool
	done     chan struct{}

	stats FlusherStats
}

// FlusherStats counts the flusher's work; read it with Stats.
type FlusherStats struct {
	Rounds     atomic.Uint64
	Syncs      atomic.Uint64
	SyncErrors atomic.Uint64
	// CheckpointErrors counts failed writes of the hard states (a full
	// disk, say); the logs waiting on them are retried.
	CheckpointErrors atomic.Uint64
	// SyncNanos is the total time spent in fdatasync calls.
	SyncNanos atomic.Uint64
}

const maxParallelSyncs = 8

func newFlusher(interval time.Duration, maxBatch int, checkpoint func() error, onSync func(time.Duration)) *Flusher {
	f := &Flusher{
		interval:   interval,
		maxBatch:   max(maxBatch, 1),
		checkpoint: checkpoint,
		onSync:     onSync,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	go f.run()
	return f
}

// markDirty queues l for the next round.
func (f *Flusher) markDirty(l *Log) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		l.finishUnflushed()
		return
	}
	if !l.flushQueued {
		l.flushQueued = true
		f.dirty = append(f.dirty, l)
	}
	f.pending++
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *Flusher) run() {
	defer close(f.done)
	for {
		logs, ok := f.nextRound()
		if !ok {
			return
		}
		f.round(logs)
	}
}

// nextRound waits for dirty logs (and, with an interval, for the group to
// fill) and takes them.
func (f *Flusher) nextRound() ([]*Log, bool) {
	for {
		f.mu.Lock()
		if len(f.dirty) > 0 || f.closed {
			break
		}
		f.mu.Unlock()
		<-f.wake
	}
	if f.interval > 0 && !f.closed && !f.draining && f.pending < f.maxBatch {
		f.mu.Unlock()
		deadline := time.NewTimer(f.interval)
	wait:
		for {
			select {
			case <-deadline.C:
				break wait
			case <-f.wake:
				f.mu.Lock()
				full := f.pending >= f.maxBatch || f.closed || f.draining
				f.mu.Unlock()
				if full {
					deadline.Stop()
					break wait
				}
			}
		}
		f.mu.Lock()
	}
	logs := f.dirty
	f.dirty = nil
	f.pending = 0
	for _, l := range logs {
		l.flushQueued = false
	}
	closed := f.closed
	f.mu.Unlock()
	if len(logs) == 0 && closed {
		return nil, false
	}
	return logs, true
}

func (f *Flusher) round(logs []*Log) {
	f.stats.Rounds.Add(1)
	targets := make([]syncTarget, 0, len(logs))
	for _, l := range logs {
		if t, ok := l.beginSync(); ok {
			targets = append(targets, t)
		}
	}
	errs := make([]error, len(targets))
	if len(targets) == 1 {
		errs[0] = f.sync(targets[0])
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, maxParallelSyncs)
		for i := range targets {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				errs[i] = f.sync(targets[i])
				<-sem
			}()
		}
		wg.Wait()
	}
	var ckErr error
	for _, t := range targets {
		if t.checkpoint {
			if ckErr = f.checkpoint(); ckErr != nil {
				f.stats.CheckpointErrors.Add(1)
			}
			break
		}
	}
	for i, t := range targets {
		var tErr error
		if t.checkpoint {
			tErr = ckErr
		}
		t.log.endSync(t, errs[i], tErr)
	}
}

// checkpointRetry is how long a log whose hard state could not be written
// waits before the next try.
const checkpointRetry = time.Second

// retryLater queues l again after checkpointRetry.
func (f *Flusher) retryLater(l *Log) {
	time.AfterFunc(checkpointRetry, func() { f.markDirty(l) })
}

func (f *Flusher) sync(t syncTarget) error {
	start := time.Now()
	err := fdatasync(t.seg.f)
	d := time.Since(start)
	f.stats.Syncs.Add(1)
	f.stats.SyncNanos.Add(uint64(d))
	if err != nil {
		f.stats.SyncErrors.Add(1)
	}
	if f.onSync != nil {
		f.onSync(d)
	}
	return err
}

// drain makes every later round start at once.
func (f *Flusher) drain() {
	f.mu.Lock()
	f.draining = true
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// close runs a last round for what is queued and stops the goroutine.
func (f *Flusher) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	<-f.done
}

// Stats returns the flusher's counters.
func (f *Flusher) Stats() *FlusherStats { return &f.stats }
