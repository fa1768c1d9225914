package storage

import (
	"errors"
	"os"
	"testing"
)

// TestDiscardFromRepairsADamagedSealedSegment flips a byte in a sealed
// segment, finds it with a scrub, discards from the damaged entry on
// (committed entries included), and checks what remains, the lowered
// commit state, the repair record across a restart, and that the log
// takes the same indexes and offsets again.
func TestDiscardFromRepairsADamagedSealedSegment(t *testing.T) {
	e := newEnv(t)
	l := e.log("t-0", smallSegments(2048))
	for i := range 12 {
		appendBatches(t, l, 1, makeBatch(3, int64(i*10), "a"))
	}
	l.SetHardState(HardState{Term: 1, Vote: 1, Commit: l.LastIndex()})
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	last, next := l.LastIndex(), l.NextOffset()
	segs := segmentFiles(t, l.Dir(), ".log")
	if len(segs) < 3 {
		t.Fatalf("want several segments, have %d", len(segs))
	}
	b, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x20
	if err := os.WriteFile(segs[1], b, 0o644); err != nil {
		t.Fatal(err)
	}
	damage := l.Scrub()
	var ce *CorruptionError
	if len(damage) != 1 || !errors.As(damage[0], &ce) {
		t.Fatalf("scrub: %v", damage)
	}
	if err := l.DiscardFrom(ce.Index); err != nil {
		t.Fatal(err)
	}
	if hs := l.HardState(); hs.Term != 2 || hs.Vote != 0 {
		t.Fatalf("hard state after discard %+v, want term 2 and no vote", hs)
	}
	if l.LastIndex() != ce.Index-1 || l.Committed() != ce.Index-1 || l.HardState().Commit != ce.Index-1 {
		t.Fatalf("after discard: last %d committed %d hs %+v, want all %d", l.LastIndex(), l.Committed(), l.HardState(), ce.Index-1)
	}
	if len(l.Scrub()) != 0 {
		t.Fatal("damage left after the discard")
	}
	if got := l.RepairUntil(); got != last {
		t.Fatalf("repair until %d, want %d", got, last)
	}
	kept := l.NextOffset()

	e.reopen()
	l = e.log("t-0", smallSegments(2048))
	if l.LastIndex() != ce.Index-1 || l.HardState().Commit != ce.Index-1 || l.RepairUntil() != last || l.HighWatermark() != kept {
		t.Fatalf("after reopen: last %d hs %+v repair %d hw %d", l.LastIndex(), l.HardState(), l.RepairUntil(), l.HighWatermark())
	}
	// Refilled (as raft would, from the leader), it ends where it was.
	for l.LastIndex() < last {
		appendBatches(t, l, 1, makeBatch(3, 0, "b"))
	}
	if l.NextOffset() != next {
		t.Fatalf("refilled log ends at offset %d, want %d", l.NextOffset(), next)
	}
	if err := l.EndRepair(); err != nil || l.RepairUntil() != 0 {
		t.Fatalf("end repair: %v, repair until %d", err, l.RepairUntil())
	}
	if err := l.DiscardFrom(l.LastIndex() + 1); err != nil || l.RepairUntil() != 0 {
		t.Fatalf("discarding nothing: %v, repair until %d", err, l.RepairUntil())
	}
}
