package meta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/storage"
)

// ErrNotController is returned when this node cannot change the catalog
// because it does not lead the metadata group.
var ErrNotController = kerr.NotController

// Forwarder sends an encoded command to the node leading the metadata
// group and returns what applying it gave.
type Forwarder func(ctx context.Context, leader uint64, cmd []byte) (Result, error)

// Catalog is the replicated catalog, hosted on the metadata raft group.
type Catalog struct {
	group   *raftnode.Group
	logger  *slog.Logger
	forward Forwarder
	self    uint64

	// mu guards state; the worker replaces topics copy-on-write, so readers
	// get consistent Topic values.
	mu      sync.RWMutex
	state   *State
	applied uint64
	changed chan struct{} // closed and replaced on every change
	// leftLive is when each broker out of the live set left it, as this
	// node applied the change.
	leftLive map[int32]time.Time
	// downLeaders caches, per applied index, which of them still lead.
	downLeaders atomic.Pointer[downLeaders]
	// onTopicDeleted is told each topic deletion as it is applied.
	onTopicDeleted func(name string)

	// Worker-owned.
	leader   bool
	term     uint64
	proposed map[*byte]func(Result)
	pending  []pendingCall // proposals by index, until applied
	// policy says when to snapshot; snapIndex is the last snapshot's
	// index, bytesSinceSnap what was applied since.
	policy         SnapshotPolicy
	snapIndex      uint64
	bytesSinceSnap int64
	// snapMembers are the group's members the latest snapshot here names.
	snapMembers []uint64
	// joinSnapWait is the log's last index when a snapshot was last taken
	// for a new member; the next waits until that is applied.
	joinSnapWait uint64

	snapCount atomic.Uint64
	snapBytes atomic.Uint64
}

type pendingCall struct {
	index uint64
	cb    func(Result)
}

// Open starts the catalog on host using log, as a group whose initial
// members are voters and learners. The state is the log's latest snapshot
// (if any) and the entries after it. Changes made on a node that does not
// lead the group go to the leader through forward (nil on a single node).
//
// With join, the group starts empty: this node is joining a running
// cluster, whose leader added it (AddMember) and sends it a snapshot.
func Open(host *raftnode.Host, log *storage.Log, voters, learners []uint64, join bool, forward Forwarder, policy SnapshotPolicy, logger *slog.Logger) (*Catalog, error) {
	c := &Catalog{
		logger: logger, state: newState(), changed: make(chan struct{}), forward: forward, self: host.NodeID(),
		proposed: map[*byte]func(Result){}, policy: policy, leftLive: map[int32]time.Time{},
	}
	applied := log.FirstIndex() - 1
	snap, ok, err := log.LatestSnapshot()
	if err != nil {
		return nil, fmt.Errorf("open the catalog: %w", err)
	}
	if ok {
		if c.state, err = decodeState(snap.Data); err != nil {
			return nil, fmt.Errorf("open the catalog: snapshot at %d: %w", snap.Index, err)
		}
		applied, c.applied, c.snapIndex = snap.Index, snap.Index, snap.Index
		cs, err := raftnode.SnapshotConfState(snap)
		if err != nil {
			return nil, fmt.Errorf("open the catalog: %w", err)
		}
		c.snapMembers = confMembers(cs)
		c.snapBytes.Store(uint64(len(snap.Data)))
		// What a snapshot holds was committed: raft's commit index must not
		// be below it (the hard state is checkpointed lazily).
		if err := log.Commit(snap.Index); err != nil {
			return nil, fmt.Errorf("open the catalog: %w", err)
		}
	}
	if _, err := host.AddGroup(raftnode.GroupConfig{
		ID: MetadataGroupID, Log: log, SM: c, Peers: voters, Learners: learners, Applied: applied, Join: join,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// BindGroup implements raftnode.GroupBinder.
func (c *Catalog) BindGroup(g *raftnode.Group) { c.group = g }

// entryOverhead approximates what an entry costs in the log beyond its
// data (frame header and index entry).
const entryOverhead = 48

// A ReadIndex request raft drops (there is no leader yet) is asked again
// after syncAttempt, which starts short, so that a node that elects itself
// at once is synced at once, and doubles up to syncAttemptMax.
const (
	syncAttempt    = 20 * time.Millisecond
	syncAttemptMax = time.Second
)

// Sync waits until this node's catalog holds every change committed
// before the call: it asks the metadata group's leader for its commit
// index (raft's ReadIndex, forwarded when this node follows) and waits
// until it has applied that far. A node that has only replayed its own log
// is not synced: changes made while it was down (a topic deleted and
// created again, say) are still to come. Sync retries until a leader
// answers or ctx ends.
func (c *Catalog) Sync(ctx context.Context) error {
	for attempt := syncAttempt; ; attempt = min(2*attempt, syncAttemptMax) {
		actx, cancel := context.WithTimeout(ctx, attempt)
		idx, err := c.group.ReadIndex(actx)
		cancel()
		switch {
		case err == nil:
			return c.waitApplied(ctx, idx)
		case errors.Is(err, raftnode.ErrStopped):
			return fmt.Errorf("waiting for the cluster catalog: %w", err)
		case ctx.Err() != nil:
			return fmt.Errorf("waiting for the cluster catalog: %w", ctx.Err())
		}
	}
}

// waitApplied waits until the catalog has applied index.
func (c *Catalog) waitApplied(ctx context.Context, index uint64) error {
	for {
		c.mu.RLock()
		applied, ch := c.applied, c.changed
		c.mu.RUnlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the cluster catalog to apply index %d (at %d): %w", index, applied, ctx.Err())
		}
	}
}

// Group returns the metadata raft group.
func (c *Catalog) Group() *raftnode.Group { return c.group }

// Changed returns a channel closed at the next catalog change.
func (c *Catalog) Changed() <-chan struct{} {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.changed
}

// ClusterID returns the cluster id, "" before the cluster is initialised.
func (c *Catalog) ClusterID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state.ClusterID
}

// Brokers returns the registered brokers by id.
func (c *Catalog) Brokers() []Broker {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Broker, 0, len(c.state.Brokers))
	for _, b := range c.state.Brokers {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Incarnation returns the data directory incarnation node id registered
// with, "" if it has not registered itself.
func (c *Catalog) Incarnation(id int32) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state.Brokers[id].Incarnation
}

// Topic returns a topic, or nil. The value must not be modified.
func (c *Catalog) Topic(name string) *Topic {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state.Topics[name]
}

// Topics returns every topic, sorted by name. The values must not be
// modified.
func (c *Catalog) Topics() []*Topic {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Topic, 0, len(c.state.Topics))
	for _, t := range c.state.Topics {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TopicByID returns the topic with id, or nil.
func (c *Catalog) TopicByID(id [16]byte) *Topic {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, t := range c.state.Topics {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// propose submits cmd (here, or through the metadata leader) and waits for
// its result.
func (c *Catalog) propose(ctx context.Context, cmd *Command) (Result, error) {
	data, err := encodeCommand(cmd)
	if err != nil {
		return Result{}, err
	}
	r, err := c.ProposeLocal(ctx, data)
	if !errors.Is(err, ErrNotController) || c.forward == nil {
		return r, err
	}
	lead := c.group.Status().Lead
	if lead == 0 || lead == c.self {
		return Result{}, kerr.NotController
	}
	r, err = c.forward(ctx, lead, data)
	if err == nil {
		err = r.Err
	}
	return r, err
}

// ProposeLocal submits an encoded command on this node, which must lead
// the metadata group (else ErrNotController), and waits for its result.
func (c *Catalog) ProposeLocal(ctx context.Context, data []byte) (Result, error) {
	if _, err := decodeCommand(data); err != nil {
		return Result{}, err
	}
	ch := make(chan Result, 1)
	ok := c.group.Do(func(l raftnode.Loop) {
		if !c.leader {
			ch <- Result{Err: ErrNotController}
			return
		}
		if err := l.Propose(data); err != nil {
			ch <- Result{Err: ErrNotController}
			return
		}
		c.proposed[unsafe.SliceData(data)] = func(r Result) { ch <- r }
	})
	if !ok {
		return Result{}, raftnode.ErrStopped
	}
	select {
	case r := <-ch:
		return r, r.Err
	case <-ctx.Done():
		// The command may still be applied; only its callback is dropped
		// (one still pending by index is dropped when its entry is
		// applied or replaced).
		c.group.Do(func(raftnode.Loop) { delete(c.proposed, unsafe.SliceData(data)) })
		return Result{}, kerr.RequestTimedOut
	}
}

// Init gives a new cluster its id; it does nothing if it has one.
func (c *Catalog) Init(ctx context.Context) error {
	if c.ClusterID() != "" {
		return nil
	}
	var b [16]byte
	rand.Read(b[:])
	_, err := c.propose(ctx, &Command{Op: opInit, ClusterID: hex.EncodeToString(b[:])})
	return err
}

// RegisterBroker records (or updates) a broker's address.
func (c *Catalog) RegisterBroker(ctx context.Context, b Broker) error {
	c.mu.RLock()
	cur, ok := c.state.Brokers[b.ID]
	c.mu.RUnlock()
	if ok && cur == b {
		return nil
	}
	_, err := c.propose(ctx, &Command{Op: opRegisterBroker, Broker: &b})
	return err
}

// CreateTopic adds a topic with the given replica assignment.
func (c *Catalog) CreateTopic(ctx context.Context, name string, assignment [][]int32, configs map[string]string, internal bool) (*Topic, error) {
	var id [16]byte
	rand.Read(id[:])
	if _, err := c.propose(ctx, &Command{Op: opCreateTopic, Topic: name, TopicID: id, Assignment: assignment, Configs: configs, Internal: internal}); err != nil {
		return nil, err
	}
	return c.Topic(name), nil
}

// DeleteTopic removes a topic.
func (c *Catalog) DeleteTopic(ctx context.Context, name string) error {
	_, err := c.propose(ctx, &Command{Op: opDeleteTopic, Topic: name})
	return err
}

// CreatePartitions adds partitions with the given assignment to a topic.
func (c *Catalog) CreatePartitions(ctx context.Context, name string, assignment [][]int32) error {
	_, err := c.propose(ctx, &Command{Op: opCreatePartitions, Topic: name, Assignment: assignment})
	return err
}

// AlterConfigs sets and deletes topic configs; with replace, set replaces
// every config.
func (c *Catalog) AlterConfigs(ctx context.Context, name string, set map[string]string, del []string, replace bool) error {
	_, err := c.propose(ctx, &Command{Op: opAlterConfigs, Topic: name, Configs: set, Delete: del, Replace: replace})
	return err
}

// SetPartitionState publishes a partition's leader, epoch and ISR. An
// update from an older epoch than the catalog holds is refused.
func (c *Catalog) SetPartitionState(ctx context.Context, topic string, partition, leader, epoch int32, isr []int32) error {
	_, err := c.propose(ctx, &Command{Op: opPartitionState, Topic: topic, Partition: partition, Leader: leader, Epoch: epoch, ISR: isr})
	return err
}

// Reassign starts moving a partition's replicas to target (Kafka's
// AlterPartitionReassignments); target nil cancels the reassignment in
// progress. The partition's leader carries it out.
func (c *Catalog) Reassign(ctx context.Context, topic string, partition int32, target []int32) error {
	_, err := c.propose(ctx, &Command{Op: opReassign, Topic: topic, Partition: partition, Replicas: target})
	return err
}

// ReassignDone records that a partition's raft group reached target.
func (c *Catalog) ReassignDone(ctx context.Context, topic string, partition int32, target []int32) error {
	_, err := c.propose(ctx, &Command{Op: opReassignDone, Topic: topic, Partition: partition, Replicas: target})
	return err
}

// Decommission marks node id to have every replica moved off it and be
// removed (cancel: no longer).
func (c *Catalog) Decommission(ctx context.Context, id int32, cancel bool) error {
	_, err := c.propose(ctx, &Command{Op: opDecommission, Node: id, Cancel: cancel})
	return err
}

// Replace starts taking node id, whose data directory was lost, out of
// every raft group it is in and back in as a new member; its next
// directory is accepted. Partitions being reassigned are left for a later
// call.
func (c *Catalog) Replace(ctx context.Context, id int32) error {
	_, err := c.propose(ctx, &Command{Op: opReplace, Node: id})
	return err
}

// ReplaceDone records that node id is a member again everywhere.
func (c *Catalog) ReplaceDone(ctx context.Context, id int32) error {
	_, err := c.propose(ctx, &Command{Op: opReplaceDone, Node: id})
	return err
}

// RemoveBroker removes a decommissioned node that holds no replica.
func (c *Catalog) RemoveBroker(ctx context.Context, id int32) error {
	_, err := c.propose(ctx, &Command{Op: opRemoveBroker, Node: id})
	return err
}

// RemoveMember removes node id from the metadata group (voter or
// learner); on the leader.
func (c *Catalog) RemoveMember(ctx context.Context, id uint64) error {
	return c.changeConf(ctx, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeRemoveNode, NodeID: id}, func(voters, learners []uint64) bool {
		return !slices.Contains(voters, id) && !slices.Contains(learners, id)
	})
}

// SetLiveBrokers records which brokers are alive.
func (c *Catalog) SetLiveBrokers(ctx context.Context, live []int32) error {
	_, err := c.propose(ctx, &Command{Op: opLiveBrokers, Live: live})
	return err
}

// LiveBrokers returns the brokers last recorded alive (all registered
// brokers before the first record).
func (c *Catalog) LiveBrokers() []int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.liveLocked()
}

func (c *Catalog) liveLocked() []int32 {
	if c.state.Live == nil {
		out := make([]int32, 0, len(c.state.Brokers))
		for id := range c.state.Brokers {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	return slices.Clone(c.state.Live)
}

// LiveOrSucceeding returns the live brokers and those that left the live
// set less than grace ago (by this node's clock) and are still the
// published leader of some partition: a successor has not yet published
// itself.
func (c *Catalog) LiveOrSucceeding(grace time.Duration) []int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := c.liveLocked()
	var recent []int32
	for id, at := range c.leftLive {
		if _, ok := c.state.Brokers[id]; ok && time.Since(at) < grace && !slices.Contains(out, id) {
			recent = append(recent, id)
		}
	}
	if len(recent) == 0 {
		return out
	}
	leading := c.downLeaders.Load()
	if leading == nil || leading.applied != c.applied {
		leading = &downLeaders{applied: c.applied, ids: map[int32]bool{}}
		for _, t := range c.state.Topics {
			for _, p := range t.Partitions {
				if _, down := c.leftLive[p.Leader]; down {
					leading.ids[p.Leader] = true
				}
			}
		}
		c.downLeaders.Store(leading)
	}
	for _, id := range recent {
		if leading.ids[id] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// downLeaders is which brokers out of the live set the catalog still
// names as a partition's leader, as of an applied index.
type downLeaders struct {
	applied uint64
	ids     map[int32]bool
}

// noteLiveChange records when brokers left the live set. It is this
// node's own clock, not replicated: a node replaying its log at start
// sees the brokers then down leave at that moment.
func (c *Catalog) noteLiveChange(was []int32) {
	now := c.liveLocked()
	for _, id := range was {
		if !slices.Contains(now, id) {
			c.leftLive[id] = time.Now()
		}
	}
	for _, id := range now {
		delete(c.leftLive, id)
	}
}

// AllocateProducerIDs reserves count producer ids and returns the first.
func (c *Catalog) AllocateProducerIDs(ctx context.Context, count int64) (int64, error) {
	r, err := c.propose(ctx, &Command{Op: opAllocProducerIDs, Count: count})
	return r.Value, err
}

// Appended implements raftnode.StateMachine.
func (c *Catalog) Appended(entries []raftpb.Entry) {
	// Raft replaced the log from the first index on: proposals that were
	// there are gone.
	first := entries[0].Index
	c.pending = slices.DeleteFunc(c.pending, func(p pendingCall) bool {
		if p.index >= first {
			p.cb(Result{Err: ErrNotController})
			return true
		}
		return false
	})
	for _, e := range entries {
		if len(e.Data) == 0 {
			continue
		}
		if cb, ok := c.proposed[unsafe.SliceData(e.Data)]; ok {
			delete(c.proposed, unsafe.SliceData(e.Data))
			c.pending = append(c.pending, pendingCall{index: e.Index, cb: cb})
		}
	}
}

// Persisted implements raftnode.StateMachine.
func (c *Catalog) Persisted(uint64, uint64) {}

// Failed implements raftnode.StateMachine: proposals in flight fail; the
// node that owns the catalog decides what to do (see Node).
func (c *Catalog) Failed(err error) {
	c.leader = false
	c.abandon(fmt.Errorf("the catalog's raft group failed: %w", err))
}

// Stopped implements raftnode.StateMachine.
func (c *Catalog) Stopped() { c.abandon(raftnode.ErrStopped) }

// abandon fails every proposal in flight with err.
func (c *Catalog) abandon(err error) {
	for k, cb := range c.proposed {
		cb(Result{Err: err})
		delete(c.proposed, k)
	}
	for _, p := range c.pending {
		p.cb(Result{Err: err})
	}
	c.pending = nil
}

// OnTopicDeleted makes the catalog call fn with the name of every topic
// it deletes from now on, as the deletion is applied: before any reader
// sees the catalog without it (or with a new topic of that name). fn must
// not block or call the catalog. A deletion that arrives inside a snapshot
// is not told.
func (c *Catalog) OnTopicDeleted(fn func(name string)) {
	c.mu.Lock()
	c.onTopicDeleted = fn
	c.mu.Unlock()
}

// Apply implements raftnode.StateMachine.
func (c *Catalog) Apply(entries []raftpb.Entry) {
	c.mu.Lock()
	for _, e := range entries {
		c.applied = e.Index
		c.bytesSinceSnap += int64(len(e.Data)) + entryOverhead
		if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
			continue
		}
		var res Result
		cmd, err := decodeCommand(e.Data)
		if err != nil {
			res.Err = err
		} else {
			var wasLive []int32
			if cmd.Op == opLiveBrokers {
				wasLive = c.liveLocked()
			}
			res = c.state.apply(cmd)
			if res.Err == nil && cmd.Op == opLiveBrokers {
				c.noteLiveChange(wasLive)
			}
			if res.Err == nil && cmd.Op == opDeleteTopic && c.onTopicDeleted != nil {
				c.onTopicDeleted(cmd.Topic)
			}
		}
		if res.Err != nil && !errors.As(res.Err, new(*kerr.Error)) {
			c.logger.Error("catalog command failed", "index", e.Index, "err", res.Err)
		}
		if len(c.pending) > 0 && c.pending[0].index == e.Index {
			cb := c.pending[0].cb
			c.pending = c.pending[1:]
			defer cb(res)
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	last := entries[len(entries)-1]
	// The log's commit index lets compaction drop what a snapshot holds.
	if err := c.group.Log().Commit(last.Index); err != nil {
		c.logger.Error("catalog commit", "index", last.Index, "err", err)
	}
	c.maybeSnapshot(last.Term)
}

// RoleChanged implements raftnode.StateMachine.
//
// A leader that steps down keeps its callers waiting: the next leader may
// hold what it proposed and commit it, so a proposal is answered only
// when its entry is applied, or failed once this node's log replaces it
// (Appended) or the caller's deadline passes. Failing it at the step-down
// told clients to retry a change that then took effect: a topic create
// answered NOT_CONTROLLER, retried, and refused as already existing.
func (c *Catalog) RoleChanged(ss raft.SoftState, term uint64) {
	c.leader = ss.RaftState == raft.StateLeader
	c.term = term
	// An index waited for in an earlier term may have been replaced.
	c.joinSnapWait = 0
}

// Members returns the metadata group's voters and learners as this node
// knows them.
func (c *Catalog) Members(ctx context.Context) (voters, learners []uint64, err error) {
	conf, err := raftnode.Query(ctx, c.group, func(l raftnode.Loop) [2][]uint64 {
		cfg := l.RaftStatus().Config
		return [2][]uint64{slices.Sorted(maps.Keys(cfg.Voters.IDs())), slices.Sorted(maps.Keys(cfg.Learners))}
	})
	return conf[0], conf[1], err
}

// AddMember makes node id a member of the metadata group, as a learner
// (it does nothing if id is a member already). The new member starts with
// an empty log and no configuration and takes the log from a snapshot
// (see Progressed). It must run on the metadata leader (else
// ErrNotController).
func (c *Catalog) AddMember(ctx context.Context, id uint64) error {
	voters, learners, err := c.Members(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(voters, id) && !slices.Contains(learners, id) {
		if err := c.changeConf(ctx, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddLearnerNode, NodeID: id}, func(_, learners []uint64) bool {
			return slices.Contains(learners, id)
		}); err != nil {
			return err
		}
		c.logger.Info("added a member to the metadata group as a learner", "node", id)
	}
	return nil
}

// CaughtUp reports, on the metadata leader, whether member id has every
// committed entry and is being sent new ones as they come.
func (c *Catalog) CaughtUp(ctx context.Context, id uint64) bool {
	ok, err := raftnode.Query(ctx, c.group, func(l raftnode.Loop) bool {
		st := l.RaftStatus()
		pr, ok := st.Progress[id]
		return ok && pr.State == tracker.StateReplicate && pr.Match >= st.Commit
	})
	return err == nil && ok
}

// Promote makes learner id a voter of the metadata group; on the leader.
func (c *Catalog) Promote(ctx context.Context, id uint64) error {
	return c.changeConf(ctx, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddNode, NodeID: id}, func(voters, _ []uint64) bool {
		return slices.Contains(voters, id)
	})
}

// changeConf proposes one change to the metadata group's members and
// waits until this node applied it (done says so).
func (c *Catalog) changeConf(ctx context.Context, ch raftpb.ConfChangeSingle, done func(voters, learners []uint64) bool) error {
	errc := make(chan error, 1)
	if !c.group.Do(func(l raftnode.Loop) {
		if !c.leader {
			errc <- ErrNotController
			return
		}
		errc <- l.ProposeConfChange(raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{ch}})
	}) {
		return raftnode.ErrStopped
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("change the metadata group's members: %w", err)
	}
	// Raft drops a change proposed while another is pending: wait for
	// this one to show, and let the caller retry if it does not.
	for {
		voters, learners, err := c.Members(ctx)
		if err != nil {
			return err
		}
		if done(voters, learners) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the metadata group's members to change (%s of node %d): %w", ch.Type, ch.NodeID, kerr.RequestTimedOut)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// IsLeader reports whether this node leads the metadata group.
func (c *Catalog) IsLeader() bool { return c.group.Status().Role == raft.StateLeader }
