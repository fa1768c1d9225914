package membudget

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	mib   = 1 << 20
	large = 3 * mib // above SmallMax
)

// acquireAsync starts an Acquire and returns a channel that yields its
// error once it returns.
func acquireAsync(r *Requests, n int64, cancel <-chan struct{}) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := r.Acquire(n, cancel)
		done <- err
	}()
	return done
}

// waitWaiting polls until n reservations are queued; the deadline only
// bounds a failing run.
func waitWaiting(t *testing.T, r *Requests, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d reservations waiting, want %d", r.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func granted(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Acquire: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire was not granted")
	}
}

func pending(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Acquire returned (%v) while it should wait", err)
	default:
	}
}

func TestRequestsReserve(t *testing.T) {
	for _, tc := range []struct {
		limit, max, reserve int64
	}{
		{256 * mib, 100 * mib, 64 * mib},    // a quarter
		{128 * mib, 100 * mib, 28 * mib},    // what a largest request leaves
		{100 * mib, 100 * mib, 0},           // nothing left: small ones may wait
		{6 * mib, 4 * mib, 6 * mib / 4},     // a quarter
		{6 * mib, 5 * mib, 1 * mib},         // what a largest request leaves
		{64 * mib, 1 * mib, 16 * mib},       // a quarter
		{64 * mib, 64 * mib, 0 * mib},       // none
		{64 * mib, 63 * mib, 1 * mib},       // one
		{3 * mib / 2, 1 * mib, mib * 3 / 8}, // a quarter
	} {
		r := NewRequests(tc.limit, tc.max)
		if r.Reserve() != tc.reserve {
			t.Errorf("limit %d, max %d: reserve %d, want %d", tc.limit, tc.max, r.Reserve(), tc.reserve)
		}
		if tc.limit-r.Reserve() < tc.max {
			t.Errorf("limit %d, max %d: a largest request does not fit beside the reserve", tc.limit, tc.max)
		}
	}
}

// A small reservation is granted while large ones wait, and does not wait
// behind them: no head-of-line blocking.
func TestRequestsSmallDoNotQueueBehindLarge(t *testing.T) {
	r := NewRequests(8*mib, 4*mib) // reserve 2 MiB, large ones 6 MiB
	if _, err := r.Acquire(large, nil); err != nil {
		t.Fatal(err)
	}
	w1 := acquireAsync(r, large, nil) // 6 MiB of large would be full: 3+3 fits
	granted(t, w1)
	w2 := acquireAsync(r, large, nil)
	waitWaiting(t, r, 1)
	pending(t, w2)
	// 2 MiB are left, the reserve: small ones get them at once.
	for range 2 {
		waited, err := r.Acquire(mib, nil)
		if err != nil || waited {
			t.Fatalf("small reservation behind a large waiter: waited %v, err %v", waited, err)
		}
	}
	w3 := acquireAsync(r, 1, nil) // the budget is full now
	waitWaiting(t, r, 2)
	// A small release goes to the small waiter; the large one needs 3 MiB.
	r.Release(mib)
	granted(t, w3)
	pending(t, w2)
	r.Release(large)
	granted(t, w2)
	if r.Waits() != 2 {
		t.Fatalf("waits = %d, want 2", r.Waits())
	}
}

// While a large reservation waits, small ones only grow into the reserve,
// so a stream of small reservations cannot starve it.
func TestRequestsLargeIsNotStarvedBySmall(t *testing.T) {
	r := NewRequests(8*mib, 4*mib) // reserve 2 MiB
	for range 7 {
		if _, err := r.Acquire(mib, nil); err != nil {
			t.Fatal(err)
		}
	}
	big := acquireAsync(r, large, nil)
	waitWaiting(t, r, 1)
	// 7 MiB of small ones are held, more than the reserve: a new small one
	// waits for the large one.
	small := acquireAsync(r, mib, nil)
	waitWaiting(t, r, 2)
	for range 5 {
		r.Release(mib)
	}
	granted(t, big) // 2 MiB small + 3 MiB large
	granted(t, small)
	if got := r.Reserved(); got != 2*mib+large+mib {
		t.Fatalf("reserved %d", got)
	}
}

// Waiters of one class are served in arrival order.
func TestRequestsFIFOWithinClass(t *testing.T) {
	r := NewRequests(8*mib, 4*mib)
	r.Acquire(large, nil)
	r.Acquire(large, nil)
	first := acquireAsync(r, 4*mib, nil)
	waitWaiting(t, r, 1)
	second := acquireAsync(r, large, nil)
	waitWaiting(t, r, 2)
	r.Release(large) // 3 MiB free for large: not enough for the first
	pending(t, first)
	pending(t, second)
	r.Release(large)
	granted(t, first)
	pending(t, second) // 4 + 3 MiB is more than large ones may hold
	r.Release(4 * mib)
	granted(t, second)
}

func TestRequestsCancel(t *testing.T) {
	r := NewRequests(8*mib, 4*mib)
	r.Acquire(large, nil)
	r.Acquire(large, nil)
	cancel := make(chan struct{})
	head := acquireAsync(r, 4*mib, cancel)
	waitWaiting(t, r, 1)
	next := acquireAsync(r, large, nil)
	waitWaiting(t, r, 2)
	r.Release(large)
	close(cancel)
	if err := <-head; err != ErrCanceled {
		t.Fatalf("canceled Acquire returned %v", err)
	}
	// The canceled head no longer holds back the one behind it.
	granted(t, next)
	if got := r.Reserved(); got != 2*large {
		t.Fatalf("reserved %d, want %d", got, 2*large)
	}
}

func TestPool(t *testing.T) {
	if r := NewPool(64*mib, 56*mib).Ceiling(false); r != 56*mib {
		t.Fatalf("large asks may take %d, want the largest ask, 56 MiB", r)
	}
	p := NewPool(64*mib, 32*mib) // reserve 16 MiB for small asks
	if got := p.TryAcquire(40*mib, false); got != 40*mib {
		t.Fatalf("granted %d", got)
	}
	// Large asks stop at 48 MiB, leaving the reserve to small ones.
	if got := p.TryAcquire(40*mib, false); got != 8*mib {
		t.Fatalf("large ask granted %d, want the 8 MiB left to large ones", got)
	}
	if got := p.TryAcquire(40*mib, false); got != 0 {
		t.Fatalf("large ask granted %d from the reserve", got)
	}
	freed := p.Freed()
	if got := p.TryAcquire(2*mib, true); got != 2*mib {
		t.Fatalf("small ask granted %d", got)
	}
	p.Unused(mib)
	select {
	case <-freed:
		t.Fatal("Unused woke the waiters")
	default:
	}
	p.Force(20 * mib) // memory that exists: counted beyond the limit
	if got := p.Reserved(); got != 69*mib {
		t.Fatalf("reserved %d", got)
	}
	if got := p.TryAcquire(mib, true); got != 0 {
		t.Fatalf("granted %d beyond the limit", got)
	}
	p.Release(21 * mib)
	select {
	case <-freed:
	default:
		t.Fatal("Release did not close Freed")
	}
	if got := p.Reserved(); got != 48*mib {
		t.Fatalf("reserved %d", got)
	}
}
