package raftnode_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/raftnode/memnet"
	"github.com/chronik-stream/chronik/internal/storage"
)

func confOf(t *testing.T, g *raftnode.Group) (voters, outgoing, learners []uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg, err := raftnode.Query(ctx, g, func(l raftnode.Loop) [3][]uint64 {
		c := l.RaftStatus().Config
		return [3][]uint64{
			slices.Sorted(maps.Keys(c.Voters[0])), slices.Sorted(maps.Keys(c.Voters[1])), slices.Sorted(maps.Keys(c.Learners)),
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg[0], cfg[1], cfg[2]
}

func proposeConf(t *testing.T, g *raftnode.Group, cc raftpb.ConfChangeV2) {
	t.Helper()
	ch := make(chan error, 1)
	g.Do(func(l raftnode.Loop) { ch <- l.ProposeConfChange(cc) })
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
}

// A replica joins a running group as a learner, is promoted while a voter
// is removed (joint consensus), and every member, the new one after a
// restart too, ends with the same configuration and entries; the
// configuration history gives each index the configuration in force there.
func TestMembershipChangesThroughJointConsensus(t *testing.T) {
	h := memnet.New()
	nodes, _, lead := startThree(t, h)
	// The new replica starts on the group's first configuration, as the
	// other members did, and learns the rest from the log.
	dir4 := t.TempDir()
	n4 := startNode(t, h, dir4, 4, []uint64{1, 2, 3})
	defer func() { n4.stop(h) }()
	if v, _, _ := confOf(t, n4.group); !slices.Equal(v, []uint64{1, 2, 3}) {
		t.Fatalf("new replica's voters %v", v)
	}
	proposeConf(t, lead.group, raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 4}}})
	waitFor(t, "the learner to apply every entry", 5*time.Second, func() bool { return len(n4.sm.values()) == 50 })
	if _, _, l := confOf(t, n4.group); !slices.Equal(l, []uint64{4}) {
		t.Fatalf("learners on the new replica: %v", l)
	}
	var removed *testNode
	for _, n := range nodes {
		if n != lead {
			removed = n
			break
		}
	}
	proposeConf(t, lead.group, raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeAddNode, NodeID: 4}, {Type: raftpb.ConfChangeRemoveNode, NodeID: removed.id},
	}})
	var want []uint64
	for _, id := range []uint64{1, 2, 3, 4} {
		if id != removed.id {
			want = append(want, id)
		}
	}
	members := []*testNode{n4}
	for _, n := range nodes {
		if n != removed {
			members = append(members, n)
		}
	}
	waitFor(t, "every member to leave the joint configuration", 5*time.Second, func() bool {
		for _, n := range members {
			v, out, l := confOf(t, n.group)
			if !slices.Equal(v, want) || len(out) > 0 || len(l) > 0 {
				return false
			}
		}
		return true
	})
	for i := range 10 {
		if err := propose(t, lead.group, fmt.Appendf(nil, "b%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "members to apply the new entries", 5*time.Second, func() bool {
		for _, n := range members {
			if len(n.sm.values()) != 60 {
				return false
			}
		}
		return true
	})

	// The history: the first configuration at the log's start, the final
	// one at the end.
	l := lead.group.Log()
	first, err := raftnode.ConfStateAt(l, 1)
	if err != nil {
		t.Fatal(err)
	}
	last, err := raftnode.ConfStateAt(l, l.LastIndex())
	if err != nil {
		t.Fatal(err)
	}
	var cs1, csN raftpb.ConfState
	cs1.Unmarshal(first)
	csN.Unmarshal(last)
	if !slices.Equal(cs1.Voters, []uint64{1, 2, 3}) || !slices.Equal(csN.Voters, want) {
		t.Fatalf("configuration at 1: %v, at %d: %v", cs1.Voters, l.LastIndex(), csN.Voters)
	}

	// Restarted, the new replica keeps its configuration and entries. It
	// restarts from an applied index inside the joint configuration (its
	// hard state is saved lazily): raft applies the change that leaves it
	// again, which must find the configuration of that point, not the
	// final one (raft panics leaving a joint configuration twice).
	ents, err := n4.group.Log().Entries(1, n4.group.Log().LastIndex()+1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var leave uint64
	for _, e := range ents {
		if e.Type == storage.EntryConfChangeV2 {
			leave = e.Index
		}
	}
	n4.stop(h)
	n4 = startNodeApplied(t, h, dir4, 4, []uint64{1, 2, 3}, leave-1)
	waitFor(t, "the restarted replica to apply its entries", 5*time.Second, func() bool { return len(n4.sm.values()) >= 10 })
	if v, _, _ := confOf(t, n4.group); !slices.Equal(v, want) {
		t.Fatalf("restarted replica's voters %v, want %v", v, want)
	}
}

// A leader bounds what it sends to learners (replicas being added): with a
// small budget the learner still gets every entry, and the host counts
// the bytes sent and the appends held back.
func TestLearnerAppendsAreThrottled(t *testing.T) {
	h := memnet.New()
	const budget = 64 << 10
	n1 := startNodeWith(t, h, t.TempDir(), 1, []uint64{1}, 0, raftnode.Config{LearnerBytesPerSec: budget, MaxSizePerMsg: 16 << 10})
	defer n1.stop(h)
	waitFor(t, "node 1 to lead", 5*time.Second, func() bool { return n1.group.Status().Role == raft.StateLeader })
	value := make([]byte, 8<<10)
	for range 40 {
		if err := propose(t, n1.group, value); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "40 entries applied", 5*time.Second, func() bool { return len(n1.sm.values()) == 40 })
	n2 := startNode(t, h, t.TempDir(), 2, []uint64{1})
	defer n2.stop(h)
	proposeConf(t, n1.group, raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 2}}})
	waitFor(t, "the learner to get every entry", 30*time.Second, func() bool { return len(n2.sm.values()) == 40 })
	sent, throttled := n1.host.LearnerStats()
	t.Logf("learner bytes sent %d for %d of entries, appends held back %d", sent, 40*8<<10, throttled)
	if sent < 40*8<<10 || throttled == 0 {
		t.Fatalf("learner bytes sent %d, appends held back %d: 320 KiB over a 64 KiB/s budget must be held back", sent, throttled)
	}
	// What was held back is sent once it fits, not again what was sent.
	if sent > 40*8<<10*3/2 {
		t.Fatalf("learner bytes sent %d for %d of entries: sent again what had gone", sent, 40*8<<10)
	}
}

// A voter removed from a group and added back later starts again with an
// empty log on the group's first configuration, in which it was the only
// voter. It must not elect itself there: it would lead a second history of
// the group. It waits, a restart too, until it holds what the leader has
// committed, and then is the learner the leader added.
func TestRemovedVoterRejoinsWithoutLeadingAlone(t *testing.T) {
	h := memnet.New()
	n1 := startNode(t, h, t.TempDir(), 1, []uint64{1})
	waitFor(t, "node 1 to lead", 5*time.Second, func() bool { return n1.group.Status().Role == raft.StateLeader })
	for i := range 20 {
		if err := propose(t, n1.group, fmt.Appendf(nil, "a%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	n2 := startNode(t, h, t.TempDir(), 2, []uint64{1})
	n3 := startNode(t, h, t.TempDir(), 3, []uint64{1})
	t.Cleanup(func() { n2.stop(h); n3.stop(h) })
	proposeConf(t, n1.group, raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 2}, {Type: raftpb.ConfChangeAddLearnerNode, NodeID: 3},
	}})
	waitFor(t, "the learners to apply every entry", 5*time.Second, func() bool {
		return len(n2.sm.values()) == 20 && len(n3.sm.values()) == 20
	})
	proposeConf(t, n1.group, raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeAddNode, NodeID: 2}, {Type: raftpb.ConfChangeAddNode, NodeID: 3},
	}})
	waitFor(t, "three voters", 5*time.Second, func() bool {
		v, out, _ := confOf(t, n1.group)
		return slices.Equal(v, []uint64{1, 2, 3}) && len(out) == 0
	})
	// A transfer that does not finish within an election timeout (node 2
	// slow to catch up on a loaded machine) is dropped: ask until it leads.
	waitFor(t, "node 2 to lead", 30*time.Second, func() bool {
		if n2.group.Status().Role == raft.StateLeader {
			return true
		}
		n1.group.Do(func(l raftnode.Loop) { l.TransferLeader(2) })
		return false
	})
	proposeConf(t, n2.group, raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeRemoveNode, NodeID: 1}}})
	waitFor(t, "voters 2 and 3", 5*time.Second, func() bool {
		v2, _, _ := confOf(t, n2.group)
		v3, _, _ := confOf(t, n3.group)
		return slices.Equal(v2, []uint64{2, 3}) && slices.Equal(v3, []uint64{2, 3})
	})
	// Removed, node 1 drops its replica and its data.
	n1.stop(h)

	// Added back, while it cannot hear the leader yet.
	h.Cut(1, true)
	dir1 := t.TempDir()
	n1 = startJoining(t, h, dir1, 1, []uint64{1})
	proposeConf(t, n2.group, raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 1}}})
	if ru := n1.group.Log().RepairUntil(); ru != storage.CatchUpUnknown {
		t.Fatalf("repair record %d, want the catch-up mark", ru)
	}
	neverLeads := func(d time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if n1.group.Status().Role != raft.StateFollower {
				t.Fatalf("the rejoining replica became %v of the group's first configuration", n1.group.Status().Role)
			}
		}
	}
	// Ten election timeouts, then as many after a restart.
	neverLeads(time.Second)
	n1.stop(h)
	n1 = startNode(t, h, dir1, 1, []uint64{1})
	defer func() { n1.stop(h) }()
	neverLeads(time.Second)

	h.Cut(1, false)
	waitFor(t, "the rejoined replica to catch up", 10*time.Second, func() bool {
		return len(n1.sm.values()) == 20 && n1.group.Log().RepairUntil() == 0
	})
	if _, _, l := confOf(t, n1.group); !slices.Equal(l, []uint64{1}) {
		t.Fatalf("learners on the rejoined replica: %v", l)
	}
	if err := propose(t, n2.group, []byte("b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rejoined replica to apply the new entry", 5*time.Second, func() bool { return len(n1.sm.values()) == 21 })
	want := n2.sm.values()
	for i, v := range n1.sm.values() {
		if !bytes.Equal(v, want[i]) {
			t.Fatalf("entry %d on the rejoined replica %q, leader has %q", i, v, want[i])
		}
	}
	if n2.group.Status().Role != raft.StateLeader {
		t.Fatalf("node 2 lost the lead: %v", n2.group.Status().Role)
	}
}

// startJoining starts a node whose group joins a running group that has
// changed since peers, its first voters.
func startJoining(t *testing.T, h *memnet.Hub, dir string, id uint64, peers []uint64) *testNode {
	t.Helper()
	return startGroup(t, h, dir, id, raftnode.Config{}, raftnode.GroupConfig{Peers: peers, CatchUp: true})
}
