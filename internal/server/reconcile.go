package server

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/internal/broker"
	"github.com/chronik-stream/chronik/internal/metrics"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/topicconfig"
)

// reconcileLoop keeps the local replicas in line with the catalog.
func (n *Node) reconcileLoop() {
	defer n.wg.Done()
	for {
		changed := n.catalog.Changed()
		if err := n.reconcile(); err != nil {
			n.logger.Error("reconciling replicas with the catalog", "err", err)
			select {
			case <-n.stop:
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-n.stop:
			return
		case <-changed:
		}
	}
}

// reconcile opens the replicas this node should host, applies config
// changes, and removes replicas and logs of partitions it no longer hosts,
// with their data. A replica is the one of a partition only if its topic
// id and raft group match the catalog's: a topic deleted and created again
// under the same name is another topic, and the old replica goes.
//
// It must run only on a synced catalog (Catalog.Sync at start): a log is
// removed when the catalog does not know its topic, which on a catalog
// that has merely replayed this node's own log could be a topic created
// while the node was down.
func (n *Node) reconcile() error {
	n.syncPeers()
	self := int32(n.cfg.NodeID)
	// A node replacing its lost self hosts no replica its old self is
	// being removed from: it would be taken for that voter.
	replacing := false
	for _, b := range n.catalog.Brokers() {
		replacing = replacing || b.ID == self && b.Replacing
	}
	want := map[replica.TopicPartition]replica.Identity{}
	var errs []error
	for _, t := range n.catalog.Topics() {
		rc := topicconfig.Resolve(t.Configs, n.defaults)
		for _, p := range t.Partitions {
			if !slices.Contains(p.Replicas, self) || replacing && slices.Contains(p.Removing, self) {
				continue
			}
			tp := replica.TopicPartition{Topic: t.Name, Partition: p.ID}
			id := replica.Identity{TopicID: t.ID, Group: raftnode.GroupID(p.Group)}
			want[tp] = id
			if r := n.replicas.Get(tp); r != nil {
				if r.Identity() != id {
					if err := n.removeReplica(r, "of an earlier topic of the same name"); err != nil {
						errs = append(errs, err)
						continue
					}
				} else {
					if r.Config() != rc {
						if err := r.SetConfig(rc); err != nil {
							errs = append(errs, fmt.Errorf("config of %s: %w", tp, err))
						}
					}
					r.SetPreferred(uint64(p.Replicas[0]))
					continue
				}
			}
			// A replica starts its group on the voters the group was
			// created with, and learns every change since from the
			// leader's log (or snapshot): configuration changes apply
			// only in order, from the configuration they were made in.
			initial := p.InitialVoters()
			peers := make([]uint64, len(initial))
			for i, id := range initial {
				peers[i] = uint64(id)
			}
			open := n.replicas.Open
			if p.Initial != nil {
				// The group's membership has changed since: this replica
				// joins it as a member the leader is adding.
				open = n.replicas.Join
			}
			r, err := open(tp, id, peers, rc)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			r.SetPreferred(uint64(p.Replicas[0]))
		}
	}
	for _, r := range n.replicas.Partitions() {
		if id, ok := want[r.TopicPartition()]; !ok || id != r.Identity() {
			if err := n.removeReplica(r, "of a partition deleted or moved off this node"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, n.removeStrayLogs(want))
	return errors.Join(errs...)
}

// removeReplica stops a local replica and deletes its data.
func (n *Node) removeReplica(r *replica.Partition, why string) error {
	tp := r.TopicPartition()
	n.logger.Info("removing replica "+why, "topic", tp.Topic, "partition", tp.Partition, "topic_id", fmt.Sprintf("%x", r.Identity().TopicID))
	if tp.Topic == broker.OffsetsTopic {
		n.groups.Resigned(tp.Partition)
	}
	err := n.replicas.Remove(tp, true)
	n.metrics.ForgetPartition(tp.Topic, tp.Partition)
	return err
}

// removeStrayLogs deletes partition logs on disk that belong to no replica
// this node hosts: logs of deleted topics (also those deleted while this
// node was down), of an earlier topic of the same name, and format-1 logs
// no partition adopted.
func (n *Node) removeStrayLogs(want map[replica.TopicPartition]replica.Identity) error {
	names, err := n.store.LogNames()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		var stray bool
		switch ref, ok := name.Partition(); {
		case ok:
			id, wanted := want[replica.TopicPartition{Topic: ref.Topic, Partition: ref.Partition}]
			stray = !wanted || id.TopicID != ref.TopicID
		case name.IsLegacy():
			// A legacy log of a partition hosted here is adopted when its
			// replica opens; one left behind belongs to no partition here.
			stray = !legacyWanted(name, want)
		}
		if !stray || n.store.Log(name) != nil {
			continue
		}
		n.logger.Warn("removing the log of a partition this node does not host (its topic was deleted, or deleted and created again)", "log", name.String())
		if err := n.store.RemoveLog(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// legacyWanted reports whether a format-1 log (named <topic>-<partition>)
// may still be adopted by a partition this node hosts.
func legacyWanted(name storage.LogName, want map[replica.TopicPartition]replica.Identity) bool {
	base := name.String()[strings.LastIndex(name.String(), "/")+1:]
	for tp := range want {
		if tp.String() == base {
			return true
		}
	}
	return false
}

// leadershipChanged hands __consumer_offsets partitions to the group
// coordinator as this node starts or stops leading them.
func (n *Node) leadershipChanged(tp replica.TopicPartition, leading bool) {
	if tp.Topic != broker.OffsetsTopic {
		return
	}
	if leading {
		n.groups.BecameLeader(tp.Partition)
	} else {
		n.groups.Resigned(tp.Partition)
	}
}

// offsetsPartitions gives the group coordinator the __consumer_offsets
// partitions led here.
type offsetsPartitions struct{ n *Node }

func (o offsetsPartitions) leader(p int32) (*replica.Partition, error) {
	r := o.n.replicas.Get(replica.TopicPartition{Topic: broker.OffsetsTopic, Partition: p})
	if r == nil {
		return nil, kerr.NotLeaderForPartition
	}
	if err := r.CheckLeader(); err != nil {
		return nil, err
	}
	return r, nil
}

// offsetsAppendTimeout bounds the wait of a group coordinator's write for
// room in the node's uncommitted budget.
const offsetsAppendTimeout = 30 * time.Second

func (o offsetsPartitions) Append(p int32, batch []byte, cb func(error)) {
	r, err := o.leader(p)
	if err != nil {
		cb(err)
		return
	}
	r.Produce(batch, -1, offsetsAppendTimeout, func(res replica.ProduceResult) { cb(res.Err) })
}

func (o offsetsPartitions) Read(p int32, offset int64, maxBytes int) ([]byte, int64, int64, error) {
	r, err := o.leader(p)
	if err != nil {
		return nil, 0, 0, err
	}
	res, err := r.Fetch(offset, maxBytes, true)
	return res.Batches, res.NextOffset, res.HighWatermark, err
}

func (o offsetsPartitions) LogStartOffset(p int32) int64 {
	if r := o.n.replicas.Get(replica.TopicPartition{Topic: broker.OffsetsTopic, Partition: p}); r != nil {
		return r.Log().LogStartOffset()
	}
	return 0
}

func (o offsetsPartitions) DeleteRecords(p int32, offset int64, cb func(error)) {
	r, err := o.leader(p)
	if err != nil {
		cb(err)
		return
	}
	r.DeleteRecords(offset, func(_ int64, err error) { cb(err) })
}

// resolveGroup names a raft group for metrics labels.
func (n *Node) resolveGroup(g uint64) (string, int32, bool) {
	if n.replicas == nil {
		return "", 0, false
	}
	for _, r := range n.replicas.Partitions() {
		if uint64(r.Group().ID()) == g {
			tp := r.TopicPartition()
			return tp.Topic, tp.Partition, true
		}
	}
	return "", 0, false
}

type electionObserver struct{ m *metrics.Metrics }

func (o electionObserver) LeaderElected(g raftnode.GroupID, _ uint64, _ uint64, without time.Duration) {
	o.m.Elected(uint64(g), without)
}

func (o electionObserver) Round(_ raftnode.GroupID, waited, took time.Duration) {
	o.m.RaftRound(waited, took)
}

type commitObserver struct{ m *metrics.Metrics }

func (o commitObserver) Committed(_ replica.TopicPartition, d time.Duration) { o.m.Committed(d) }

// stateSource reads the node's state for the metrics collector.
type stateSource struct{ n *Node }

func (s stateSource) PartitionStats() []metrics.PartitionStat {
	if s.n.replicas == nil {
		return nil
	}
	now := time.Now()
	var out []metrics.PartitionStat
	for _, r := range s.n.replicas.Partitions() {
		v := r.View()
		l := r.Log()
		tp := r.TopicPartition()
		st := metrics.PartitionStat{
			Topic: tp.Topic, Partition: tp.Partition, IsLeader: v.IsLeader, Term: v.Term,
			ISR: len(v.ISR), Replicas: len(v.Replicas), LogBytes: l.Size(), Segments: l.SegmentCount(),
			LogStart: l.LogStartOffset(), HighWater: l.HighWatermark(), LogEnd: l.NextOffset(),
			Failed: v.Failed != nil, Damaged: r.Damaged(),
		}
		for _, f := range v.Followers {
			lag := 0.0
			if f.LagEntries > 0 {
				lag = float64(now.Sub(f.CaughtUp)) / float64(time.Millisecond)
			}
			st.Followers = append(st.Followers, metrics.FollowerStat{ID: f.ID, LagEntries: f.LagEntries, LagMs: lag})
		}
		out = append(out, st)
	}
	return out
}

func (s stateSource) GroupStats() []metrics.GroupStat {
	if s.n.groups == nil {
		return nil
	}
	var out []metrics.GroupStat
	for _, g := range s.n.groups.Groups() {
		gs := metrics.GroupStat{Group: g.Group, State: g.State, Members: g.Members}
		for _, c := range g.Committed {
			// Lag is counted only where this node leads the partition: a
			// leader's high watermark is current, a follower's may trail.
			r := s.n.replicas.Get(replica.TopicPartition{Topic: c.Topic, Partition: c.Partition})
			if r == nil || !r.View().IsLeader {
				continue
			}
			gs.Lag += max(r.Log().HighWatermark()-c.Offset, 0)
		}
		out = append(out, gs)
	}
	return out
}

func (s stateSource) ClusterStats() metrics.ClusterStat {
	b := s.n.replicas.BudgetStats()
	cs := metrics.ClusterStat{MetadataLeader: s.n.catalog.Group().Status().Lead,
		UncommittedBytes: b.Used, UncommittedLimit: b.Limit, UncommittedWaits: b.Waits,
		EntryCacheBytes: s.n.host.CachedBytes()}
	cs.LearnerBytes, cs.LearnerThrottled = s.n.host.LearnerStats()
	for _, t := range s.n.catalog.Topics() {
		for _, p := range t.Partitions {
			if p.Reassigning() {
				cs.Reassignments++
			}
		}
	}
	if s.n.transport == nil {
		return cs
	}
	connected := s.n.transport.Connected()
	for _, id := range s.n.members() {
		if id == s.n.cfg.NodeID {
			continue
		}
		cs.Peers++
		if !connected[id] {
			cs.Unreachable++
		}
	}
	return cs
}

// SnapshotStats counts the catalog's snapshots (partition logs are not
// snapshotted: the log is their state).
// SnapshotStats counts the catalog's snapshots and the partition snapshots
// sent or installed; the size is the catalog's newest snapshot's.
func (s stateSource) SnapshotStats() (uint64, uint64) {
	n, b := s.n.catalog.SnapshotStats()
	pn, _ := s.n.replicas.SnapshotStats()
	return n + pn, b
}
