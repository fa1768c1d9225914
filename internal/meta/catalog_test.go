package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/raftnode/memnet"
	"github.com/chronik-stream/chronik/internal/storage"
)

type catalogNode struct {
	id      uint64
	dir     string
	store   *storage.Store
	host    *raftnode.Host
	catalog *Catalog
}

var testPolicy = SnapshotPolicy{MaxLogBytes: 2 << 10, MinEntries: 20, Compression: "zstd"}

// testOptions snapshot by testPolicy and roll small segments, so that
// compaction drops some.
var testOptions = catalogOptions{policy: testPolicy, segmentBytes: 4 << 10}

func startCatalog(t *testing.T, hub *memnet.Hub, dir string, id uint64, voters []uint64) *catalogNode {
	t.Helper()
	return openCatalog(t, hub, dir, id, voters, testOptions)
}

type catalogOptions struct {
	// join starts the catalog as a member being added to a running group
	// (no configuration until a snapshot names it).
	join         bool
	policy       SnapshotPolicy
	segmentBytes int64
}

// openCatalog starts node id's catalog.
func openCatalog(t *testing.T, hub *memnet.Hub, dir string, id uint64, voters []uint64, opts catalogOptions) *catalogNode {
	t.Helper()
	st, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var tr raftnode.Transport
	if hub != nil {
		tr = hub.Transport(id)
	}
	host := raftnode.NewHost(raftnode.Config{NodeID: id, TickInterval: 10 * time.Millisecond, ElectionTicks: 10}, tr)
	if hub != nil {
		hub.Attach(id, host)
	}
	cfg := storage.DefaultLogConfig()
	cfg.SegmentBytes = opts.segmentBytes
	l, err := st.OpenLog(storage.InternalLog("catalog"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(host, l, voters, nil, opts.join, nil, opts.policy, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &catalogNode{id: id, dir: dir, store: st, host: host, catalog: c}
}

func (n *catalogNode) stop(hub *memnet.Hub) {
	if hub != nil {
		hub.Detach(n.id)
	}
	n.host.Stop()
	n.store.Close()
}

// createTopics creates topic-from .. topic-(to-1) through whichever of the
// nodes leads the catalog, following leadership if it moves.
func createTopics(t *testing.T, nodes []*catalogNode, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := from; i < to; i++ {
		name := fmt.Sprintf("topic-%03d", i)
		for {
			var lead *Catalog
			for _, n := range nodes {
				if n.catalog.IsLeader() {
					lead = n.catalog
				}
			}
			if lead == nil {
				if ctx.Err() != nil {
					t.Fatalf("no catalog leader to create %s", name)
				}
				time.Sleep(5 * time.Millisecond)
				continue
			}
			_, err := lead.CreateTopic(ctx, name, [][]int32{{1}}, map[string]string{"retention.ms": "1000"}, false)
			if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
				break
			}
			if !errors.Is(err, ErrNotController) || ctx.Err() != nil {
				t.Fatalf("create %s: %v", name, err)
			}
		}
	}
}

func waitCatalog(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCatalogSnapshotsAndCompacts: the catalog snapshots its state when
// [raft.snapshots] says so and drops the log entries the snapshot holds;
// a restart starts from the snapshot and replays only the tail.
func TestCatalogSnapshotsAndCompacts(t *testing.T) {
	dir := t.TempDir()
	n := startCatalog(t, nil, dir, 1, []uint64{1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.catalog.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	createTopics(t, []*catalogNode{n}, 0, 200)
	count, size := n.catalog.SnapshotStats()
	if count == 0 || size == 0 {
		t.Fatalf("no snapshot after 200 changes: count %d, size %d", count, size)
	}
	log := n.catalog.Group().Log()
	if log.FirstIndex() <= 1 {
		t.Fatalf("the log still starts at index %d: nothing was compacted", log.FirstIndex())
	}
	first := log.FirstIndex()
	n.stop(nil)

	n = startCatalog(t, nil, dir, 1, nil)
	defer n.stop(nil)
	if err := n.catalog.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(n.catalog.Topics()); got != 200 {
		t.Fatalf("after a restart from the snapshot (log from index %d) the catalog has %d topics, want 200", first, got)
	}
	if tp := n.catalog.Topic("topic-123"); tp == nil || tp.Configs["retention.ms"] != "1000" {
		t.Fatalf("topic-123 after restart: %+v", tp)
	}
	createTopics(t, []*catalogNode{n}, 200, 210)
	if got := len(n.catalog.Topics()); got != 210 {
		t.Fatalf("%d topics, want 210", got)
	}
}

// moveLeadership asks the leading catalog to hand leadership to another
// until that one leads (raft drops a transfer not done within an election
// timeout).
func moveLeadership(t *testing.T, from, to *catalogNode) {
	t.Helper()
	waitCatalog(t, fmt.Sprintf("node %d to lead", to.id), func() bool {
		from.catalog.Group().Do(func(l raftnode.Loop) { l.TransferLeader(to.id) })
		return to.catalog.IsLeader()
	})
}

// startCatalogs starts three catalogs on hub, stopped when the test ends,
// and returns them with the one that leads.
func startCatalogs(t *testing.T, hub *memnet.Hub, opts catalogOptions) ([]*catalogNode, *catalogNode) {
	t.Helper()
	voters := []uint64{1, 2, 3}
	nodes := make([]*catalogNode, 3)
	for i := range nodes {
		nodes[i] = openCatalog(t, hub, t.TempDir(), uint64(i+1), voters, opts)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(hub)
		}
	})
	var lead *catalogNode
	waitCatalog(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.catalog.IsLeader() {
				lead = n
				return true
			}
		}
		return false
	})
	return nodes, lead
}

// TestCatalogFollowerInstallsSnapshot: a follower away while the leader
// compacted its log catches up by installing the leader's snapshot.
func TestCatalogFollowerInstallsSnapshot(t *testing.T) {
	hub := memnet.New()
	nodes, lead := startCatalogs(t, hub, testOptions)
	away := nodes[int(lead.id)%3]
	var snapSent atomic.Bool
	hub.Drop(func(e raftnode.Envelope) bool {
		if e.Msg.Type == raftpb.MsgSnap && e.Msg.To == away.id {
			snapSent.Store(true)
		}
		return false
	})
	hub.Cut(away.id, true)
	createTopics(t, nodes, 0, 150)
	compacted := false
	for _, n := range nodes {
		compacted = compacted || n != away && n.catalog.Group().Log().FirstIndex() > 1
	}
	if !compacted {
		t.Fatal("no connected node compacted its log")
	}
	hub.Cut(away.id, false)
	waitCatalog(t, "the follower to hold all 150 topics", func() bool { return len(away.catalog.Topics()) == 150 })
	if !snapSent.Load() {
		t.Fatal("the follower caught up without being sent a snapshot")
	}
	createTopics(t, nodes, 150, 155)
	waitCatalog(t, "the follower to follow on after the snapshot", func() bool { return len(away.catalog.Topics()) == 155 })
}

// TestProposalOutlivesLeaderStepDown: a change proposed on a leader that
// steps down before committing it, but whose entry reached the followers,
// is committed by the next leader; the caller is told it took effect, not
// told to retry a change that then happens anyway (a client retrying a
// topic create would be refused: the topic already exists).
func TestProposalOutlivesLeaderStepDown(t *testing.T) {
	hub := memnet.New()
	nodes, lead := startCatalogs(t, hub, testOptions)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := lead.catalog.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var followers []*catalogNode
	for _, n := range nodes {
		if n != lead {
			followers = append(followers, n)
		}
	}
	// Both followers replicate steadily (a follower still probed would
	// wait for the answers dropped below).
	waitCatalog(t, "both followers to be replicated to", func() bool {
		prs, err := raftnode.Query(ctx, lead.catalog.Group(), func(l raftnode.Loop) map[uint64]tracker.Progress {
			out := map[uint64]tracker.Progress{}
			for id, pr := range l.RaftStatus().Progress {
				out[id] = pr
			}
			return out
		})
		if err != nil {
			return false
		}
		last := lead.catalog.Group().Log().LastIndex()
		for _, f := range followers {
			if pr := prs[f.id]; pr.State != tracker.StateReplicate || pr.Match < last {
				return false
			}
		}
		return true
	})
	// The followers get the entry, but the leader never hears they did,
	// so it cannot commit it.
	hub.Drop(func(e raftnode.Envelope) bool { return e.Msg.To == lead.id && e.Msg.Type == raftpb.MsgAppResp })
	before := lead.catalog.Group().Log().LastIndex()
	result := make(chan error, 1)
	go func() {
		_, err := lead.catalog.CreateTopic(ctx, "survivor", [][]int32{{1, 2, 3}}, nil, false)
		result <- err
	}()
	waitCatalog(t, "the followers to hold the proposed entry", func() bool {
		select {
		case err := <-result:
			t.Fatalf("the create returned before its entry reached the followers: %v", err)
		default:
		}
		for _, f := range followers {
			if f.catalog.Group().Log().LastIndex() <= before {
				return false
			}
		}
		return true
	})
	// Cut off, the leader steps down (check-quorum); the followers elect
	// one of them, which commits the entry.
	hub.Cut(lead.id, true)
	waitCatalog(t, "a follower to apply the topic", func() bool {
		return followers[0].catalog.Topic("survivor") != nil || followers[1].catalog.Topic("survivor") != nil
	})
	hub.Drop(nil)
	hub.Cut(lead.id, false)
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("the create was committed by the next leader, but its caller got %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the create's caller was never answered")
	}
	if lead.catalog.Topic("survivor") == nil {
		t.Fatal("the former leader answered before applying the topic")
	}
}

// TestMemberAddedWhileChangesAreInFlightIsSentASnapshot: a member added to
// the metadata group takes the log only from a snapshot, which raft sends
// once the leader's log no longer starts at its first entry. With changes
// appended beyond the applied index when the leader snapshots, the
// segment sealed for the snapshot holds entries the snapshot does not,
// and compaction cannot drop it: the leader must try again once they are
// applied, or the new member waits for good.
func TestMemberAddedWhileChangesAreInFlightIsSentASnapshot(t *testing.T) {
	hub := memnet.New()
	// No snapshots of the policy's own and segments of the default size:
	// only the new member makes the leader compact.
	opts := catalogOptions{segmentBytes: storage.DefaultLogConfig().SegmentBytes}
	_, lead := startCatalogs(t, hub, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	busyCtx, stopBusy := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopBusy()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; busyCtx.Err() == nil; i++ {
				lead.catalog.CreateTopic(busyCtx, fmt.Sprintf("busy-%d-%d", w, i), [][]int32{{1}}, nil, false)
			}
		}()
	}
	waitCatalog(t, "changes to flow", func() bool { return len(lead.catalog.Topics()) >= 2 })
	if err := lead.catalog.AddMember(ctx, 4); err != nil {
		t.Fatalf("add member 4: %v", err)
	}
	opts.join = true
	joiner := openCatalog(t, hub, t.TempDir(), 4, nil, opts)
	defer joiner.stop(hub)
	waitCatalog(t, "the new member to install a snapshot", func() bool { return len(joiner.catalog.Topics()) > 0 })
	stopBusy()
	wg.Wait()
	// Changes whose callers gave up may still be applied: compare with
	// the leader as it stands.
	waitCatalog(t, "the new member to hold every topic", func() bool {
		return len(joiner.catalog.Topics()) == len(lead.catalog.Topics())
	})
}

// TestMemberAddedBeforeALeaderChangeIsSentASnapshot: each node snapshots
// and compacts its own log, so a leader elected after a member was added
// may hold its log from the first entry still, or only a snapshot from
// before the member was added (which the member ignores: it does not name
// it). That leader must snapshot for the new member too, or the member
// waits for good.
func TestMemberAddedBeforeALeaderChangeIsSentASnapshot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy SnapshotPolicy
		topics int
	}{
		{"log never compacted", SnapshotPolicy{}, 5},
		{"snapshot older than the member", testPolicy, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := memnet.New()
			opts := catalogOptions{policy: tc.policy, segmentBytes: 4 << 10}
			nodes, lead := startCatalogs(t, hub, opts)
			createTopics(t, nodes, 0, tc.topics)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := lead.catalog.AddMember(ctx, 4); err != nil {
				t.Fatalf("add member 4: %v", err)
			}
			moveLeadership(t, lead, nodes[int(lead.id)%3])
			opts.join = true
			joiner := openCatalog(t, hub, t.TempDir(), 4, nil, opts)
			defer joiner.stop(hub)
			waitCatalog(t, "the new member to hold every topic", func() bool { return len(joiner.catalog.Topics()) == tc.topics })
		})
	}
}

// TestInstalledSnapshotIsSentOn: a node that installed the leader's
// snapshot and then leads sends that snapshot on to a member behind its
// log's start. (The configuration it was saved with is in the log's own
// format, which a snapshot sent from it must decode.)
func TestInstalledSnapshotIsSentOn(t *testing.T) {
	hub := memnet.New()
	opts := testOptions
	nodes, lead := startCatalogs(t, hub, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	createTopics(t, nodes, 0, 5)
	if err := lead.catalog.AddMember(ctx, 4); err != nil {
		t.Fatalf("add member 4: %v", err)
	}
	joinOpts := opts
	joinOpts.join = true
	behind := openCatalog(t, hub, t.TempDir(), 4, nil, joinOpts)
	defer behind.stop(hub)
	waitCatalog(t, "member 4 to hold the first topics", func() bool { return len(behind.catalog.Topics()) == 5 })

	// Member 4 and a voter miss enough changes that the others compact
	// past them; the voter then installs the leader's snapshot and leads.
	away := nodes[int(lead.id)%3]
	hub.Cut(behind.id, true)
	hub.Cut(away.id, true)
	createTopics(t, nodes, 5, 100)
	hub.Cut(away.id, false)
	waitCatalog(t, "the cut-off voter to install the leader's snapshot", func() bool { return len(away.catalog.Topics()) == 100 })
	if first := away.catalog.Group().Log().FirstIndex(); first <= behind.catalog.Group().Log().LastIndex() {
		t.Fatalf("the voter's log starts at %d, not past member 4's end (%d): the test needs it to send a snapshot", first, behind.catalog.Group().Log().LastIndex())
	}
	moveLeadership(t, lead, away)
	hub.Cut(behind.id, false)
	waitCatalog(t, "member 4 to hold every topic", func() bool {
		if err := away.catalog.Group().Status().Failed; err != nil {
			t.Fatalf("the leader's metadata group failed: %v", err)
		}
		return len(behind.catalog.Topics()) == 100
	})
}

// TestVoterThatJoinsLaterIsSentASnapshot: a cluster formed by two of its
// three configured voters; the third starts later, finds the cluster
// formed and joins it with no configuration of its own, although the
// group names it a voter already. It too takes the log only from a
// snapshot.
func TestVoterThatJoinsLaterIsSentASnapshot(t *testing.T) {
	hub := memnet.New()
	opts := catalogOptions{policy: testPolicy, segmentBytes: storage.DefaultLogConfig().SegmentBytes}
	voters := []uint64{1, 2, 3}
	var nodes []*catalogNode
	for id := uint64(1); id <= 2; id++ {
		n := openCatalog(t, hub, t.TempDir(), id, voters, opts)
		defer n.stop(hub)
		nodes = append(nodes, n)
	}
	createTopics(t, nodes, 0, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range nodes {
		if n.catalog.IsLeader() {
			// As the node it asks to join does.
			if err := n.catalog.AddMember(ctx, 3); err != nil {
				t.Fatalf("add member 3: %v", err)
			}
		}
	}
	opts.join = true
	late := openCatalog(t, hub, t.TempDir(), 3, nil, opts)
	defer late.stop(hub)
	waitCatalog(t, "the late voter to hold every topic", func() bool { return len(late.catalog.Topics()) == 5 })
}

// TestRemovedEmptyMemberNeedsNoMoreSnapshots: a member removed while its
// log was still empty is no reason to snapshot any more; once a snapshot
// no longer names it, each change applied would otherwise snapshot the
// catalog again.
func TestRemovedEmptyMemberNeedsNoMoreSnapshots(t *testing.T) {
	hub := memnet.New()
	opts := testOptions
	nodes, lead := startCatalogs(t, hub, opts)
	createTopics(t, nodes, 0, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The new member never gets its snapshot: its log stays empty.
	hub.Drop(func(e raftnode.Envelope) bool { return e.Msg.To == 4 && e.Msg.Type == raftpb.MsgSnap })
	if err := lead.catalog.AddMember(ctx, 4); err != nil {
		t.Fatalf("add member 4: %v", err)
	}
	opts.join = true
	joiner := openCatalog(t, hub, t.TempDir(), 4, nil, opts)
	defer joiner.stop(hub)
	waitCatalog(t, "the new member to say its log is empty, and the leader to snapshot for it", func() bool {
		done, err := raftnode.Query(ctx, lead.catalog.Group(), func(l raftnode.Loop) bool {
			return slices.Contains(l.EmptyLogs(), 4) && slices.Contains(lead.catalog.snapMembers, 4)
		})
		return err == nil && done
	})
	if err := lead.catalog.RemoveMember(ctx, 4); err != nil {
		t.Fatalf("remove member 4: %v", err)
	}
	// The policy snapshots about every 20 changes (and drops member 4
	// from the snapshot's configuration).
	before, _ := lead.catalog.SnapshotStats()
	createTopics(t, nodes, 3, 83)
	if after, _ := lead.catalog.SnapshotStats(); after > before+6 {
		t.Fatalf("%d snapshots taken over 80 changes after the empty member was removed", after-before)
	}
}
