package replica

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/raftnode"
)

// TestNoMoveToUnreachablePreferredReplica: the preferred replica dies
// while another replica leads, and stays in the ISR for LagMax (nothing is
// written, so it is not behind). The leader must not hand its leadership
// to it: a transfer to a dead node stalls the partition's writes until raft
// gives it up, and Chronik tried again every preferredLeaderDelay, for
// LagMax, on every partition whose preferred replica was the dead node.
// Once reachable again, the preferred replica gets its leadership back.
func TestNoMoveToUnreachablePreferredReplica(t *testing.T) {
	c := newCluster(t, testConfig(), Settings{PreferredLeaders: true, LagMax: time.Minute, ISRInterval: 20 * time.Millisecond})
	// Replica 1 is the preferred one (first of 1, 2, 3): lead from 2
	// instead, with every replica holding every entry.
	first := c.leader()
	if r := produce(first, batch(-1, -1, -1, 1), -1); r.Err != nil {
		t.Fatal(r.Err)
	}
	if first.View().Leader != 2 {
		first.group.Do(func(l raftnode.Loop) { l.TransferLeader(2) })
	}
	lead := c.leader(1, 3)
	waitUntil(t, "all three replicas in the ISR of leader 2", func() bool { return len(lead.View().ISR) == 3 })
	c.hub.Cut(1, true)

	// The leader would move back to 1 preferredLeaderDelay after it was
	// elected, at a quiet moment; watch for a transfer until well after.
	deadline := time.Now().Add(preferredLeaderDelay + 2*preferredQuiet)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		to, err := raftnode.Query(ctx, lead.group, func(l raftnode.Loop) uint64 { return l.BasicStatus().LeadTransferee })
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if to == 1 {
			t.Fatal("leader 2 hands its leadership to replica 1, which it cannot reach")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !slices.Contains(lead.View().ISR, 1) {
		t.Fatalf("replica 1 left the ISR %v: the test no longer covers a dead preferred replica in the ISR", lead.View().ISR)
	}
	if l := lead.View().Leader; l != 2 {
		t.Fatalf("leader %d, want 2", l)
	}
	// Reachable again, it gets its leadership back.
	c.hub.Cut(1, false)
	waitUntil(t, "the leadership to move back to replica 1", func() bool { return c.parts[1].CheckLeader() == nil })
}
