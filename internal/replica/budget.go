package replica

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// byteBudget is the node's budget of produced bytes that its leaders have
// accepted and not yet committed (raft.advanced.max_uncommitted_bytes):
// what a producer faster than replication would otherwise pile up in
// memory. Produce waits for it; commits, truncations and lost leadership
// give it back.
type byteBudget struct {
	limit int64
	sem   *semaphore.Weighted
	used  atomic.Int64
	waits atomic.Uint64
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, sem: semaphore.NewWeighted(limit)}
}

// acquire reserves n bytes (at most the whole budget, so a batch larger
// than it still goes through, alone), waiting up to timeout.
func (b *byteBudget) acquire(n int, timeout time.Duration) (int64, error) {
	want := min(int64(n), b.limit)
	if !b.sem.TryAcquire(want) {
		b.waits.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := b.sem.Acquire(ctx, want); err != nil {
			return 0, err
		}
	}
	b.used.Add(want)
	return want, nil
}

func (b *byteBudget) release(n int64) {
	if n > 0 {
		b.used.Add(-n)
		b.sem.Release(n)
	}
}

// BudgetStats is the state of the node's uncommitted produce budget.
type BudgetStats struct {
	Limit, Used int64
	// Waits counts the produces that had to wait for it.
	Waits uint64
}
