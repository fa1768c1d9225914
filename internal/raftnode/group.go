package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/chronik-stream/chronik/internal/storage"
)

// StateMachine is what a group feeds. Every method runs on the group's
// worker, one at a time, and must not block.
type StateMachine interface {
	// Appended is called after entries were written to the local log (in
	// the page cache, durable later), in log order. If entries[0].Index is
	// at or below the previous last index, the log was truncated first.
	Appended(entries []raftpb.Entry)
	// Persisted is called once entries up to index, the last of them of
	// term term, are durable locally. Entries a truncation replaced before
	// they were durable are never reported.
	Persisted(index, term uint64)
	// Apply is called with committed entries, in order.
	Apply(entries []raftpb.Entry)
	// RoleChanged is called when the leader or this node's role changes.
	RoleChanged(ss raft.SoftState, term uint64)
	// Failed is called once when the group stops taking part in raft
	// after a storage error: the replica must answer with an error at
	// once, not wait for a group that will not move. The group hands its
	// leadership to a follower first. Its owner reopens it (a new group
	// over a reopened log) to recover.
	Failed(err error)
	// Stopped is called once when the group is removed from the host: the
	// requests it still holds will never be answered by it.
	Stopped()
}

// SnapshotRestorer is implemented by a state machine whose group can
// install snapshots: a follower too far behind the leader's log start gets
// the leader's snapshot, and Restore replaces the state machine's state
// with it (the log is reset to start after it).
type SnapshotRestorer interface {
	Restore(snap raftpb.Snapshot) error
}

// SnapshotMaker is implemented by a state machine whose snapshots are not
// saved but made when a follower needs one: a partition, whose log is its
// state and whose start moves by retention and DeleteRecords. The snapshot
// is the state as of the entry before the log's first: MakeSnapshot builds
// its data on the leader, RestartOffset tells a follower installing it the
// Kafka offset its log restarts at, and Restore installs the rest.
type SnapshotMaker interface {
	SnapshotRestorer
	MakeSnapshot(index uint64) ([]byte, error)
	RestartOffset(data []byte) (int64, error)
}

// ProgressObserver is implemented by a state machine that wants to hear,
// on a leader, when followers' progress may have moved (after raft
// stepped their append or heartbeat responses and handled the Ready
// that followed).
type ProgressObserver interface {
	Progressed(l Loop)
}

// GroupBinder is implemented by a state machine that keeps its group: it
// is given the group before the group first runs, so no callback can see
// it unset.
type GroupBinder interface {
	BindGroup(g *Group)
}

// Status is a cheap view of a group, refreshed by its worker.
type Status struct {
	Lead      uint64
	Term      uint64
	Role      raft.StateType
	Commit    uint64
	Applied   uint64
	LastIndex uint64
	// Failed is the storage error that stopped the group, nil while it runs.
	Failed error
}

// Group is one raft group hosted on this node.
type Group struct {
	id     GroupID
	host   *Host
	log    *storage.Log
	sm     StateMachine
	logger *slog.Logger

	// Inbox, guarded by mu. scheduled is true while the group is queued or
	// being processed; only the worker that holds it clears it.
	mu        sync.Mutex
	msgs      []raftpb.Message
	fns       []func(Loop)
	ticks     int
	tickedAt  time.Time // when the oldest pending tick arrived
	scheduled bool
	stopped   bool
	done      chan struct{} // closed when a stopped group is drained

	// Worker-owned.
	storage  *logStorage
	stalled  []raftpb.Message // appends waiting for disk space, in order
	diskFull atomic.Bool      // the last append found the disk full (read by producers)
	// repairUntil is the log index to reach again after damaged entries
	// were discarded (storage.Log.RepairUntil), or, on a replica catching
	// up with a group it joined, the leader's commit index when it first
	// heard from it (storage.CatchUpUnknown before that); until then this
	// replica neither votes nor campaigns. 0 when neither.
	repairUntil atomic.Uint64
	// awaitingSnapshot is set on a member that joined without a
	// configuration until it installs its first snapshot.
	awaitingSnapshot bool
	// emptyLogs are the members that, answering this node as leader,
	// rejected an append saying their log is empty, until they accept one
	// (a member that joined with no configuration waits for a snapshot);
	// worker-owned, cleared when the role changes.
	emptyLogs map[uint64]bool
	// learners are the group's learners (incoming and next), whose
	// appends the host may throttle.
	learners   map[uint64]bool
	rn         *raft.RawNode
	soft       raft.SoftState
	term       uint64
	leaderless time.Time // when the group last lost its leader
	failed     error

	// reads are the ReadIndex requests waiting for their index, by request
	// context; worker-owned.
	reads   map[string]chan<- uint64
	readSeq atomic.Uint64

	status atomic.Pointer[Status]
}

func newGroup(h *Host, gc GroupConfig) (*Group, error) {
	g := &Group{
		id: gc.ID, host: h, log: gc.Log, sm: gc.SM,
		logger: h.logger.With("group", uint64(gc.ID)),
		done:   make(chan struct{}),
		reads:  map[string]chan<- uint64{},
	}
	st := &logStorage{log: gc.Log, logger: g.logger, shared: &h.cache, startApplied: gc.Applied}
	if m, ok := gc.SM.(SnapshotMaker); ok {
		st.maker = m
	}
	g.storage = st
	g.awaitingSnapshot = gc.Join && len(gc.Log.ConfState()) == 0
	if gc.CatchUp && gc.Log.LastIndex() == 0 && gc.Log.RepairUntil() == 0 {
		if err := gc.Log.BeginCatchUp(); err != nil {
			return nil, fmt.Errorf("group %d: %w", gc.ID, err)
		}
	}
	if len(gc.Log.ConfState()) == 0 && !gc.Join {
		if len(gc.Peers) == 0 {
			return nil, fmt.Errorf("group %d: new group without peers", gc.ID)
		}
		cs := raftpb.ConfState{Voters: gc.Peers, Learners: gc.Learners}
		b, err := encodeConfs([]confAt{{index: 0, conf: cs}})
		if err != nil {
			return nil, err
		}
		if err := gc.Log.SetConfState(b); err != nil {
			return nil, fmt.Errorf("group %d: persist initial configuration: %w", gc.ID, err)
		}
	}
	rn, err := raft.NewRawNode(h.raftConfig(st, gc.Applied, g.logger))
	if err != nil {
		return nil, fmt.Errorf("group %d: %w", gc.ID, err)
	}
	g.rn = rn
	g.leaderless = time.Now()
	if cs, err := st.confState(); err == nil {
		g.setLearners(cs)
	}
	if ru := gc.Log.RepairUntil(); ru == storage.CatchUpUnknown {
		g.repairUntil.Store(ru)
		g.logger.Info("joining a running group: not voting until it holds what the leader has committed", "last_index", gc.Log.LastIndex())
	} else if ru > 0 && len(rn.Status().Config.Voters.IDs()) < 3 {
		// With fewer than three voters every committed entry is on each of
		// them: the others hold what this replica lost.
		if err := gc.Log.EndRepair(); err != nil {
			return nil, fmt.Errorf("group %d: %w", gc.ID, err)
		}
	} else if ru > 0 {
		g.repairUntil.Store(ru)
		g.logger.Warn("repairing a damaged log: not voting until it holds the discarded entries again", "until_index", ru, "last_index", gc.Log.LastIndex())
	}
	bs := rn.BasicStatus()
	g.term = bs.Term
	g.status.Store(&Status{Term: bs.Term, Commit: bs.Commit, Applied: bs.Applied, LastIndex: gc.Log.LastIndex()})
	// A group whose only voter is this node need not wait for an election
	// timeout.
	if cs, _ := st.confState(); gc.CampaignNow || len(cs.Voters) == 1 && cs.Voters[0] == h.cfg.NodeID && len(cs.Learners) == 0 {
		g.fns = append(g.fns, func(l Loop) { l.g.campaign() })
	}
	g.scheduled = true // AddGroup queues it
	return g, nil
}

// ID returns the group id.
func (g *Group) ID() GroupID { return g.id }

// Log returns the group's log.
func (g *Group) Log() *storage.Log { return g.log }

// Status returns the view of the group as of its last processing.
func (g *Group) Status() Status { return *g.status.Load() }

// DiskFull reports whether the group's appends wait for disk space.
func (g *Group) DiskFull() bool { return g.diskFull.Load() }

// Loop is the handle closures passed to Do get: its methods may only be
// called inside such a closure, on the group's worker.
type Loop struct{ g *Group }

// Propose appends data as a new entry if this node leads the group.
func (l Loop) Propose(data []byte) error { return l.g.rn.Propose(data) }

// ProposeConfChange proposes a configuration change.
func (l Loop) ProposeConfChange(cc raftpb.ConfChangeI) error { return l.g.rn.ProposeConfChange(cc) }

// RaftStatus returns the full raft status, with follower progress on a
// leader.
func (l Loop) RaftStatus() raft.Status { return l.g.rn.Status() }

// BasicStatus returns raft's status without progress.
func (l Loop) BasicStatus() raft.BasicStatus { return l.g.rn.BasicStatus() }

// WithProgress calls fn with the progress of every member, on a leader
// (nothing on a follower); a leader's own Match is its durable index.
func (l Loop) WithProgress(fn func(id uint64, pr tracker.Progress)) {
	l.g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) { fn(id, pr) })
}

// EmptyLogs returns the members that, answering this leader, said their
// log is empty and have accepted no append since (members still: one
// removed meanwhile is left out).
func (l Loop) EmptyLogs() []uint64 {
	var out []uint64
	l.WithProgress(func(id uint64, _ tracker.Progress) {
		if l.g.emptyLogs[id] {
			out = append(out, id)
		}
	})
	return out
}

// TransferLeader asks raft to hand leadership to peer.
func (l Loop) TransferLeader(peer uint64) { l.g.rn.TransferLeader(peer) }

// Campaign starts an election.
func (l Loop) Campaign() error { return l.g.campaign() }

var errRepairing = errors.New("the replica is repairing its log")

// campaign starts an election unless the replica is repairing.
func (g *Group) campaign() error {
	if g.repairUntil.Load() > 0 {
		return errRepairing
	}
	return g.rn.Campaign()
}

// withholdVote turns a granted vote into a refusal while the replica is
// repairing: entries it discarded may have been committed with its help,
// and a candidate it elects might lack them.
func (g *Group) withholdVote(m *raftpb.Message) {
	if (m.Type == raftpb.MsgVoteResp || m.Type == raftpb.MsgPreVoteResp) && !m.Reject && g.repairUntil.Load() > 0 {
		m.Reject = true
	}
}

// learnCatchUpTarget sets the index a replica catching up with a group it
// joined must reach: the leader's commit index in the first append or
// snapshot it sends. A leader sends to a member only once the change that
// added it is committed, so every configuration after that index names
// the replica, and one from the group's earlier life (where it may have
// been a voter, even the only one) is behind it.
func (g *Group) learnCatchUpTarget(m raftpb.Message) {
	if g.repairUntil.Load() != storage.CatchUpUnknown {
		return
	}
	var until uint64
	switch {
	case m.Type == raftpb.MsgApp:
		until = m.Commit
	case m.Type == raftpb.MsgSnap && m.Snapshot != nil:
		until = m.Snapshot.Metadata.Index
	}
	if until == 0 {
		return
	}
	g.repairUntil.Store(until)
	g.logger.Info("catching up with the group's leader", "leader", m.From, "until_index", until, "last_index", g.log.LastIndex())
	g.checkRepaired(g.log.DurableIndex())
}

// checkRepaired ends a repair once the log durably holds index.
func (g *Group) checkRepaired(durable uint64) {
	ru := g.repairUntil.Load()
	if ru == 0 || durable < ru {
		return
	}
	joined := g.log.RepairUntil() == storage.CatchUpUnknown
	if err := g.log.EndRepair(); err != nil {
		g.logger.Error("cannot end the repair", "err", err)
		return
	}
	g.repairUntil.Store(0)
	if joined {
		g.logger.Info("caught up with the group it joined; voting again", "index", durable)
		return
	}
	g.logger.Info("log repaired from the other replicas; voting again", "index", durable)
}

// Do runs fn on the group's worker. It returns false if the group stopped;
// fn is then never run.
func (g *Group) Do(fn func(Loop)) bool {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return false
	}
	g.fns = append(g.fns, fn)
	g.scheduleLocked()
	return true
}

// Query runs fn on g's worker and returns its result. It gives up when ctx
// ends or the group stops (a stopped group drops the closures it has not
// run), so no caller waits forever on a group's loop.
func Query[T any](ctx context.Context, g *Group, fn func(Loop) T) (T, error) {
	ch := make(chan T, 1)
	var zero T
	if !g.Do(func(l Loop) { ch <- fn(l) }) {
		return zero, ErrStopped
	}
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-g.done:
		return zero, ErrStopped
	}
}

// ReadIndex asks raft for the commit index a linearizable read must wait
// for: the leader's commit index, once it has confirmed it still leads.
// It works on followers too (raft forwards the request); without a leader
// the request is dropped, and ReadIndex waits until ctx ends.
func (g *Group) ReadIndex(ctx context.Context) (uint64, error) {
	ch := make(chan uint64, 1)
	key := strconv.FormatUint(g.readSeq.Add(1), 10)
	if !g.Do(func(l Loop) {
		l.g.reads[key] = ch
		l.g.rn.ReadIndex([]byte(key))
	}) {
		return 0, ErrStopped
	}
	select {
	case idx := <-ch:
		return idx, nil
	case <-ctx.Done():
		g.Do(func(l Loop) { delete(l.g.reads, key) })
		return 0, ctx.Err()
	case <-g.done:
		return 0, ErrStopped
	}
}

func (g *Group) enqueueMsg(m raftpb.Message) {
	g.mu.Lock()
	if !g.stopped {
		g.msgs = append(g.msgs, m)
		g.scheduleLocked()
		return
	}
	g.mu.Unlock()
}

func (g *Group) enqueueTick() {
	g.mu.Lock()
	if !g.stopped {
		if g.ticks == 0 {
			g.tickedAt = time.Now()
		}
		g.ticks++
		g.scheduleLocked()
		return
	}
	g.mu.Unlock()
}

// scheduleLocked queues the group if it is not queued or running, and
// releases g.mu.
func (g *Group) scheduleLocked() {
	if g.scheduled {
		g.mu.Unlock()
		return
	}
	g.scheduled = true
	g.mu.Unlock()
	g.host.queue.push(g)
}

func (g *Group) stopAndWait() {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		<-g.done
		return
	}
	g.stopped = true
	g.msgs, g.fns, g.ticks = nil, nil, 0
	idle := !g.scheduled
	g.mu.Unlock()
	if idle {
		// No worker holds the group, and none will: finish it here.
		g.finish()
	}
	<-g.done
}

// finish tells the state machine the group stopped and releases waiters;
// called once, by whoever holds the group when it stops.
func (g *Group) finish() {
	select {
	case <-g.done:
		return
	default:
	}
	g.sm.Stopped()
	g.storage.forget() // its cached entries no longer count against the node's bound
	close(g.done)
}

// process runs one round of the group on the calling worker. A storage
// error that raft meets while reading the log (it panics with the error
// our storage returned) fails the group instead of the process.
func (g *Group) process() {
	defer func() {
		if r := recover(); r != nil {
			err, ok := r.(error)
			var se *storageError
			if !ok || !errors.As(err, &se) {
				panic(r)
			}
			g.fail(fmt.Errorf("reading the log: %w", se.err))
			g.process() // drain the inbox; the group no longer steps raft
		}
	}()
	for {
		g.mu.Lock()
		if g.stopped {
			g.scheduled = false
			g.mu.Unlock()
			g.finish()
			return
		}
		msgs, fns, ticks, tickedAt := g.msgs, g.fns, g.ticks, g.tickedAt
		g.msgs, g.fns, g.ticks = nil, nil, 0
		if len(msgs) == 0 && len(fns) == 0 && ticks == 0 && !g.rn.HasReady() {
			g.scheduled = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		start := time.Now()
		if ticks > 0 {
			g.host.observeWait(g, start.Sub(tickedAt), ticks)
		}
		if g.failed != nil {
			// Raft input is dropped; closures still run, so nobody waits
			// for the group in vain (they see it failed). The owner
			// reopens the replica.
			for _, fn := range fns {
				fn(Loop{g})
			}
			continue
		}
		// Messages are stepped before ticks: a leader that was kept from
		// running must see the responses that arrived meanwhile before
		// its check-quorum tick counts its followers as silent (it would
		// step down from a healthy quorum). Ticks that piled up while the
		// group waited for a worker count as one: time this node could not
		// act in is not time its peers were silent.
		progressed := false
		for i := range msgs {
			if msgs[i].Type == raftpb.MsgTimeoutNow && g.repairUntil.Load() > 0 {
				continue
			}
			g.learnCatchUpTarget(msgs[i])
			if g.awaitingSnapshot && msgs[i].Type == raftpb.MsgApp && msgs[i].Index == 0 {
				// The log from its first entry would be replayed onto no
				// configuration at all; the leader sends a snapshot once
				// its log no longer starts there.
				continue
			}
			if t := msgs[i].Type; t == raftpb.MsgAppResp || t == raftpb.MsgHeartbeatResp || t == raftpb.MsgStorageAppendResp {
				progressed = true
			}
			if m := &msgs[i]; m.Type == raftpb.MsgAppResp && m.From != g.host.cfg.NodeID {
				g.noteEmptyLog(m)
			}
			if err := g.rn.Step(msgs[i]); err != nil && err != raft.ErrStepPeerNotFound {
				g.logger.Debug("step", "type", msgs[i].Type, "from", msgs[i].From, "err", err)
			}
		}
		// A repairing replica does not tick, so it never times out into an
		// election, and ignores leadership transfers to it.
		if ticks > 0 && g.repairUntil.Load() == 0 {
			g.rn.Tick()
		}
		for _, fn := range fns {
			fn(Loop{g})
		}
		g.handleReadies()
		if po, ok := g.sm.(ProgressObserver); ok && progressed && g.failed == nil && g.soft.RaftState == raft.StateLeader {
			po.Progressed(Loop{g})
		}
		g.host.observeRound(g, time.Since(start), len(msgs))
	}
}

func (g *Group) handleReadies() {
	var out []Envelope
	for g.failed == nil && g.rn.HasReady() {
		rd := g.rn.Ready()
		if rd.HardState.Term != 0 && rd.HardState.Term != g.term {
			g.term = rd.HardState.Term
		}
		for _, rs := range rd.ReadStates {
			if ch, ok := g.reads[string(rs.RequestCtx)]; ok {
				delete(g.reads, string(rs.RequestCtx))
				ch <- rs.Index
			}
		}
		if rd.SoftState != nil && (rd.SoftState.Lead != g.soft.Lead || rd.SoftState.RaftState != g.soft.RaftState) {
			g.roleChanged(*rd.SoftState)
		}
		for _, m := range rd.Messages {
			switch m.To {
			case raft.LocalAppendThread:
				g.handleAppend(m)
			case raft.LocalApplyThread:
				g.handleApply(m)
			default:
				g.withholdVote(&m)
				if m.Type == raftpb.MsgApp && g.learners[m.To] && len(m.Entries) > 0 && !g.host.learnerSendAllowed(m.Size()) {
					// Over the learners' budget: dropped. The learner
					// rejects the next append (it does not follow on) or
					// heartbeat round, and raft sends again from where the
					// learner stands. (Reporting it unreachable instead
					// would make raft probe from its last acknowledged
					// entry and send again what is already on the way.)
					continue
				}
				out = append(out, Envelope{Group: g.id, Msg: m})
			}
		}
	}
	g.host.send(out)
	for _, e := range out {
		if e.Msg.Type == raftpb.MsgSnap {
			// Sends are not acknowledged one by one: report the snapshot
			// sent, as etcd's server does once it is on the wire. Raft then
			// probes the follower; one that did not get it is behind the
			// log's start again and is sent another. Without the report a
			// lost snapshot would leave the follower paused for good.
			g.rn.ReportSnapshot(e.Msg.To, raft.SnapshotFinish)
		}
	}
	bs := g.rn.BasicStatus()
	g.releaseEntries(bs)
	g.publishStatus(bs)
}

func (g *Group) publishStatus(bs raft.BasicStatus) {
	st := &Status{
		Lead: bs.Lead, Term: bs.Term, Role: bs.RaftState,
		Commit: bs.Commit, Applied: bs.Applied, LastIndex: g.log.LastIndex(), Failed: g.failed,
	}
	if g.failed != nil {
		// It no longer takes part: it leads nothing, whatever raft's
		// state last said.
		st.Role, st.Lead = raft.StateFollower, 0
	}
	g.status.Store(st)
}

// releaseEntries lets go of the cached entries nothing needs any more:
// applied here and, on a leader, matched by every follower and learner.
func (g *Group) releaseEntries(bs raft.BasicStatus) {
	upTo := bs.Applied
	if bs.RaftState == raft.StateLeader {
		self := g.host.cfg.NodeID
		g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			if id != self {
				upTo = min(upTo, pr.Match)
			}
		})
	}
	g.storage.release(upTo, bs.Applied)
}

// noteEmptyLog records whether a member's answer to an append says its
// log is empty (a rejection whose hint is index 0).
func (g *Group) noteEmptyLog(m *raftpb.Message) {
	switch {
	case m.Reject && m.RejectHint == 0:
		if g.emptyLogs == nil {
			g.emptyLogs = map[uint64]bool{}
		}
		g.emptyLogs[m.From] = true
	case !m.Reject && m.Index > 0:
		// (A member that ignores a snapshot not naming it answers with
		// index 0: its log is still empty.)
		delete(g.emptyLogs, m.From)
	}
}

func (g *Group) roleChanged(ss raft.SoftState) {
	prev := g.soft
	g.soft = ss
	clear(g.emptyLogs)
	term := g.rn.BasicStatus().Term
	if prev.Lead != 0 && ss.Lead == 0 {
		g.leaderless = time.Now()
	}
	if ss.Lead != 0 && prev.Lead != ss.Lead && g.host.cfg.Observer != nil {
		g.host.cfg.Observer.LeaderElected(g.id, ss.Lead, term, time.Since(g.leaderless))
	}
	if ss.Lead == 0 && prev.Lead == 0 {
		// still none
	} else if ss.Lead != prev.Lead {
		g.logger.Debug("leader changed", "leader", ss.Lead, "term", term, "role", ss.RaftState.String())
	}
	g.sm.RoleChanged(ss, term)
}

// handleAppend writes what a MsgStorageAppend carries and arranges for its
// responses to be delivered once it is durable. Appends keep their order:
// while one waits for disk space, the ones after it wait behind it.
func (g *Group) handleAppend(m raftpb.Message) {
	if len(g.stalled) > 0 {
		g.stalled = append(g.stalled, m)
		return
	}
	g.tryAppend(m)
}

// retryStalled retries the appends that wait for disk space, in order.
func (g *Group) retryStalled() {
	pending := g.stalled
	g.stalled = nil
	for i, m := range pending {
		if !g.tryAppend(m) {
			g.stalled = append(g.stalled, pending[i+1:]...)
			return
		}
	}
}

// stallRetry is how often an append that found the disk full is retried.
const stallRetry = time.Second

// tryAppend writes m. A full disk stalls it (false): it is retried later,
// and raft, which cannot apply what is not durable here, waits; the
// partition serves again once space is freed. Any other storage error
// stops the group.
func (g *Group) tryAppend(m raftpb.Message) bool {
	if m.Snapshot != nil && !raft.IsEmptySnap(*m.Snapshot) {
		if err := g.installSnapshot(*m.Snapshot); err != nil {
			g.fail(err)
			return true
		}
		g.checkRepaired(m.Snapshot.Metadata.Index)
	}
	hs := raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
	if !raft.IsEmptyHardState(hs) {
		g.log.SetHardState(storage.HardState{Term: hs.Term, Vote: hs.Vote, Commit: hs.Commit})
	}
	ents := make([]storage.Entry, len(m.Entries))
	for i, e := range m.Entries {
		ents[i] = storage.Entry{Index: e.Index, Term: e.Term, Type: storage.EntryType(e.Type), Data: e.Data}
	}
	resps := m.Responses
	self := g.host.cfg.NodeID
	var last uint64
	if n := len(m.Entries); n > 0 {
		last = m.Entries[n-1].Index
	}
	var lastTerm uint64
	if n := len(m.Entries); n > 0 {
		lastTerm = m.Entries[n-1].Term
	}
	err := g.log.Append(ents, func(err error) {
		if errors.Is(err, storage.ErrTruncated) {
			// Raft replaced these entries before they were durable: they
			// are not ours to acknowledge, and never will be.
			return
		}
		if err != nil {
			g.Do(func(l Loop) { l.g.fail(fmt.Errorf("log append: %w", err)) })
			return
		}
		var remote []Envelope
		var local []raftpb.Message
		for _, r := range resps {
			if r.To == self {
				local = append(local, r)
			} else {
				g.withholdVote(&r)
				remote = append(remote, Envelope{Group: g.id, Msg: r})
			}
		}
		g.host.send(remote)
		if len(local) == 0 && last == 0 {
			return
		}
		g.mu.Lock()
		if g.stopped {
			g.mu.Unlock()
			return
		}
		g.msgs = append(g.msgs, local...)
		if last > 0 {
			g.fns = append(g.fns, func(l Loop) {
				if l.g.failed != nil {
					return
				}
				l.g.checkRepaired(last)
				l.g.sm.Persisted(last, lastTerm)
			})
		}
		g.scheduleLocked()
	})
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		if !g.diskFull.Swap(true) {
			g.logger.Error("disk full: appends wait for space", "err", err)
		}
		g.stalled = append([]raftpb.Message{m}, g.stalled...)
		time.AfterFunc(stallRetry, func() { g.Do(func(l Loop) { l.g.retryStalled() }) })
		return false
	}
	if err != nil {
		g.storage.forget()
		g.fail(fmt.Errorf("log append: %w", err))
		return true
	}
	if g.diskFull.Swap(false) {
		g.logger.Info("disk space is back; appends resumed")
	}
	if len(m.Entries) > 0 {
		g.storage.remember(m.Entries)
		g.sm.Appended(m.Entries)
	}
	return true
}

// installSnapshot replaces the log and the state machine with a snapshot
// from the leader, durably, before raft hears it was applied.
func (g *Group) installSnapshot(snap raftpb.Snapshot) error {
	r, ok := g.sm.(SnapshotRestorer)
	if !ok {
		return fmt.Errorf("snapshot installation is not supported for this group (index %d)", snap.Metadata.Index)
	}
	conf, err := encodeConfs([]confAt{{index: snap.Metadata.Index, conf: snap.Metadata.ConfState}})
	if err != nil {
		return err
	}
	if m, ok := r.(SnapshotMaker); ok {
		// The log is the state: it restarts after the snapshot, nothing is
		// saved beside it.
		next, err := m.RestartOffset(snap.Data)
		if err != nil {
			return fmt.Errorf("snapshot at %d: %w", snap.Metadata.Index, err)
		}
		if err := g.log.Reset(snap.Metadata.Index, snap.Metadata.Term, next); err != nil {
			return fmt.Errorf("install snapshot: %w", err)
		}
		if err := g.log.SetConfState(conf); err != nil {
			return fmt.Errorf("install snapshot: %w", err)
		}
	} else {
		s := storage.Snapshot{Index: snap.Metadata.Index, Term: snap.Metadata.Term, Conf: conf, Data: snap.Data}
		if err := g.log.InstallSnapshot(s, 0); err != nil {
			return fmt.Errorf("install snapshot: %w", err)
		}
	}
	g.storage.forget()
	g.awaitingSnapshot = false
	g.setLearners(snap.Metadata.ConfState)
	if err := r.Restore(snap); err != nil {
		return fmt.Errorf("restore snapshot at %d: %w", snap.Metadata.Index, err)
	}
	g.logger.Info("installed a snapshot from the leader", "index", snap.Metadata.Index, "term", snap.Metadata.Term, "bytes", len(snap.Data))
	return nil
}

// handleApply feeds committed entries to the state machine, applies
// configuration changes, and steps the response back.
//
// A configuration change takes effect before the state machine is given
// its entry, so that a snapshot the state machine takes as of an applied
// entry is taken with the configuration in force there.
func (g *Group) handleApply(m raftpb.Message) {
	ents := m.Entries
	for len(ents) > 0 && g.failed == nil {
		// A run: a configuration change, if one comes first, then the
		// entries up to the next one.
		n := 0
		if isConfChange(ents[0]) {
			g.applyConfChange(ents[0])
			n = 1
		}
		for n < len(ents) && !isConfChange(ents[n]) {
			n++
		}
		g.sm.Apply(ents[:n])
		ents = ents[n:]
	}
	for _, r := range m.Responses {
		if err := g.rn.Step(r); err != nil {
			g.logger.Debug("step apply response", "err", err)
		}
	}
}

func (g *Group) setLearners(cs raftpb.ConfState) {
	g.learners = map[uint64]bool{}
	for _, id := range append(slices.Clone(cs.Learners), cs.LearnersNext...) {
		g.learners[id] = true
	}
}

func isConfChange(e raftpb.Entry) bool {
	return e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2
}

func (g *Group) applyConfChange(e raftpb.Entry) {
	var cc raftpb.ConfChangeI
	if e.Type == raftpb.EntryConfChange {
		var c raftpb.ConfChange
		if err := c.Unmarshal(e.Data); err != nil {
			g.fail(fmt.Errorf("decode conf change at %d: %w", e.Index, err))
			return
		}
		cc = c
	} else {
		var c raftpb.ConfChangeV2
		if err := c.Unmarshal(e.Data); err != nil {
			g.fail(fmt.Errorf("decode conf change at %d: %w", e.Index, err))
			return
		}
		cc = c
	}
	cs := g.rn.ApplyConfChange(cc)
	confs, err := decodeConfs(g.log.ConfState())
	if err == nil {
		var b []byte
		if b, err = encodeConfs(withConf(confs, e.Index, *cs, g.log.FirstIndex())); err == nil {
			err = g.log.SetConfState(b)
		}
	}
	if err != nil {
		g.fail(fmt.Errorf("persist configuration: %w", err))
		return
	}
	g.setLearners(*cs)
	g.logger.Info("configuration changed", "index", e.Index, "voters", cs.Voters, "learners", cs.Learners, "outgoing", cs.VotersOutgoing, "learners_next", cs.LearnersNext)
}

// fail stops the group from taking part in raft after a storage error; the
// log must be reopened (which recovers from disk) before it can rejoin. A
// leader first asks its most caught-up follower to take over at once
// (raft's MsgTimeoutNow, as a leadership transfer sends), so the partition
// does not wait an election timeout for a leader that stopped.
func (g *Group) fail(err error) {
	if g.failed != nil {
		return
	}
	g.failed = err
	g.logger.Error("raft group failed: it answers with a storage error until it is reopened", "err", err)
	g.handOver()
	g.storage.forget()
	g.sm.Failed(err)
	g.publishStatus(g.rn.BasicStatus())
}

// handOver sends MsgTimeoutNow to the voter with the most entries, if this
// node leads. The follower campaigns at once; raft's vote rules still
// decide, so a follower missing committed entries cannot win.
func (g *Group) handOver() {
	st := g.rn.Status()
	if st.RaftState != raft.StateLeader {
		return
	}
	self := g.host.cfg.NodeID
	var best, bestMatch uint64
	for id, pr := range st.Progress {
		if id == self || pr.IsLearner {
			continue
		}
		if best == 0 || pr.Match > bestMatch {
			best, bestMatch = id, pr.Match
		}
	}
	if best == 0 {
		return
	}
	g.logger.Info("handing leadership over after a storage error", "to", best, "term", st.Term)
	g.host.send([]Envelope{{Group: g.id, Msg: raftpb.Message{Type: raftpb.MsgTimeoutNow, From: self, To: best, Term: st.Term}}})
}

// forgetLeader drops a leader known to be dead, and campaigns if this node
// is its successor (the lowest other voter).
func (g *Group) forgetLeader(dead uint64) {
	if g.rn.BasicStatus().Lead != dead {
		return
	}
	if err := g.rn.ForgetLeader(); err != nil {
		return
	}
	g.logger.Info("leader is down; forgetting it", "leader", dead)
	succ := uint64(0)
	for id := range g.rn.Status().Config.Voters.IDs() {
		if id != dead && (succ == 0 || id < succ) {
			succ = id
		}
	}
	if succ == g.host.cfg.NodeID {
		time.AfterFunc(campaignDelay, func() {
			g.Do(func(l Loop) {
				if l.g.rn.BasicStatus().Lead == 0 {
					l.g.campaign()
				}
			})
		})
	}
}

// Fail fails the group with err (a storage error its owner found, such as
// damage a scrub read), as if the group had met it.
func (g *Group) Fail(err error) { g.Do(func(l Loop) { l.g.fail(err) }) }

// Failed returns the error that stopped the group, if any.
func (g *Group) Failed() error { return g.Status().Failed }
