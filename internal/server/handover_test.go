package server

import (
	"testing"
	"time"
)

// fakeLeadership is a group whose followers become transfer targets after
// some checks, and which moves to a follower it was asked to.
type fakeLeadership struct {
	checks      int
	targetAfter int // checks before a target shows up
	asked       []uint64
	leading     bool
	lead        uint64
}

func (f *fakeLeadership) status() (bool, uint64) { return f.leading, f.lead }
func (f *fakeLeadership) target() uint64 {
	f.checks++
	if f.checks <= f.targetAfter {
		return 0
	}
	return 2
}
func (f *fakeLeadership) transfer(to uint64) {
	f.asked = append(f.asked, to)
	f.leading, f.lead = false, to
}

// A group with no in-sync follower when the hand-over starts (its
// followers' activity was sampled between two heartbeats) is asked to
// transfer as soon as one shows up. It used to be asked only once, at the
// start, and waited out the deadline as leader.
func TestHandOverAsksAgainOnceATargetShowsUp(t *testing.T) {
	quick := &fakeLeadership{leading: true, lead: 1}
	late := &fakeLeadership{leading: true, lead: 1, targetAfter: 1}
	never := &fakeLeadership{leading: true, lead: 1, targetAfter: 1 << 30}
	start := time.Now()
	moved, remaining := handOver([]leadership{quick, late, never}, 1, start.Add(2*time.Second))
	if len(moved) != 2 || len(remaining) != 1 || remaining[0] != never {
		t.Fatalf("moved %d, remaining %d: want the two with a target moved", len(moved), len(remaining))
	}
	if len(late.asked) != 1 || late.asked[0] != 2 {
		t.Fatalf("the group whose follower showed up late was asked %v, want [2]", late.asked)
	}
	if len(never.asked) != 0 {
		t.Fatalf("a group with no target was asked %v", never.asked)
	}
}

// The hand-over waits until this node knows each new leader, and stops at
// once when there is nothing left to wait for.
func TestHandOverWaitsForTheNewLeader(t *testing.T) {
	unknown := &fakeLeadership{leading: false, lead: 0}
	done := make(chan struct{})
	go func() {
		defer close(done)
		moved, remaining := handOver([]leadership{unknown}, 1, time.Now().Add(300*time.Millisecond))
		if len(moved) != 1 || len(remaining) != 0 {
			t.Errorf("moved %d, remaining %d", len(moved), len(remaining))
		}
	}()
	<-done
	none := &fakeLeadership{leading: false, lead: 3}
	if moved, remaining := handOver([]leadership{none}, 1, time.Now().Add(time.Hour)); len(moved) != 1 || len(remaining) != 0 {
		t.Fatalf("moved %d, remaining %d", len(moved), len(remaining))
	}
}
