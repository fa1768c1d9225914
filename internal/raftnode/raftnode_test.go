package raftnode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"

	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/raftnode/memnet"
	"github.com/chronik-stream/chronik/internal/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a state machine that keeps what it applied.
type recorder struct {
	mu      sync.Mutex
	applied [][]byte
	lead    uint64
	failed  error
	stopped bool
}

func (r *recorder) Appended([]raftpb.Entry)  {}
func (r *recorder) Persisted(uint64, uint64) {}
func (r *recorder) Failed(err error) {
	r.mu.Lock()
	r.failed = err
	r.mu.Unlock()
}
func (r *recorder) Stopped() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}
func (r *recorder) Apply(ents []raftpb.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range ents {
		if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
			r.applied = append(r.applied, e.Data)
		}
	}
}
func (r *recorder) RoleChanged(ss raft.SoftState, term uint64) {
	r.mu.Lock()
	r.lead = ss.Lead
	r.mu.Unlock()
}
func (r *recorder) values() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.applied...)
}

type testNode struct {
	id    uint64
	store *storage.Store
	host  *raftnode.Host
	group *raftnode.Group
	sm    *recorder
}

func startNode(t *testing.T, h *memnet.Hub, dir string, id uint64, peers []uint64) *testNode {
	t.Helper()
	return startNodeApplied(t, h, dir, id, peers, 0)
}

// startNodeApplied starts a node whose state machine holds the entries up
// to applied: raft applies those after it again.
func startNodeApplied(t *testing.T, h *memnet.Hub, dir string, id uint64, peers []uint64, applied uint64) *testNode {
	t.Helper()
	return startNodeWith(t, h, dir, id, peers, applied, raftnode.Config{})
}

// startNodeWith starts a node whose host has cfg (its node id and ticks
// set here).
func startNodeWith(t *testing.T, h *memnet.Hub, dir string, id uint64, peers []uint64, applied uint64, cfg raftnode.Config) *testNode {
	t.Helper()
	return startGroup(t, h, dir, id, cfg, raftnode.GroupConfig{Peers: peers, Applied: applied})
}

// startGroup starts a node hosting group 1 as gc says (its log and state
// machine set here).
func startGroup(t *testing.T, h *memnet.Hub, dir string, id uint64, cfg raftnode.Config, gc raftnode.GroupConfig) *testNode {
	t.Helper()
	st, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.NodeID, cfg.TickInterval, cfg.ElectionTicks = id, 10*time.Millisecond, 10
	host := raftnode.NewHost(cfg, h.Transport(id))
	h.Attach(id, host)
	l, err := st.OpenLog(storage.InternalLog("g-1"), storage.DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	sm := &recorder{}
	gc.ID, gc.Log, gc.SM = 1, l, sm
	g, err := host.AddGroup(gc)
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{id: id, store: st, host: host, group: g, sm: sm}
}

func (n *testNode) stop(h *memnet.Hub) {
	h.Detach(n.id)
	n.host.Stop()
	n.store.Close()
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func propose(t *testing.T, g *raftnode.Group, data []byte) error {
	t.Helper()
	ch := make(chan error, 1)
	if !g.Do(func(l raftnode.Loop) { ch <- l.Propose(data) }) {
		return raftnode.ErrStopped
	}
	return <-ch
}

func leaderOf(nodes []*testNode) *testNode {
	for _, n := range nodes {
		if n != nil && n.group.Status().Role == raft.StateLeader {
			return n
		}
	}
	return nil
}

func TestSingleVoterCommitsAndRestarts(t *testing.T) {
	h := memnet.New()
	dir := t.TempDir()
	n := startNode(t, h, dir, 1, []uint64{1})
	waitFor(t, "leader", 5*time.Second, func() bool { return n.group.Status().Role == raft.StateLeader })
	for i := range 20 {
		if err := propose(t, n.group, fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "20 applied", 5*time.Second, func() bool { return len(n.sm.values()) == 20 })
	n.stop(h)

	// Restarted with Applied 0, raft hands back every committed entry.
	n = startNode(t, h, dir, 1, nil)
	defer n.stop(h)
	waitFor(t, "replay", 5*time.Second, func() bool { return len(n.sm.values()) == 20 })
	if got := n.sm.values(); !bytes.Equal(got[19], []byte("v19")) {
		t.Fatalf("replayed %q", got[19])
	}
}

// startThree starts a three-node group on h, elects a leader and has
// every node apply 50 entries. The nodes stop when the test ends.
func startThree(t *testing.T, h *memnet.Hub) (nodes []*testNode, dirs []string, lead *testNode) {
	t.Helper()
	peers := []uint64{1, 2, 3}
	dirs = []string{t.TempDir(), t.TempDir(), t.TempDir()}
	nodes = make([]*testNode, 3)
	for i := range nodes {
		nodes[i] = startNode(t, h, dirs[i], peers[i], peers)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(h)
		}
	})
	waitFor(t, "a leader", 5*time.Second, func() bool { lead = leaderOf(nodes); return lead != nil })
	for i := range 50 {
		if err := propose(t, lead.group, fmt.Appendf(nil, "a%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all nodes apply 50", 5*time.Second, func() bool {
		for _, n := range nodes {
			if len(n.sm.values()) != 50 {
				return false
			}
		}
		return true
	})
	return nodes, dirs, lead
}

func TestThreeNodesReplicateAndFailOver(t *testing.T) {
	h := memnet.New()
	nodes, _, lead := startThree(t, h)
	// Cut the leader off: the others elect a new one and go on.
	h.Cut(lead.id, true)
	old := lead
	waitFor(t, "a new leader", 5*time.Second, func() bool {
		for _, n := range nodes {
			if n != old && n.group.Status().Role == raft.StateLeader {
				lead = n
				return true
			}
		}
		return false
	})
	for i := range 50 {
		if err := propose(t, lead.group, fmt.Appendf(nil, "b%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	h.Cut(old.id, false)
	waitFor(t, "all nodes apply 100, the old leader too", 10*time.Second, func() bool {
		for _, n := range nodes {
			if len(n.sm.values()) != 100 {
				return false
			}
		}
		return true
	})
	want := nodes[0].sm.values()
	for _, n := range nodes[1:] {
		for i, v := range n.sm.values() {
			if !bytes.Equal(v, want[i]) {
				t.Fatalf("node %d entry %d = %q, node 1 has %q", n.id, i, v, want[i])
			}
		}
	}
	if old.group.Status().Role == raft.StateLeader {
		t.Fatal("the old leader did not step down")
	}
}

// TestRepairingReplicaWithholdsItsVote: a follower whose log lost committed
// entries (storage.Log.DiscardFrom, as after damage) must not help elect a
// leader until it holds them again. With the leader cut off, the repairing
// follower and the third node stay leaderless; once the old leader is back
// the group elects one of the two complete replicas, refills the repairing
// one, and its repair ends.
func TestRepairingReplicaWithholdsItsVote(t *testing.T) {
	h := memnet.New()
	nodes, dirs, lead := startThree(t, h)
	fi := int(lead.id) % 3 // a follower's position in nodes
	f := nodes[fi]
	last := f.group.Log().LastIndex()
	f.stop(h)
	st, err := storage.Open(dirs[fi], storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.OpenLog(storage.InternalLog("g-1"), storage.DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DiscardFrom(10); err != nil {
		t.Fatal(err)
	}
	st.Close()

	h.Cut(lead.id, true)
	nodes[fi] = startNode(t, h, dirs[fi], f.id, nil)
	f = nodes[fi]
	if ru := f.group.Log().RepairUntil(); ru != last {
		t.Fatalf("repair until %d, want %d", ru, last)
	}
	// Twenty election timeouts: the third node keeps campaigning, and
	// without the repairing node's vote it can never win.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n != lead && n.group.Status().Role == raft.StateLeader {
				t.Fatalf("node %d was elected with the vote of a replica that lost committed entries", n.id)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}

	h.Cut(lead.id, false)
	var nl *testNode
	waitFor(t, "a leader after the heal", 10*time.Second, func() bool { nl = leaderOf(nodes); return nl != nil })
	if nl == f {
		t.Fatal("the repairing replica became leader")
	}
	if err := propose(t, nl.group, []byte("b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the repaired replica and the leader to apply all 51", 10*time.Second, func() bool {
		return len(f.sm.values()) == 51 && f.group.Log().RepairUntil() == 0 && len(nl.sm.values()) == 51
	})
	want := nl.sm.values()
	for i, v := range f.sm.values() {
		if !bytes.Equal(v, want[i]) {
			t.Fatalf("repaired entry %d = %q, leader has %q", i, v, want[i])
		}
	}
}

// cached is the number of entries g keeps in memory, read on its worker.
func cached(t *testing.T, g *raftnode.Group) int {
	t.Helper()
	n, err := raftnode.CachedEntries(g)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCachedEntriesAreReleased: the leader keeps entries in memory while a
// follower still needs them, and every node lets them go once they are
// applied everywhere, so an idle group holds no entry data.
func TestCachedEntriesAreReleased(t *testing.T) {
	h := memnet.New()
	nodes, _, lead := startThree(t, h)
	var cut *testNode
	for _, n := range nodes {
		if n != lead {
			cut = n
			break
		}
	}
	h.Cut(cut.id, true)
	for i := range 20 {
		if err := propose(t, lead.group, fmt.Appendf(nil, "c%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the connected nodes apply 70", 5*time.Second, func() bool {
		for _, n := range nodes {
			if n != cut && len(n.sm.values()) != 70 {
				return false
			}
		}
		return true
	})
	if n := cached(t, lead.group); n < 20 {
		t.Fatalf("leader keeps %d entries while a follower lacks 20", n)
	}
	h.Cut(cut.id, false)
	waitFor(t, "every node applies 70 and keeps no entry", 10*time.Second, func() bool {
		for _, n := range nodes {
			if len(n.sm.values()) != 70 || cached(t, n.group) != 0 {
				return false
			}
		}
		return true
	})
}

// TestFailedLeaderHandsOver: a leader whose log stops working fails its
// group: it reports the failure, stops leading (handing over to a
// follower, which the others elect), still runs closures so no caller
// waits for it in vain, and tells its state machine when it is removed.
func TestFailedLeaderHandsOver(t *testing.T) {
	h := memnet.New()
	nodes, _, lead := startThree(t, h)
	lead.group.Log().Close() // every later append fails
	if err := propose(t, lead.group, []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the leader's group to fail", 5*time.Second, func() bool { return lead.group.Status().Failed != nil })
	if st := lead.group.Status(); st.Role == raft.StateLeader || st.Lead != 0 {
		t.Fatalf("failed group reports role %v, leader %d", st.Role, st.Lead)
	}
	lead.sm.mu.Lock()
	failed := lead.sm.failed
	lead.sm.mu.Unlock()
	if failed == nil {
		t.Fatal("the state machine was not told")
	}
	var next *testNode
	waitFor(t, "another leader", 5*time.Second, func() bool {
		for _, n := range nodes {
			if n != lead && n.group.Status().Role == raft.StateLeader {
				next = n
				return true
			}
		}
		return false
	})
	if err := propose(t, next.group, []byte("y")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := raftnode.Query(ctx, lead.group, func(l raftnode.Loop) raft.BasicStatus { return l.BasicStatus() }); err != nil {
		t.Fatalf("query on a failed group: %v", err)
	}
	lead.host.RemoveGroup(lead.group.ID())
	lead.sm.mu.Lock()
	stopped := lead.sm.stopped
	lead.sm.mu.Unlock()
	if !stopped {
		t.Fatal("the state machine was not told the group stopped")
	}
	if _, err := raftnode.Query(ctx, lead.group, func(l raftnode.Loop) int { return 0 }); !errors.Is(err, raftnode.ErrStopped) {
		t.Fatalf("query on a removed group: %v", err)
	}
}

// TestDamageReadByRaftFailsTheGroup: raft panics on a storage error it
// meets while reading entries (to send them to a follower). The worker
// recovers it and fails the group; the process goes on.
func TestDamageReadByRaftFailsTheGroup(t *testing.T) {
	h := memnet.New()
	nodes, dirs, lead := startThree(t, h)
	var behind *testNode
	for _, n := range nodes {
		if n != lead {
			behind = n
			break
		}
	}
	h.Cut(behind.id, true)
	// More than the leader keeps in memory, so catching up reads the log.
	big := bytes.Repeat([]byte("z"), 256<<10)
	for range 24 {
		if err := propose(t, lead.group, big); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the connected nodes apply 74", 10*time.Second, func() bool {
		for _, n := range nodes {
			if n != behind && len(n.sm.values()) != 74 {
				return false
			}
		}
		return true
	})
	// Damage one of the entries the follower lacks, in the leader's log.
	segs, _ := filepath.Glob(filepath.Join(dirs[lead.id-1], "internal", "g-1", "*.log"))
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if _, err := f.WriteAt([]byte("DAMAGE"), fi.Size()-(23<<18)); err != nil { // in the follower's next entry, no longer cached
		t.Fatal(err)
	}
	f.Close()
	h.Cut(behind.id, false)
	waitFor(t, "the leader's group to fail on the damage", 10*time.Second, func() bool {
		err := lead.group.Status().Failed
		var ce *storage.CorruptionError
		return errors.As(err, &ce)
	})
}

// TestEntryCacheIsBoundedNodeWide: the groups of a node together keep no
// more entries in memory than the node's bound, however many there are.
// Here four leaders each hold 2 MiB that their learners (on nodes that do
// not exist) have not taken, against a bound of 3 MiB.
func TestEntryCacheIsBoundedNodeWide(t *testing.T) {
	const bound = 3 << 20
	st, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	host := raftnode.NewHost(raftnode.Config{NodeID: 1, TickInterval: 10 * time.Millisecond, EntryCacheBytes: bound}, nil)
	defer host.Stop()
	var groups []*raftnode.Group
	for i := range 4 {
		l, err := st.OpenLog(storage.InternalLog(fmt.Sprintf("g-%d", i)), storage.DefaultLogConfig())
		if err != nil {
			t.Fatal(err)
		}
		g, err := host.AddGroup(raftnode.GroupConfig{ID: raftnode.GroupID(i + 1), Log: l, SM: &recorder{}, Peers: []uint64{1}, Learners: []uint64{2, 3}, CampaignNow: true})
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
	}
	for _, g := range groups {
		waitFor(t, "leader", 5*time.Second, func() bool { return g.Status().Role == raft.StateLeader })
	}
	big := bytes.Repeat([]byte("b"), 256<<10)
	peak := int64(0)
	for range 8 {
		for _, g := range groups {
			if err := propose(t, g, big); err != nil {
				t.Fatal(err)
			}
			peak = max(peak, host.CachedBytes())
		}
	}
	waitFor(t, "every entry applied", 5*time.Second, func() bool {
		for _, g := range groups {
			if g.Status().Applied < 9 {
				return false
			}
		}
		return true
	})
	peak = max(peak, host.CachedBytes())
	if peak > bound+int64(len(big)) {
		t.Fatalf("the groups kept %d bytes of entries, the node's bound is %d", peak, bound)
	}
	if peak < bound/2 {
		t.Fatalf("the groups kept only %d bytes: the learners' entries were not held at all, so the bound was not exercised", peak)
	}
	for _, g := range groups {
		host.RemoveGroup(g.ID())
	}
	if n := host.CachedBytes(); n != 0 {
		t.Fatalf("%d bytes still counted after every group was removed", n)
	}
}

// TestStallDoesNotCostTheLeader: every node's group is held up (as by a
// stopped process or an overloaded machine) for ten election timeouts,
// then runs again. The time it could not act is not time its peers were
// silent: the ticks that piled up count as one, and the leader keeps its
// leadership and term. Processing every piled-up tick at once made the
// leader's check-quorum find no follower active, and it stepped down.
func TestStallDoesNotCostTheLeader(t *testing.T) {
	h := memnet.New()
	nodes, _, lead := startThree(t, h)
	term := lead.group.Status().Term
	release := make(chan struct{})
	for _, n := range nodes {
		n.group.Do(func(raftnode.Loop) { <-release })
	}
	time.Sleep(time.Second) // the stall itself: ten election timeouts of 100 ms
	close(release)
	if err := propose(t, lead.group, []byte("after")); err != nil {
		t.Fatalf("the leader no longer leads after the stall: %v", err)
	}
	waitFor(t, "every node to apply the entry proposed after the stall", 5*time.Second, func() bool {
		for _, n := range nodes {
			if len(n.sm.values()) != 51 {
				return false
			}
		}
		return true
	})
	if st := lead.group.Status(); st.Role != raft.StateLeader || st.Term != term {
		t.Fatalf("after the stall node %d is %v at term %d, was leader at term %d", lead.id, st.Role, st.Term, term)
	}
}
