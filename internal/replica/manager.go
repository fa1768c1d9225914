package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"

	"github.com/chronik-stream/chronik/internal/membudget"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/internal/storage"
)

// Settings are the node-wide replica settings.
type Settings struct {
	NodeID uint64
	// A follower stays in the ISR while it is at most LagMaxEntries behind
	// the leader's last entry and has caught up within LagMax.
	LagMaxEntries uint64
	LagMax        time.Duration
	// ISRInterval is how often leaders re-evaluate their ISR.
	ISRInterval time.Duration
	// PreferredLeaders moves a partition's leadership back to its
	// preferred replica (the first of its assignment) once that replica is
	// in sync, so leaders stay spread as assigned (Kafka's
	// auto.leader.rebalance).
	PreferredLeaders bool
	// OnLeadership, if set, is told when this node becomes the ready leader
	// of a partition (true) or stops leading it (false). It runs on the
	// partition's raft worker, in order, and must not block.
	OnLeadership func(tp TopicPartition, leading bool)
	// MaxUncommittedBytes bounds the bytes of produced batches this node's
	// leaders hold accepted but not committed (0: 256 MiB); produces wait
	// for room.
	MaxUncommittedBytes int64
	// ScrubStart is how long after the manager starts the background scrub
	// of every log begins (0: 10 s).
	ScrubStart time.Duration
	// ProducerIDExpiration drops the state of an idempotent producer whose
	// last batch is this old (kafka.producer_id_expiration_ms); 0 keeps it.
	ProducerIDExpiration time.Duration
	// OnLeaderState, if set, is told by a ready leader its term and ISR
	// whenever it becomes leader or its ISR changes, so they can be
	// published. Same rules as OnLeadership.
	OnLeaderState func(tp TopicPartition, term uint64, isr []uint64)
	// Decompress holds the batches this node's replicas decompress (to
	// check or recompress a produced batch, to find a timestamp),
	// node-wide (nil: a budget of recordbatch.MaxDecompressed).
	Decompress recordbatch.Budget
}

// Manager holds the partition replicas of a node.
type Manager struct {
	settings Settings
	store    *storage.Store
	host     *raftnode.Host
	logger   *slog.Logger
	obs      Observer

	// life serializes the opening, removal and recovery of replicas; mu
	// guards only the map, so lookups never wait for a log to open.
	life  sync.Mutex
	mu    sync.RWMutex
	parts map[TopicPartition]*Partition
	// retries is when each failed replica is next reopened, and how many
	// attempts failed; guarded by life.
	retries map[TopicPartition]retry

	budget *byteBudget
	// snapshots counts the partition snapshots this node sent and
	// installed.
	snapshots *snapshotStats
	// reopening is set while a pass of reopenFailed runs.
	reopening atomic.Bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// retry paces the reopening of a failed replica.
type retry struct {
	at       time.Time
	attempts int
}

// Reopening a failed replica is tried after reopenFirst, then at doubling
// intervals up to reopenMax, while the cause (a full or failing disk, a
// read-only file system) persists.
const (
	reopenFirst = time.Second
	reopenMax   = 30 * time.Second
)

// NewManager starts a manager; obs may be nil.
func NewManager(s Settings, store *storage.Store, host *raftnode.Host, logger *slog.Logger, obs Observer) *Manager {
	if s.ISRInterval <= 0 {
		s.ISRInterval = 250 * time.Millisecond
	}
	if s.LagMax <= 0 {
		s.LagMax = 10 * time.Second
	}
	if s.LagMaxEntries == 0 {
		s.LagMaxEntries = 1000
	}
	if s.MaxUncommittedBytes <= 0 {
		s.MaxUncommittedBytes = 256 << 20
	}
	if s.ScrubStart <= 0 {
		s.ScrubStart = scrubStartDefault
	}
	if s.Decompress == nil {
		s.Decompress = membudget.NewRequests(recordbatch.MaxDecompressed, recordbatch.MaxDecompressed)
	}
	m := &Manager{settings: s, store: store, host: host, logger: logger, obs: obs, budget: newByteBudget(s.MaxUncommittedBytes), snapshots: &snapshotStats{},
		parts: map[TopicPartition]*Partition{}, retries: map[TopicPartition]retry{}, stop: make(chan struct{})}
	m.wg.Add(2)
	go m.maintain()
	go m.scrubLoop()
	return m
}

// Identity is what makes a replica the replica of one partition: its
// topic's id (a topic deleted and created again under the same name gets a
// new one) and its raft group, which is never reused.
type Identity struct {
	TopicID [16]byte
	Group   raftnode.GroupID
}

// Open starts the local replica of tp (creating its log if new) in raft
// group id.Group with the given replicas as initial voters. Its log is
// bound to the topic id: a log left by an earlier topic of the same name
// is never opened for it. A replica of tp already open with another
// identity is an error: the caller removes it first.
func (m *Manager) Open(tp TopicPartition, id Identity, replicas []uint64, cfg Config) (*Partition, error) {
	return m.open(tp, id, replicas, cfg, false)
}

// Join is Open for a replica added to a running group whose membership
// changed since it was created on initial (a reassignment): a replica
// with an empty log then catches up from the group's leader before it
// votes or campaigns. It may have been one of initial before it was
// removed, the only one even, and would otherwise elect itself in the
// group's first configuration and lead a second history of the partition.
func (m *Manager) Join(tp TopicPartition, id Identity, initial []uint64, cfg Config) (*Partition, error) {
	return m.open(tp, id, initial, cfg, true)
}

func (m *Manager) open(tp TopicPartition, id Identity, replicas []uint64, cfg Config, catchUp bool) (*Partition, error) {
	m.life.Lock()
	defer m.life.Unlock()
	if p := m.Get(tp); p != nil {
		if p.id != id {
			return nil, fmt.Errorf("open %s: a replica of an earlier topic of that name (id %x, group %d) is still open", tp, p.id.TopicID, p.id.Group)
		}
		return p, nil
	}
	name, err := storage.PartitionLog(tp.Topic, tp.Partition, id.TopicID)
	if err != nil {
		return nil, err
	}
	if ok, err := m.store.AdoptLegacyLog(tp.String(), name); err != nil {
		return nil, err
	} else if ok {
		m.logger.Warn("bound a log from an earlier data format to its topic id; had the topic been deleted and created again while this node was down, its old records would now be in the new topic", "partition", tp, "topic_id", fmt.Sprintf("%x", id.TopicID))
	}
	p, err := m.start(tp, id, name, replicas, cfg, catchUp, nil)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.parts[tp] = p
	m.mu.Unlock()
	return p, nil
}

// reopening says how a failed replica's log is reopened: what failed, and
// the last entry known to have reached the disk before it did.
type reopening struct {
	cause   error
	durable uint64
}

// start opens the log of a replica, rebuilds its state and starts its raft
// group. For a replica being reopened after a failure, entries past the
// last one known durable are dropped first (they may exist only in the
// page cache, and were never acknowledged), and damage that caused the
// failure is repaired from the other replicas.
func (m *Manager) start(tp TopicPartition, id Identity, name storage.LogName, replicas []uint64, cfg Config, catchUp bool, re *reopening) (*Partition, error) {
	l, err := m.store.OpenLog(name, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", tp, err)
	}
	var damage *storage.CorruptionError
	if re != nil {
		if last := l.LastIndex(); re.durable < last && re.durable >= l.Committed() {
			m.logger.Warn("dropping entries appended after the last successful sync before the failure", "partition", tp, "from_index", re.durable+1, "last_index", last)
			if err := l.TruncateAfter(re.durable); err != nil {
				l.Close()
				return nil, fmt.Errorf("reopen %s: %w", tp, err)
			}
		}
		if errors.As(re.cause, &damage) && len(replicas) > 1 {
			m.logger.Error("damaged log: repairing it from the other replicas", "partition", tp, "err", re.cause)
			if err := l.DiscardFrom(damage.Index); err != nil {
				l.Close()
				return nil, fmt.Errorf("reopen %s: %w", tp, err)
			}
		}
	}
	p := newPartition(tp, l, m.settings, cfg, slices.Clone(replicas), m.logger, m.obs)
	p.budget, p.snapshots = m.budget, m.snapshots
	err = p.rebuildProducers()
	if errors.As(err, &damage) && len(replicas) > 1 {
		// Rebuilding reads and checks every entry after the saved producer
		// table. A damaged one and all after it are dropped and fetched
		// again from the other replicas (the raft group refuses to vote
		// until they are back).
		m.logger.Error("damaged log: repairing it from the other replicas", "partition", tp, "err", err)
		if err = l.DiscardFrom(damage.Index); err == nil {
			p = newPartition(tp, l, m.settings, cfg, slices.Clone(replicas), m.logger, m.obs)
			p.budget, p.snapshots = m.budget, m.snapshots
			err = p.rebuildProducers()
		}
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("rebuild producer state of %s: %w", tp, err)
	}
	// The preferred replica of a brand-new partition campaigns at once, so
	// new topics have leaders in one round trip, spread as assigned.
	fresh := l.LastIndex() == 0 && replicas[0] == m.settings.NodeID && !catchUp
	p.id, p.logName, p.peers = id, name, slices.Clone(replicas)
	if _, err := m.host.AddGroup(raftnode.GroupConfig{ID: id.Group, Log: l, SM: p, Peers: replicas, Applied: l.Committed(), CampaignNow: fresh, CatchUp: catchUp}); err != nil {
		l.Close()
		return nil, err
	}
	return p, nil
}

// reopenFailed reopens the replicas whose raft group failed, each when its
// retry is due, so a partition recovers without a node restart once the
// cause is gone.
func (m *Manager) reopenFailed(now time.Time) {
	m.life.Lock()
	defer m.life.Unlock()
	for _, p := range m.Partitions() {
		cause := p.View().Failed
		if cause == nil {
			continue
		}
		r := m.retries[p.tp]
		if r.at.IsZero() {
			r.at = now.Add(reopenFirst)
			m.retries[p.tp] = r
		}
		if now.Before(r.at) {
			continue
		}
		np, err := m.reopen(p, cause)
		if err != nil {
			r.attempts++
			r.at = now.Add(min(reopenFirst<<min(r.attempts, 5), reopenMax))
			m.retries[p.tp] = r
			m.logger.Error("reopening a failed partition failed; trying again later", "partition", p.tp, "attempt", r.attempts, "next_in", r.at.Sub(now), "err", err)
			continue
		}
		delete(m.retries, p.tp)
		m.mu.Lock()
		m.parts[p.tp] = np
		m.mu.Unlock()
		m.logger.Info("failed partition reopened; it catches up from its log and the other replicas", "partition", p.tp, "cause", cause)
	}
}

// reopen stops a failed replica's group, closes its log and starts it
// again from what is on disk.
func (m *Manager) reopen(p *Partition, cause error) (*Partition, error) {
	durable := p.log.DurableIndex()
	m.host.RemoveGroup(p.id.Group)
	p.log.Close()
	// A replica still catching up keeps its durable record of it.
	return m.start(p.tp, p.id, p.logName, p.peers, p.Config(), false, &reopening{cause: cause, durable: durable})
}

// BudgetStats returns the state of the node's uncommitted produce budget.
func (m *Manager) BudgetStats() BudgetStats {
	return BudgetStats{Limit: m.budget.limit, Used: m.budget.used.Load(), Waits: m.budget.waits.Load()}
}

// SnapshotStats returns how many partition snapshots this node sent or
// installed, and their bytes.
func (m *Manager) SnapshotStats() (count, bytes uint64) {
	return m.snapshots.count.Load(), m.snapshots.bytes.Load()
}

// DataDir returns the directory holding the node's partition logs.
func (m *Manager) DataDir() string { return m.store.Dir() }

// Get returns the local replica of tp, or nil.
func (m *Manager) Get(tp TopicPartition) *Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.parts[tp]
}

// Partitions returns every local replica.
func (m *Manager) Partitions() []*Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*Partition, 0, len(m.parts))
	for _, p := range m.parts {
		out = append(out, p)
	}
	return out
}

// Remove stops the replica of tp; with deleteData its log goes too.
func (m *Manager) Remove(tp TopicPartition, deleteData bool) error {
	m.life.Lock()
	defer m.life.Unlock()
	m.mu.Lock()
	p := m.parts[tp]
	delete(m.parts, tp)
	m.mu.Unlock()
	delete(m.retries, tp)
	if p == nil {
		return nil
	}
	m.host.RemoveGroup(p.group.ID())
	p.log.Close()
	if deleteData {
		return m.store.RemoveLog(p.logName)
	}
	return nil
}

// Close stops the maintenance loop. Groups stop with the host; logs with
// the store.
func (m *Manager) Close() {
	close(m.stop)
	m.wg.Wait()
}

func (m *Manager) maintain() {
	defer m.wg.Done()
	t := time.NewTicker(m.settings.ISRInterval)
	defer t.Stop()
	var nextExpiry time.Time
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			for _, p := range m.Partitions() {
				if p.View().IsLeader {
					p.group.Do(p.refreshISR)
				}
			}
			if ttl := m.settings.ProducerIDExpiration; ttl > 0 && !now.Before(nextExpiry) {
				for _, p := range m.Partitions() {
					p.group.Do(func(raftnode.Loop) { p.expireProducers(now) })
				}
				nextExpiry = now.Add(producerExpiryCheck(ttl))
			}
			// Reopening reads logs from disk: it must not hold up the ISR
			// of every other partition.
			if !m.reopening.Swap(true) {
				m.wg.Add(1)
				go func() {
					defer m.wg.Done()
					defer m.reopening.Store(false)
					m.reopenFailed(now)
				}()
			}
		}
	}
}

// refreshISR re-evaluates which replicas are in sync, on a leader. A
// follower is in sync while it is within LagMaxEntries of the leader's last
// entry and reached the leader's last entry (as it was at some recent
// observation), while raft heard from it, within LagMax. The leader is
// always in its own ISR. When the ISR falls below min.insync.replicas,
// acks=all batches still waiting for more replicas fail with
// NOT_ENOUGH_REPLICAS_AFTER_APPEND, as in Kafka.
func (p *Partition) refreshISR(l raftnode.Loop) {
	st := l.RaftStatus()
	if !p.leader || p.failed != nil || st.RaftState != raft.StateLeader {
		// Raft may have stepped down in this very round, before the role
		// change reached the partition: its progress is gone, and an ISR
		// computed from it would be empty.
		return
	}
	now := time.Now()
	last := p.log.LastIndex()
	isr := []uint64{p.settings.NodeID}
	followers := make([]Follower, 0, len(st.Progress))
	for id, pr := range st.Progress {
		if id == p.settings.NodeID {
			continue
		}
		// Only a follower raft hears from counts as caught up; whether it
		// is in sync then depends on the lag limits alone, not on raft's
		// RecentActive, which check-quorum clears every election timeout
		// and would make the ISR flap.
		if pr.RecentActive && (pr.Match >= last || (p.obsIndex > 0 && pr.Match >= p.obsIndex)) {
			when := now
			if pr.Match < last {
				when = p.obsTime
			}
			if when.After(p.caughtUp[id]) {
				p.caughtUp[id] = when
			}
		}
		if !pr.IsLearner && followerInSync(pr, last, p.caughtUp[id], now, p.settings) {
			isr = append(isr, id)
		}
		followers = append(followers, Follower{ID: id, LagEntries: last - min(last, pr.Match), CaughtUp: p.caughtUp[id]})
	}
	slices.Sort(isr)
	slices.SortFunc(followers, func(a, b Follower) int { return cmp.Compare(a.ID, b.ID) })
	p.obsIndex, p.obsTime = last, now
	p.followers = followers
	if !slices.Equal(isr, p.isr) {
		// A new leader's followers joining its ISR is routine; a change
		// after the ISR was first full is news.
		level := slog.LevelDebug
		if p.isrWasFull {
			level = slog.LevelInfo
		}
		p.logger.Log(context.Background(), level, "ISR changed", "isr", isr, "was", p.isr, "term", p.term)
		p.isr = isr
		p.isrWasFull = p.isrWasFull || len(isr) == len(p.replicas)
	}
	voters := slices.Sorted(maps.Keys(st.Config.Voters.IDs()))
	if !slices.Equal(voters, p.replicas) {
		p.replicas = voters
	}
	if len(p.waitReplicas) > 0 {
		if len(p.isr) < p.minInsync() {
			for _, op := range p.waitReplicas {
				p.respond(op, kerr.NotEnoughReplicasAfterAppend)
			}
			p.waitReplicas = nil
		} else {
			p.answerReplicated(l)
		}
	}
	p.publish()
	p.maybeMoveToPreferred(l, st.Progress, last, now)
}

// followerInSync decides one follower's ISR membership (see refreshISR):
// it is at most LagMaxEntries behind the leader's last entry, it caught up
// with the leader within LagMax, and raft is not sending it a snapshot.
func followerInSync(pr tracker.Progress, last uint64, caughtUp, now time.Time, s Settings) bool {
	return last-min(last, pr.Match) <= s.LagMaxEntries &&
		now.Sub(caughtUp) <= s.LagMax && pr.State != tracker.StateSnapshot
}

// The scrubber reads every log in the background and checks its CRCs: a
// replica no longer reads its whole log when it opens (the producer table
// is saved), so damage to data at rest would otherwise go unseen until a
// consumer or a follower asked for it. It starts Settings.ScrubStart
// (scrubStartDefault) after the manager (not to compete with the opening
// of every log after a restart), reads at most scrubRate bytes a second,
// and runs again every scrubInterval.
const (
	scrubStartDefault = 10 * time.Second
	scrubRate         = 64 << 20
	scrubInterval     = 24 * time.Hour
)

func (m *Manager) scrubLoop() {
	defer m.wg.Done()
	wait := time.NewTimer(m.settings.ScrubStart)
	defer wait.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-wait.C:
		}
		for _, p := range m.Partitions() {
			if !m.scrub(p) {
				return
			}
		}
		wait.Reset(scrubInterval)
	}
}

// scrub checks one replica's log. Damage on a replica that has others
// fails it: it is reopened, and the damaged entries are dropped and
// fetched again from the other replicas. A replica that has no other copy
// keeps serving what is sound (reads never return damaged data) and
// reports the damage. It returns false when the manager stops.
func (m *Manager) scrub(p *Partition) bool {
	start := time.Now()
	read := 0
	stopped := false
	damage := p.log.ScrubWith(func(n int) bool {
		read += n
		// Stay under scrubRate: sleep until the bytes read so far are due.
		if due := time.Duration(float64(read) / scrubRate * float64(time.Second)); due > time.Since(start) {
			select {
			case <-m.stop:
				stopped = true
				return false
			case <-time.After(due - time.Since(start)):
			}
		}
		return true
	})
	if stopped {
		return false
	}
	if len(damage) == 0 {
		return true
	}
	p.damaged.Store(int64(len(damage)))
	if len(p.peers) > 1 {
		m.logger.Error("scrub found damaged entries: reopening the replica to fetch them again from the others", "partition", p.tp, "damaged_frames", len(damage), "first", damage[0])
		p.group.Fail(damage[0])
	} else {
		m.logger.Error("scrub found damaged entries in a partition with no other replica: they cannot be repaired; reads of them fail", "partition", p.tp, "damaged_frames", len(damage), "first", damage[0])
	}
	return true
}

// producerExpiryCheck is how often expired producers are looked for: a
// tenth of the expiration, between a second and Kafka's ten minutes.
func producerExpiryCheck(ttl time.Duration) time.Duration {
	return min(max(ttl/10, time.Second), 10*time.Minute)
}

// expireProducers drops idle producers' state; on the worker.
func (p *Partition) expireProducers(now time.Time) {
	if n := p.producers.expire(now.UnixMilli(), p.settings.ProducerIDExpiration); n > 0 {
		p.logger.Debug("expired idle producer ids", "count", n)
		p.publish()
	}
}

// Preferred-leader moves, as Kafka's leader imbalance check makes them:
// not while a restarting node catches up (preferredLeaderDelay after this
// node became leader), and not in the middle of a burst of writes, which
// a move would stall and could reorder for non-idempotent producers
// retrying: only after preferredQuiet without a produce, or, under
// constant load, once preferredLeaderMaxWait has passed.
const (
	preferredLeaderDelay   = 3 * time.Second
	preferredQuiet         = time.Second
	preferredLeaderMaxWait = 5 * time.Minute
)

// maybeMoveToPreferred transfers leadership to the preferred replica when
// it is in the ISR, has every entry and is reachable, at a quiet moment.
// A replica that died stays in the ISR for LagMax when nothing is written
// (it is not behind): a transfer to it would stall the partition's writes
// until raft gave it up. Raft heard from it since check-quorum last
// cleared RecentActive, and is streaming appends to it (a peer the
// transport reports unreachable is probed instead).
func (p *Partition) maybeMoveToPreferred(l raftnode.Loop, progress map[uint64]tracker.Progress, last uint64, now time.Time) {
	preferred := p.preferred.Load()
	if !p.settings.PreferredLeaders || preferred == p.settings.NodeID || now.Sub(p.leaderSince) < preferredLeaderDelay {
		return
	}
	busy := len(p.proposed)+len(p.waitPersist)+len(p.waitCommit)+len(p.waitReplicas) > 0 || now.Sub(p.lastProduce) < preferredQuiet
	if busy && now.Sub(p.leaderSince) < preferredLeaderMaxWait {
		return
	}
	pr, ok := progress[preferred]
	if !ok || pr.IsLearner || pr.Match < last || !slices.Contains(p.isr, preferred) ||
		!pr.RecentActive || pr.State != tracker.StateReplicate {
		return
	}
	p.logger.Info("moving leadership to the preferred replica", "to", preferred, "term", p.term)
	p.leaderSince = now // do not ask again at once if raft declines
	l.TransferLeader(preferred)
}

// rebuildProducers rebuilds the producer table before the group starts:
// the last saved table at or below the commit index, then the entries
// after it. Without a saved table it reads the whole log.
func (p *Partition) rebuildProducers() error {
	from := p.log.FirstIndex()
	// A table is saved only as of a committed index, whose entries this
	// log held durably (only durable entries are applied): one above the
	// commit index the checkpoint kept (it is written lazily, and a crash
	// can leave it behind) is still good, and that index was committed.
	idx, data, ok, err := p.log.LatestState(producerStateKind, p.log.LastIndex())
	var damage *storage.CorruptionError
	switch {
	case errors.As(err, &damage):
		p.logger.Warn("saved producer state is damaged; rebuilding it from the log", "err", err)
	case err != nil:
		return err
	case ok && idx > p.log.Committed():
		if err := p.log.Commit(idx); err != nil {
			return err
		}
	}
	committed := p.log.Committed()
	switch {
	case err != nil:
	case ok:
		if err := p.producers.load(data); err != nil {
			p.logger.Warn("saved producer state is unreadable; rebuilding it from the log", "err", err)
			p.producers = newProducerState()
		} else {
			from = max(from, idx+1)
			p.producersSaved = idx
		}
	}
	const chunk = 16 << 20
	for lo := from; lo <= p.log.LastIndex(); {
		ents, err := p.log.Entries(lo, p.log.LastIndex()+1, chunk)
		if err != nil {
			return err
		}
		for i := range ents {
			e := &ents[i]
			if !e.IsBatch() {
				continue
			}
			h, err := recordbatch.ParseHeader(e.Batch())
			if err != nil {
				return err
			}
			if h.ProducerID >= 0 {
				p.producers.record(&h, e.Index, h.BaseOffset, nil, e.Index <= committed)
			}
		}
		lo = ents[len(ents)-1].Index + 1
	}
	return nil
}

// The producer table is saved once producerSaveEvery entries or
// producerSaveBytes were committed since the last save: an open after a
// crash reads at most about that much of the log.
const (
	producerSaveEvery = 20000
	producerSaveBytes = 128 << 20
)

// maybeSaveProducers saves the committed producer table once enough was
// committed since the last save (or always, with force); on the worker.
func (p *Partition) maybeSaveProducers(force bool) {
	committed := p.log.Committed()
	if committed <= p.producersSaved || !force && committed-p.producersSaved < producerSaveEvery && p.bytesSinceSave < producerSaveBytes {
		return
	}
	data, err := p.producers.encodeCommitted()
	if err == nil {
		err = p.log.SaveState(producerStateKind, committed, data)
	}
	if err != nil {
		// Not saving costs a longer replay at the next open, nothing else.
		p.logger.Warn("saving the producer state failed", "err", err)
		return
	}
	p.producersSaved, p.bytesSinceSave = committed, 0
}
