package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// PartitionStat is the state of one local replica at scrape time.
type PartitionStat struct {
	Topic     string
	Partition int32
	IsLeader  bool
	Term      uint64
	ISR       int
	Replicas  int
	Followers []FollowerStat // on a leader
	LogBytes  int64
	Segments  int
	LogStart  int64
	HighWater int64
	LogEnd    int64
	// Failed is set while a storage error keeps the replica's raft group
	// stopped (it is reopened at growing intervals).
	Failed bool
	// Damaged counts the damaged frames the last scrub of the log found.
	Damaged int64
}

// FollowerStat is a leader's view of one follower.
type FollowerStat struct {
	ID         uint64
	LagEntries uint64
	LagMs      float64
}

// GroupStat is one consumer group coordinated here.
type GroupStat struct {
	Group   string
	State   string
	Members int
	// Lag is the sum over the group's committed partitions of high
	// watermark minus committed offset, where both are known here.
	Lag int64
}

// ClusterStat is the node's view of the cluster.
type ClusterStat struct {
	// MetadataLeader is the catalog's raft leader as this node knows it,
	// 0 if none.
	MetadataLeader uint64
	// Peers counts the other members; Unreachable those this node has no
	// working raft stream to.
	Peers, Unreachable int
	// UncommittedBytes is what the node's leaders hold of produced batches
	// not yet committed, of at most UncommittedLimit; UncommittedWaits
	// counts produces that waited for room.
	UncommittedBytes, UncommittedLimit int64
	UncommittedWaits                   uint64
	// EntryCacheBytes is the raft entry data the groups keep in memory.
	EntryCacheBytes int64
	// Reassignments counts the partitions being moved (reassigned) as
	// this node's catalog has it; LearnerBytes is what this node's leaders
	// sent to replicas being added (bytes moved), LearnerThrottled the
	// appends to them held back by the move throttle.
	Reassignments                  int
	LearnerBytes, LearnerThrottled uint64
}

// StateSource gives the node's state to the collector.
type StateSource interface {
	PartitionStats() []PartitionStat
	GroupStats() []GroupStat
	ClusterStats() ClusterStat
	// SnapshotStats returns the raft snapshots taken and their total size.
	SnapshotStats() (count uint64, bytes uint64)
}

// RegisterState adds the scrape-time metrics read from src.
func (m *Metrics) RegisterState(src StateSource) {
	m.Registry.MustRegister(&stateCollector{src: src})
}

type stateCollector struct{ src StateSource }

var (
	descLeaders     = prometheus.NewDesc("chronik_raft_leader_count", "Partitions this node leads.", nil, nil)
	descFollowers   = prometheus.NewDesc("chronik_raft_follower_count", "Partitions this node follows.", nil, nil)
	descISR         = prometheus.NewDesc("chronik_raft_isr_size", "In-sync replicas of a partition this node leads.", []string{"topic", "partition"}, nil)
	descReplicas    = prometheus.NewDesc("chronik_raft_replicas", "Replicas of a partition hosted here.", []string{"topic", "partition"}, nil)
	descTerm        = prometheus.NewDesc("chronik_raft_term", "Raft term (leader epoch) of a partition hosted here.", []string{"topic", "partition"}, nil)
	descLagEntries  = prometheus.NewDesc("chronik_raft_follower_lag_entries", "Entries a follower is behind the leader.", []string{"topic", "partition", "follower"}, nil)
	descLagMs       = prometheus.NewDesc("chronik_raft_follower_lag_ms", "Time since a follower last caught up with the leader.", []string{"topic", "partition", "follower"}, nil)
	descMetaLeader  = prometheus.NewDesc("chronik_raft_metadata_leader", "Node id of the cluster metadata (catalog) leader as this node knows it; 0 while there is none.", nil, nil)
	descPeers       = prometheus.NewDesc("chronik_cluster_peers", "Other members of the cluster.", nil, nil)
	descUnreachable = prometheus.NewDesc("chronik_cluster_peers_unreachable", "Members this node has no working raft connection to.", nil, nil)
	descUncommitted = prometheus.NewDesc("chronik_raft_uncommitted_bytes", "Bytes of produced batches this node's partition leaders hold accepted but not yet committed.", nil, nil)
	descUncommLimit = prometheus.NewDesc("chronik_raft_uncommitted_bytes_limit", "The bound on chronik_raft_uncommitted_bytes (raft.advanced.max_uncommitted_bytes).", nil, nil)
	descUncommWaits = prometheus.NewDesc("chronik_raft_uncommitted_waits_total", "Produces that waited for room under the node's bound on uncommitted bytes.", nil, nil)
	descEntryCache  = prometheus.NewDesc("chronik_raft_entry_cache_bytes", "Bytes of raft entries the node's groups keep in memory (bounded by raft.advanced.entry_cache_bytes).", nil, nil)
	descReassigning = prometheus.NewDesc("chronik_partition_reassignments_in_progress", "Partitions whose replicas are being moved (reassignments, rebalancing, decommissioning), as this node's catalog has it.", nil, nil)
	descMovedBytes  = prometheus.NewDesc("chronik_raft_learner_sent_bytes_total", "Bytes of raft entries this node's leaders sent to replicas being added to a partition (bytes moved).", nil, nil)
	descThrottled   = prometheus.NewDesc("chronik_raft_learner_throttled_total", "Appends to replicas being added that cluster.rebalance.throttle_bytes_per_sec held back.", nil, nil)
	descSnapCount   = prometheus.NewDesc("chronik_raft_snapshot_count", "Raft snapshots taken or installed.", nil, nil)
	descSnapBytes   = prometheus.NewDesc("chronik_raft_snapshot_size_bytes", "Total size of raft snapshots taken or installed.", nil, nil)
	descLogBytes    = prometheus.NewDesc("chronik_log_size_bytes", "Bytes in a partition's segment files.", []string{"topic", "partition"}, nil)
	descSegments    = prometheus.NewDesc("chronik_log_segments", "Segment files of a partition.", []string{"topic", "partition"}, nil)
	descLogStart    = prometheus.NewDesc("chronik_log_start_offset", "First offset readable.", []string{"topic", "partition"}, nil)
	descHighWater   = prometheus.NewDesc("chronik_log_high_watermark", "Offset after the last committed record.", []string{"topic", "partition"}, nil)
	descLogEnd      = prometheus.NewDesc("chronik_log_end_offset", "Offset the next record gets.", []string{"topic", "partition"}, nil)
	descDamaged     = prometheus.NewDesc("chronik_log_damaged_frames", "Damaged frames the background scrub last found in a partition's log here (CRC mismatch); a replica with others fetches them again, one without cannot.", []string{"topic", "partition"}, nil)
	descFailed      = prometheus.NewDesc("chronik_partition_storage_failed", "1 while a storage error keeps a partition's replica here stopped (it answers KAFKA_STORAGE_ERROR and is reopened at growing intervals), else 0.", []string{"topic", "partition"}, nil)
	descGroups      = prometheus.NewDesc("chronik_consumer_groups", "Consumer groups coordinated here, by state.", []string{"state"}, nil)
	descGroupMember = prometheus.NewDesc("chronik_consumer_group_members", "Members of a consumer group coordinated here.", []string{"group"}, nil)
	descGroupLag    = prometheus.NewDesc("chronik_consumer_group_lag", "Records a consumer group has not committed yet, over the partitions led here.", []string{"group"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeaders, descFollowers, descISR, descReplicas, descTerm, descLagEntries, descLagMs,
		descSnapCount, descSnapBytes, descLogBytes, descSegments, descLogStart, descHighWater, descLogEnd, descFailed, descDamaged,
		descGroups, descGroupMember, descGroupLag, descMetaLeader, descPeers, descUnreachable,
		descUncommitted, descUncommLimit, descUncommWaits, descEntryCache, descReassigning, descMovedBytes, descThrottled} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	leaders, followers := 0, 0
	for _, p := range c.src.PartitionStats() {
		part := strconv.Itoa(int(p.Partition))
		if p.IsLeader {
			leaders++
			gauge(descISR, float64(p.ISR), p.Topic, part)
			for _, f := range p.Followers {
				id := strconv.FormatUint(f.ID, 10)
				gauge(descLagEntries, float64(f.LagEntries), p.Topic, part, id)
				gauge(descLagMs, f.LagMs, p.Topic, part, id)
			}
		} else {
			followers++
		}
		gauge(descReplicas, float64(p.Replicas), p.Topic, part)
		gauge(descTerm, float64(p.Term), p.Topic, part)
		gauge(descLogBytes, float64(p.LogBytes), p.Topic, part)
		gauge(descSegments, float64(p.Segments), p.Topic, part)
		gauge(descLogStart, float64(p.LogStart), p.Topic, part)
		gauge(descHighWater, float64(p.HighWater), p.Topic, part)
		gauge(descLogEnd, float64(p.LogEnd), p.Topic, part)
		failed := 0.0
		if p.Failed {
			failed = 1
		}
		gauge(descFailed, failed, p.Topic, part)
		gauge(descDamaged, float64(p.Damaged), p.Topic, part)
	}
	gauge(descLeaders, float64(leaders))
	gauge(descFollowers, float64(followers))
	cs := c.src.ClusterStats()
	gauge(descMetaLeader, float64(cs.MetadataLeader))
	gauge(descPeers, float64(cs.Peers))
	gauge(descUnreachable, float64(cs.Unreachable))
	gauge(descUncommitted, float64(cs.UncommittedBytes))
	gauge(descUncommLimit, float64(cs.UncommittedLimit))
	ch <- prometheus.MustNewConstMetric(descUncommWaits, prometheus.CounterValue, float64(cs.UncommittedWaits))
	gauge(descEntryCache, float64(cs.EntryCacheBytes))
	gauge(descReassigning, float64(cs.Reassignments))
	ch <- prometheus.MustNewConstMetric(descMovedBytes, prometheus.CounterValue, float64(cs.LearnerBytes))
	ch <- prometheus.MustNewConstMetric(descThrottled, prometheus.CounterValue, float64(cs.LearnerThrottled))
	n, b := c.src.SnapshotStats()
	ch <- prometheus.MustNewConstMetric(descSnapCount, prometheus.CounterValue, float64(n))
	gauge(descSnapBytes, float64(b))
	states := map[string]int{}
	for _, g := range c.src.GroupStats() {
		states[g.State]++
		gauge(descGroupMember, float64(g.Members), g.Group)
		gauge(descGroupLag, float64(g.Lag), g.Group)
	}
	for s, n := range states {
		gauge(descGroups, float64(n), s)
	}
}
