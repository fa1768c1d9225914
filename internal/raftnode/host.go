package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/time/rate"

	"github.com/chronik-stream/chronik/internal/storage"
)

// GroupID names a raft group in the whole cluster.
type GroupID uint64

// Envelope is a raft message of one group, as the transport carries it.
type Envelope struct {
	Group GroupID
	Msg   raftpb.Message
}

// Transport carries messages to other nodes. Send must not block: it queues.
type Transport interface {
	Send(msgs []Envelope)
}

// Config configures a Host.
type Config struct {
	NodeID uint64
	// TickInterval is the raft heartbeat interval; elections take
	// ElectionTicks of them.
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	// MaxSizePerMsg bounds the entries of one append message.
	MaxSizePerMsg uint64
	// OneEntryPerMsg sends one entry per append message
	// (raft.advanced.batch_append_entries = false), whatever MaxSizePerMsg.
	OneEntryPerMsg bool
	// MaxInflightMsgs bounds append messages in flight per follower.
	MaxInflightMsgs int
	// MaxUncommittedEntriesSize makes proposals fail fast once a leader
	// holds this many uncommitted bytes (0: no limit).
	MaxUncommittedEntriesSize uint64
	// EntryCacheBytes bounds the entries all groups keep in memory
	// together to serve raft's reads (0: 64 MiB); each group also keeps at
	// most 32 MiB, of which 4 MiB already applied.
	EntryCacheBytes int64
	// Workers is the number of goroutines driving groups (0: GOMAXPROCS).
	Workers int
	Logger  *slog.Logger
	// Observer, if set, is told about elections.
	Observer Observer
	// LearnerBytesPerSec bounds, node-wide, the bytes of appends sent to
	// learners (replicas being added, catching up); 0: no bound. An append
	// over the bound is not sent; raft sends it again once the learner
	// shows it is missing.
	LearnerBytesPerSec int64
}

// Observer receives events for metrics. Calls come from workers and must
// be quick.
type Observer interface {
	// LeaderElected is called when a group gets a leader after having none,
	// with the time it was without one.
	LeaderElected(g GroupID, lead uint64, term uint64, without time.Duration)
	// Round is called after each round of a group: how long it waited for
	// a worker since its oldest pending tick (0 if it had none), and how
	// long the round took.
	Round(g GroupID, waited, took time.Duration)
}

// Host drives the raft groups of one node.
type Host struct {
	cfg       Config
	transport Transport
	logger    *slog.Logger

	mu     sync.RWMutex
	groups map[GroupID]*Group

	queue scheduler
	cache cacheBound
	// learnerRate bounds appends to learners; nil: no bound.
	learnerRate *rate.Limiter
	// learnerBytes counts entry bytes sent to learners, learnerThrottled
	// the appends to them the bound held back.
	learnerBytes, learnerThrottled atomic.Uint64
	stop                           chan struct{}
	wg                             sync.WaitGroup
}

// NewHost starts the workers and the ticker. transport may be nil on a
// single node.
func NewHost(cfg Config, transport Transport) *Host {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.MaxSizePerMsg == 0 {
		cfg.MaxSizePerMsg = 1 << 20
	}
	if cfg.MaxInflightMsgs <= 0 {
		cfg.MaxInflightMsgs = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.EntryCacheBytes <= 0 {
		cfg.EntryCacheBytes = 64 << 20
	}
	h := &Host{
		cfg: cfg, transport: transport, logger: cfg.Logger,
		groups: map[GroupID]*Group{}, stop: make(chan struct{}),
	}
	h.queue.init()
	h.cache.limit = cfg.EntryCacheBytes
	if cfg.LearnerBytesPerSec > 0 {
		// A burst of one message at least, so that a message larger than
		// a second's budget still goes, alone.
		h.learnerRate = rate.NewLimiter(rate.Limit(cfg.LearnerBytesPerSec), int(max(cfg.LearnerBytesPerSec, int64(cfg.MaxSizePerMsg)+1<<16)))
	}
	for range cfg.Workers {
		h.wg.Add(1)
		go h.work()
	}
	h.wg.Add(1)
	go h.tick()
	return h
}

// learnerSendAllowed reports whether an append of size bytes to a learner
// fits the node's learner budget now (taking it if so).
func (h *Host) learnerSendAllowed(size int) bool {
	if h.learnerRate == nil || h.learnerRate.AllowN(time.Now(), size) {
		h.learnerBytes.Add(uint64(size))
		return true
	}
	h.learnerThrottled.Add(1)
	return false
}

// LearnerStats returns the bytes of appends sent to learners and the
// appends to them the bound held back, since start.
func (h *Host) LearnerStats() (sent, throttled uint64) {
	return h.learnerBytes.Load(), h.learnerThrottled.Load()
}

// CachedBytes returns the bytes of entry data the groups keep in memory.
func (h *Host) CachedBytes() int64 { return h.cache.used.Load() }

// NodeID returns this node's id.
func (h *Host) NodeID() uint64 { return h.cfg.NodeID }

// GroupConfig describes a group to host.
type GroupConfig struct {
	ID  GroupID
	Log *storage.Log
	SM  StateMachine
	// Peers are the initial voters of a new group (an empty log with no
	// configuration); ignored when the log has one.
	Peers []uint64
	// Learners are the initial non-voting members of a new group.
	Learners []uint64
	// Join starts a group with no configuration and an empty log: a member
	// the group's leader is adding, which takes the log only from a
	// snapshot (whose configuration names it), never from its first entry
	// (which would be replayed onto no configuration). Peers are ignored.
	Join bool
	// CatchUp marks a replica joining a group whose configuration has
	// changed since Peers: with an empty log, it neither campaigns nor
	// votes until it holds what the leader had committed when it first
	// heard from it. Peers may name it (it was a voter before being
	// removed), and the configurations it replays from the log's start
	// are the group's past, not its present. Recorded in the log, so a
	// restart meanwhile keeps it.
	CatchUp bool
	// CampaignNow starts an election at once instead of after an election
	// timeout: the preferred leader of a new group uses it.
	CampaignNow bool
	// Applied is the last index the state machine holds; committed entries
	// after it are delivered to Apply.
	Applied uint64
}

var (
	// ErrGroupExists is returned when a group id is already hosted.
	ErrGroupExists = errors.New("raft group already hosted")
	// ErrStopped is returned once the host or group has stopped.
	ErrStopped = errors.New("raft host stopped")
)

// AddGroup starts hosting a group.
func (h *Host) AddGroup(gc GroupConfig) (*Group, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.stop:
		return nil, ErrStopped
	default:
	}
	if _, ok := h.groups[gc.ID]; ok {
		return nil, fmt.Errorf("group %d: %w", gc.ID, ErrGroupExists)
	}
	g, err := newGroup(h, gc)
	if err != nil {
		return nil, err
	}
	if b, ok := gc.SM.(GroupBinder); ok {
		b.BindGroup(g)
	}
	h.groups[gc.ID] = g
	h.queue.push(g) // let it start (a single voter campaigns at once)
	return g, nil
}

// Group returns the hosted group with id, or nil.
func (h *Host) Group(id GroupID) *Group {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.groups[id]
}

// RemoveGroup stops hosting a group. Its log is left to the caller.
func (h *Host) RemoveGroup(id GroupID) {
	h.mu.Lock()
	g := h.groups[id]
	delete(h.groups, id)
	h.mu.Unlock()
	if g != nil {
		g.stopAndWait()
	}
}

// Deliver hands messages from the transport to their groups. Messages for
// unknown groups are dropped (raft retries).
func (h *Host) Deliver(envs []Envelope) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, e := range envs {
		if g := h.groups[e.Group]; g != nil {
			g.enqueueMsg(e.Msg)
		}
	}
}

// ReportUnreachable tells every group led here that peer cannot be reached,
// so raft probes it instead of streaming.
func (h *Host) ReportUnreachable(peer uint64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, g := range h.groups {
		g.Do(func(l Loop) { l.g.rn.ReportUnreachable(peer) })
	}
}

// PeerDown tells the groups led by peer that it is gone (its transport
// refuses connections, so its process is not running). Followers forget it
// as leader, so they grant votes at once instead of waiting out their
// leader lease, and the lowest-numbered other voter campaigns. A wrong
// report costs an election, never safety.
func (h *Host) PeerDown(peer uint64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, g := range h.groups {
		g.Do(func(l Loop) { l.g.forgetLeader(peer) })
	}
}

// slowRound is how long a round of a group (or its wait for a worker) may
// take before it is logged: a quarter of the election timeout, since a
// leader kept from sending heartbeats for the whole timeout loses its
// leadership.
func (h *Host) slowRound() time.Duration {
	return h.cfg.TickInterval * time.Duration(h.cfg.ElectionTicks) / 4
}

// observeWait records how long a group with pending ticks waited for a
// worker, and logs a wait long enough to threaten its leadership.
func (h *Host) observeWait(g *Group, waited time.Duration, ticks int) {
	if waited >= h.slowRound() {
		g.logger.Warn("raft group waited long for a worker: its heartbeats and elections were held up", "waited", waited, "ticks", ticks, "role", g.soft.RaftState.String())
	}
	if h.cfg.Observer != nil {
		h.cfg.Observer.Round(g.id, waited, 0)
	}
}

// observeRound records a round's duration, and logs a long one.
func (h *Host) observeRound(g *Group, took time.Duration, msgs int) {
	if took >= h.slowRound() {
		g.logger.Warn("raft group round was slow: the groups behind it on its worker waited", "took", took, "messages", msgs, "role", g.soft.RaftState.String(), "last_index", g.log.LastIndex())
	}
	if h.cfg.Observer != nil {
		h.cfg.Observer.Round(g.id, 0, took)
	}
}

// campaignDelay lets the other followers forget a dead leader before the
// successor asks for their votes.
const campaignDelay = 50 * time.Millisecond

// Groups returns the hosted groups.
func (h *Host) Groups() []*Group {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*Group, 0, len(h.groups))
	for _, g := range h.groups {
		out = append(out, g)
	}
	return out
}

// Stop stops every group and the workers.
func (h *Host) Stop() {
	h.mu.Lock()
	select {
	case <-h.stop:
		h.mu.Unlock()
		return
	default:
	}
	close(h.stop)
	groups := h.groups
	h.groups = map[GroupID]*Group{}
	h.mu.Unlock()
	for _, g := range groups {
		g.stopAndWait()
	}
	h.queue.close()
	h.wg.Wait()
}

func (h *Host) work() {
	defer h.wg.Done()
	for {
		g, ok := h.queue.pop()
		if !ok {
			return
		}
		g.process()
	}
}

func (h *Host) tick() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.mu.RLock()
			for _, g := range h.groups {
				g.enqueueTick()
			}
			h.mu.RUnlock()
		}
	}
}

func (h *Host) send(envs []Envelope) {
	if len(envs) > 0 && h.transport != nil {
		h.transport.Send(envs)
	}
}

// raftConfig builds the etcd raft configuration of a group.
func (h *Host) raftConfig(st raft.Storage, applied uint64, logger *slog.Logger) *raft.Config {
	return &raft.Config{
		ID:                 h.cfg.NodeID,
		ElectionTick:       h.cfg.ElectionTicks,
		HeartbeatTick:      h.cfg.HeartbeatTicks,
		Storage:            st,
		Applied:            applied,
		AsyncStorageWrites: true,
		MaxSizePerMsg:      h.maxSizePerMsg(),
		// A round applies at most this much, so that one busy group
		// does not keep the others on its worker (and their heartbeats)
		// waiting.
		MaxCommittedSizePerReady:  8 << 20,
		MaxUncommittedEntriesSize: h.cfg.MaxUncommittedEntriesSize,
		MaxInflightMsgs:           h.cfg.MaxInflightMsgs,
		MaxInflightBytes:          h.maxInflightBytes(),
		CheckQuorum:               true,
		PreVote:                   true,
		// A leader whose removal from the group's voters takes effect
		// stops leading a group it is no longer in.
		StepDownOnRemoval: true,
		// Proposals compute data from leader state (producer sequences),
		// so only the leader may propose.
		DisableProposalForwarding: true,
		Logger:                    raftLogger{logger},
	}
}

// inflightBytesPerFollower bounds the bytes of appends a leader has in
// flight to one follower. Without it a follower far behind (a new
// replica, one back from a long absence) is sent max_inflight_messages
// appends of up to MaxSizePerMsg each at once, hundreds of MiB with large
// batches: more than the transport queues for a peer, so most are dropped
// and read from disk and sent again, and the follower catches up at a
// crawl. 16 MiB in flight still fills a fast link at a few ms of round
// trip.
const inflightBytesPerFollower = 16 << 20

func (h *Host) maxInflightBytes() uint64 {
	return max(inflightBytesPerFollower, h.maxSizePerMsg())
}

// maxSizePerMsg is raft's MaxSizePerMsg: 0 makes raft send at most one
// entry per append message.
func (h *Host) maxSizePerMsg() uint64 {
	if h.cfg.OneEntryPerMsg {
		return 0
	}
	return h.cfg.MaxSizePerMsg
}

// scheduler is an unbounded FIFO of groups with work. A group is in it at
// most once (Group.scheduled), so no two workers run one group.
type scheduler struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []*Group
	closed bool
}

func (s *scheduler) init() { s.cond = sync.NewCond(&s.mu) }

func (s *scheduler) push(g *Group) {
	s.mu.Lock()
	s.items = append(s.items, g)
	s.mu.Unlock()
	s.cond.Signal()
}

func (s *scheduler) pop() (*Group, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.items) == 0 && !s.closed {
		s.cond.Wait()
	}
	if len(s.items) == 0 {
		return nil, false
	}
	g := s.items[0]
	s.items[0] = nil
	s.items = s.items[1:]
	return g, true
}

func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cond.Broadcast()
}

// raftLogger adapts slog to raft.Logger.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)              { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(f string, v ...any)   { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Error(v ...any)              { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(f string, v ...any)   { r.l.Error(fmt.Sprintf(f, v...)) }
func (r raftLogger) Info(v ...any)               { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(f string, v ...any)    { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Warning(v ...any)            { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(f string, v ...any) { r.l.Warn(fmt.Sprintf(f, v...)) }
func (r raftLogger) Fatal(v ...any)              { r.l.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(f string, v ...any) {
	r.l.Error(fmt.Sprintf(f, v...))
	panic(fmt.Sprintf(f, v...))
}
func (r raftLogger) Panic(v ...any) { r.l.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(f string, v ...any) {
	r.l.Error(fmt.Sprintf(f, v...))
	panic(fmt.Sprintf(f, v...))
}
