package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/transport"
)

// proposeMethod is the RPC that carries a catalog command to the metadata
// leader.
const proposeMethod = "meta.propose"

// members returns the ids of the cluster's nodes, sorted (just this node
// when it runs alone): those configured, and, once the catalog is open,
// those it records (nodes that joined later).
func (n *Node) members() []uint64 {
	if !n.cfg.Cluster.Enabled || len(n.cfg.Cluster.Peers.Nodes) == 0 {
		return []uint64{n.cfg.NodeID}
	}
	var ids []uint64
	for _, p := range n.cfg.Cluster.Peers.Nodes {
		ids = append(ids, p.ID)
	}
	if c := n.catalogRef.Load(); c != nil {
		for _, b := range c.Brokers() {
			if !slices.Contains(ids, uint64(b.ID)) {
				ids = append(ids, uint64(b.ID))
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// metadataMembers picks the metadata group's voters: five nodes in a
// cluster of five or more, three in one of three or four, else all; the
// others follow as learners, so the catalog's quorum stays small however
// large the cluster grows.
func metadataMembers(ids []uint64) (voters, learners []uint64) {
	v := len(ids)
	switch {
	case v >= 5:
		v = 5
	case v >= 3:
		v = 3
	}
	return slices.Clone(ids[:v]), slices.Clone(ids[v:])
}

// waitForCatalog waits until this node can serve the catalog, saying while
// it waits how many members it can reach.
func (n *Node) waitForCatalog(ctx context.Context, voters []uint64) error {
	// Members that joined after this node was configured are reached at
	// the addresses its catalog (as on its disk) records.
	n.syncPeers()
	done := make(chan error, 1)
	go func() { done <- n.catalog.Sync(ctx) }()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.fatal:
			return n.fatalErr
		case err := <-done:
			if err == nil && n.transport != nil {
				n.logger.Info("joined the cluster", "metadata_leader", n.catalog.Group().Status().Lead, "members", len(n.members()))
			}
			return err
		case <-t.C:
			if n.transport == nil {
				continue
			}
			n.syncPeers()
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			if v, _, err := n.catalog.Members(qctx); err == nil && len(v) > 0 {
				voters = v
			}
			cancel()
			up := 1
			for id, ok := range n.transport.Connected() {
				if ok && slices.Contains(voters, id) {
					up++
				}
			}
			msg := fmt.Sprintf("waiting for quorum (%d/%d nodes)", up, len(voters))
			n.setPhase(msg)
			n.logger.Info(msg, "reachable", up, "voters", len(voters), "needed", len(voters)/2+1)
		}
	}
}

// registerBrokers records this node's advertised address in the catalog,
// and the configured address of every peer not registered yet, so that
// replicas can be placed on members that have not started (they catch up).
func (n *Node) registerBrokers(ctx context.Context, self meta.Broker) error {
	if err := n.catalog.RegisterBroker(ctx, self); err != nil {
		return fmt.Errorf("register this broker in the catalog: %w", err)
	}
	if !n.cfg.Cluster.Enabled {
		return nil
	}
	known := map[int32]bool{}
	for _, b := range n.catalog.Brokers() {
		known[b.ID] = true
	}
	for _, p := range n.cfg.Cluster.Peers.Nodes {
		if known[int32(p.ID)] {
			continue
		}
		h, pp, err := splitHostPort(p.Addr)
		if err != nil {
			return err
		}
		if err := n.catalog.RegisterBroker(ctx, meta.Broker{ID: int32(p.ID), Host: h, Port: pp, RaftAddr: p.RaftAddress()}); err != nil {
			return fmt.Errorf("register peer %d in the catalog: %w", p.ID, err)
		}
	}
	return nil
}

// adminAddr is the address other nodes and operators reach this node's
// metrics/admin HTTP server on: the metrics address, with the advertised
// host when it binds every interface (":8081", "0.0.0.0:8081"); "" when
// the HTTP server is off.
func adminAddr(metricsAddr, advertisedHost string) string {
	if metricsAddr == "" {
		return ""
	}
	h, p, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		h = advertisedHost
	}
	return net.JoinHostPort(h, p)
}

// knownClusterID is the cluster id this node's data directory or catalog
// holds, "" before the cluster is formed.
func (n *Node) knownClusterID() string {
	if id := n.clusterID.Load(); id != nil {
		return *id
	}
	return n.identity.ClusterID
}

// forwardToMetadataLeader sends a catalog command to the metadata leader.
// A command the leader never got is NOT_CONTROLLER (the client retries);
// one it may have got but did not answer is REQUEST_TIMED_OUT: it may
// still take effect, and a retry could then be refused (a topic created
// twice: "already exists").
func (n *Node) forwardToMetadataLeader(ctx context.Context, leader uint64, cmd []byte) (meta.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n.cfg.Raft.RPCTimeoutMs)*time.Millisecond)
	defer cancel()
	out, err := n.transport.Call(ctx, leader, proposeMethod, cmd)
	if errors.Is(err, transport.ErrNotSent) {
		return meta.Result{}, fmt.Errorf("%w: forwarding to node %d: %v", kerr.NotController, leader, err)
	}
	if err != nil {
		return meta.Result{}, fmt.Errorf("%w: forwarding to node %d: %v; the change may still take effect", kerr.RequestTimedOut, leader, err)
	}
	return meta.DecodeResult(out)
}

// answerProposal runs a forwarded catalog command on this node.
func (n *Node) answerProposal(ctx context.Context, from uint64, payload []byte) ([]byte, error) {
	r, err := n.catalog.ProposeLocal(ctx, payload)
	if err != nil && r.Err == nil {
		r.Err = err
	}
	return meta.EncodeResult(r), nil
}

// publisher publishes the leader, epoch and ISR of the partitions this
// node leads to the catalog, so that every node answers Metadata alike.
// Updates for one partition coalesce: only the newest is sent.
type publisher struct {
	n       *Node
	mu      sync.Mutex
	pending map[replica.TopicPartition]leaderState
	wake    chan struct{}
}

type leaderState struct {
	term uint64
	isr  []uint64
}

func newPublisher(n *Node) *publisher {
	return &publisher{n: n, pending: map[replica.TopicPartition]leaderState{}, wake: make(chan struct{}, 1)}
}

// leaderState is replica.Settings.OnLeaderState; it must not block.
func (p *publisher) leaderState(tp replica.TopicPartition, term uint64, isr []uint64) {
	p.mu.Lock()
	p.pending[tp] = leaderState{term, isr}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *publisher) run() {
	defer p.n.wg.Done()
	for {
		select {
		case <-p.n.stop:
			return
		case <-p.wake:
		}
		p.mu.Lock()
		batch := p.pending
		p.pending = map[replica.TopicPartition]leaderState{}
		p.mu.Unlock()
		failed := false
		for tp, st := range batch {
			if !p.publish(tp, st) {
				failed = true
				p.mu.Lock()
				if _, newer := p.pending[tp]; !newer {
					p.pending[tp] = st
				}
				p.mu.Unlock()
			}
		}
		if failed {
			select {
			case <-p.n.stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			p.leaderStateRetry()
		}
	}
}

func (p *publisher) leaderStateRetry() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// publish sends one partition's state; false means try again.
func (p *publisher) publish(tp replica.TopicPartition, st leaderState) bool {
	r := p.n.replicas.Get(tp)
	if r == nil || r.View().Term != st.term || !r.View().IsLeader {
		return true // no longer ours to publish
	}
	isr := make([]int32, len(st.isr))
	for i, id := range st.isr {
		isr[i] = int32(id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.n.catalog.SetPartitionState(ctx, tp.Topic, tp.Partition, int32(p.n.cfg.NodeID), int32(st.term), isr)
	switch {
	case err == nil:
		return true
	case errors.Is(err, kerr.FencedLeaderEpoch), errors.Is(err, kerr.UnknownTopicOrPartition):
		return true
	default:
		p.n.logger.Debug("publishing partition leadership", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		return false
	}
}

// every runs fn every d until the node stops.
func (n *Node) every(d time.Duration, fn func()) {
	defer n.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		fn()
	}
}

// checkLiveness runs on every node every half second: it stops a node
// whose catalog failed or that was decommissioned, and on the metadata
// leader records which brokers the leader hears from, so Metadata lists
// only live brokers and no leader on a dead one. A broker is live while the leader
// heard from it (any raft traffic: every member answers the catalog's
// heartbeats) within livenessTimeout. Raft's own "recently active" flags
// are not used: check-quorum clears them every election timeout, and one
// sampled just after that looks dead, which under load made brokers flap
// in and out of Metadata and stalled clients for seconds.
func (n *Node) checkLiveness() {
	if err := n.catalog.Group().Failed(); err != nil {
		// The catalog is the node's view of the cluster; it is not
		// reopened in place: the node stops, and its supervisor starts
		// it again on the catalog's log as it is on disk.
		n.fail(fmt.Errorf("the cluster catalog's log failed: %w; the node stops so that it starts again from what its disk holds", err))
		return
	}
	if n.decommissioned() {
		n.fail(n.decommissionedErr())
		return
	}
	if !n.catalog.IsLeader() {
		return
	}
	live := []int32{int32(n.cfg.NodeID)}
	if n.transport != nil {
		timeout, connected := n.livenessTimeout(), n.transport.Connected()
		for id, at := range n.transport.LastHeard() {
			// A peer whose listener refuses connections is gone at once.
			if connected[id] && time.Since(at) < timeout {
				live = append(live, int32(id))
			}
		}
	}
	slices.Sort(live)
	if slices.Equal(live, n.catalog.LiveBrokers()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.catalog.SetLiveBrokers(ctx, live); err == nil {
		n.logger.Info("live brokers changed", "live", live)
	}
}

func (n *Node) decommissionedErr() error {
	return fmt.Errorf("node %d was decommissioned: it holds no replica and left the cluster; stop it (to bring it back, start it on an empty data directory: it joins as a new member)", n.cfg.NodeID)
}

// decommissioned reports whether this node was decommissioned and has
// left the metadata group.
func (n *Node) decommissioned() bool {
	if n.transport == nil {
		return false
	}
	self := int32(n.cfg.NodeID)
	decom := false
	for _, b := range n.catalog.Brokers() {
		if b.ID == self {
			decom = b.Decommissioning
		}
	}
	if !decom {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	voters, learners, err := n.catalog.Members(ctx)
	return err == nil && !slices.Contains(voters, uint64(self)) && !slices.Contains(learners, uint64(self))
}

// transferLeaderships hands every leadership this node holds to an in-sync
// follower, so clients see a new leader at once instead of after an
// election timeout: before shutdown, and on an operator's step-down. It
// waits until they moved and this node knows each new leader, for at most
// 5 s or until ctx ends, and returns the groups that moved and those this
// node still leads.
func (n *Node) transferLeaderships(ctx context.Context, why string) (moved, remaining []*raftnode.Group) {
	deadline := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	groups := n.host.Groups()
	sort.Slice(groups, func(i, j int) bool { return groups[i].ID() < groups[j].ID() })
	var leading []leadership
	for _, g := range groups {
		if g.Status().Role == raft.StateLeader {
			leading = append(leading, raftLeadership{n: n, g: g})
		}
	}
	if len(leading) == 0 {
		return nil, nil
	}
	n.logger.Info("moving leaderships "+why, "groups", len(leading))
	m, r := handOver(leading, n.cfg.NodeID, deadline)
	if len(r) == 0 {
		n.logger.Info("leaderships moved", "groups", len(m))
	} else {
		n.logger.Warn("some leaderships did not move", "moved", len(m), "remaining", len(r))
	}
	for _, l := range m {
		moved = append(moved, l.(raftLeadership).g)
	}
	for _, l := range r {
		remaining = append(remaining, l.(raftLeadership).g)
	}
	return moved, remaining
}

// leadership is a group this node led when a hand-over began.
type leadership interface {
	// status is the group's role and the leader this node knows.
	status() (leading bool, lead uint64)
	// target is the follower to hand the group to now, 0 if none.
	target() uint64
	transfer(to uint64)
}

type raftLeadership struct {
	n *Node
	g *raftnode.Group
}

func (r raftLeadership) status() (bool, uint64) {
	st := r.g.Status()
	return st.Role == raft.StateLeader, st.Lead
}
func (r raftLeadership) target() uint64 { return r.n.transferTarget(r.g) }
func (r raftLeadership) transfer(to uint64) {
	r.g.Do(func(l raftnode.Loop) { l.TransferLeader(to) })
}

// handOver asks each group to transfer to its target until every one has
// moved and this node (self) knows its new leader, or the deadline. A
// group with no target at first (its followers' activity is sampled, and
// check-quorum clears it every election timeout) is asked again as soon as
// it has one.
func handOver(leading []leadership, self uint64, deadline time.Time) (moved, remaining []leadership) {
	for {
		moved, remaining = moved[:0], remaining[:0]
		waiting := 0
		for _, l := range leading {
			if isLeader, lead := l.status(); !isLeader {
				moved = append(moved, l)
				// A node that lost its leadership to a vote learns the new
				// leader only from its first append; until then the move
				// is not done for whoever asked where leadership went.
				if lead == 0 || lead == self {
					waiting++
				}
				continue
			}
			remaining = append(remaining, l)
			if to := l.target(); to != 0 {
				// Raft ignores a repeated transfer to the follower it is
				// already handing over to.
				l.transfer(to)
				waiting++
			}
		}
		if waiting == 0 || !time.Now().Before(deadline) {
			return moved, remaining
		}
		time.Sleep(20 * time.Millisecond) // the pace of the checks
	}
}

// transferTarget picks the follower to hand a group to: an in-sync one for
// partitions, the most caught-up voter for the catalog; 0 if none.
func (n *Node) transferTarget(g *raftnode.Group) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), groupQueryTimeout)
	defer cancel()
	best, err := raftnode.Query(ctx, g, func(l raftnode.Loop) uint64 {
		st := l.RaftStatus()
		var best uint64
		var bestMatch uint64
		for id, pr := range st.Progress {
			if id == n.cfg.NodeID || pr.IsLearner || !pr.RecentActive {
				continue
			}
			// The lowest id among the most caught up: the same answer
			// each time it is asked.
			if best == 0 || pr.Match > bestMatch || pr.Match == bestMatch && id < best {
				best, bestMatch = id, pr.Match
			}
		}
		return best
	})
	if err != nil {
		return 0
	}
	return best
}

// livenessTimeout is how long the metadata leader may hear nothing from a
// broker before it counts it dead: three election timeouts, so that a
// busy node is not taken for a dead one (raft elects a new leader for its
// partitions on its own; this only hides a dead leader from Metadata
// until its successor publishes itself).
func (n *Node) livenessTimeout() time.Duration {
	return 3 * time.Duration(n.cfg.Raft.ElectionTimeoutMs) * time.Millisecond
}

// groupQueryTimeout bounds a wait on a raft group's loop for a status: a
// group busy or stuck for longer than this is skipped, never waited on.
const groupQueryTimeout = 5 * time.Second
