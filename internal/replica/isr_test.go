package replica

import (
	"testing"
	"time"

	"go.etcd.io/raft/v3/tracker"
)

func TestFollowerInSync(t *testing.T) {
	s := Settings{LagMaxEntries: 1000, LagMax: 10 * time.Second}
	now := time.Now()
	recent := now.Add(-time.Second)
	for _, tc := range []struct {
		name     string
		match    uint64
		last     uint64
		caughtUp time.Time
		state    tracker.StateType
		want     bool
	}{
		{"has every entry", 50_000, 50_000, recent, tracker.StateReplicate, true},
		{"behind within the bound", 49_000, 50_000, recent, tracker.StateReplicate, true},
		{"too far behind", 48_999, 50_000, recent, tracker.StateReplicate, false},
		{"has not caught up for too long", 50_000, 50_000, now.Add(-11 * time.Second), tracker.StateReplicate, false},
		{"never caught up", 50_000, 50_000, time.Time{}, tracker.StateReplicate, false},
		{"needs a snapshot", 50_000, 50_000, recent, tracker.StateSnapshot, false},
	} {
		pr := tracker.Progress{Match: tc.match, State: tc.state}
		if got := followerInSync(pr, tc.last, tc.caughtUp, now, s); got != tc.want {
			t.Errorf("%s: in sync %v, want %v", tc.name, got, tc.want)
		}
	}
}
