// Package admin holds the JSON shapes of Chronik's HTTP admin API (served
// on the metrics address next to /metrics, /health and /ready) and a small
// client for it, used by the chronik-server operator commands and tests.
//
// Endpoints:
//
//	GET  /admin/cluster                                        ClusterStatus
//	GET  /admin/partitions                                     PartitionsStatus
//	POST /admin/partitions/{topic}/{partition}/transfer-leader[?to=N]  TransferResult
//	POST /admin/step-down                                      StepDownResult
//	POST /admin/rebalance[?dry_run=true]                       RebalancePlan
//	POST /admin/nodes/{id}/decommission[?cancel=true]          NodeStatus
//	POST /admin/nodes/{id}/replace                             NodeStatus
//
// Every error is an Error with a non-2xx status.
package admin

// MetadataTopic names the catalog's own raft group where partitions are
// listed, as the metrics do.
const MetadataTopic = "__cluster_metadata"

// RoleFailed is the role of a replica whose raft group a storage error
// stopped.
const RoleFailed = "Failed"

// Node states as one node sees its peers.
const (
	StateAlive       = "alive"       // this node, or a peer with a working raft stream
	StateUnreachable = "unreachable" // a peer this node has no working stream to
)

// ClusterStatus is the cluster as the answering node sees it.
type ClusterStatus struct {
	ClusterID string `json:"cluster_id"`
	// NodeID is the node that answered.
	NodeID uint64 `json:"node_id"`
	// Mode is "standalone" or "cluster".
	Mode string `json:"mode"`
	// MetadataLeader is the leader of the catalog's raft group as this
	// node knows it, 0 if none.
	MetadataLeader uint64       `json:"metadata_leader"`
	MetadataTerm   uint64       `json:"metadata_term"`
	Nodes          []NodeStatus `json:"nodes"`
}

// NodeStatus is one member of the cluster.
type NodeStatus struct {
	ID uint64 `json:"id"`
	// KafkaAddr is the advertised Kafka address in the catalog.
	KafkaAddr string `json:"kafka_addr"`
	// AdminAddr is the node's metrics/admin HTTP address as it registered
	// it; "" until the node has started once.
	AdminAddr string `json:"admin_addr,omitempty"`
	// State is StateAlive or StateUnreachable, as the answering node sees
	// it over its own raft transport.
	State string `json:"state"`
	// Live reports whether the metadata leader last recorded the node as
	// alive (what Metadata responses are built from).
	Live           bool `json:"live"`
	MetadataLeader bool `json:"metadata_leader"`
	MetadataVoter  bool `json:"metadata_voter"`
	AnsweringNode  bool `json:"answering_node"`
	// Decommissioning: its replicas are being moved off it; it leaves the
	// cluster once it holds none.
	Decommissioning bool `json:"decommissioning,omitempty"`
	// Replacing: it lost its data and is coming back empty under its id.
	Replacing bool `json:"replacing,omitempty"`
	// Replicas counts the partitions the catalog assigns to it.
	Replicas int `json:"replicas"`
}

// RebalancePlan lists the moves that balance the cluster (or drain the
// nodes being decommissioned), applied unless it was a dry run.
type RebalancePlan struct {
	DryRun bool            `json:"dry_run"`
	Moves  []RebalanceMove `json:"moves"`
}

// RebalanceMove is one partition's new replicas; the first is its
// preferred leader.
type RebalanceMove struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	From      []int32 `json:"from"`
	To        []int32 `json:"to"`
}

// PartitionsStatus lists the raft groups hosted on the answering node.
type PartitionsStatus struct {
	NodeID     uint64            `json:"node_id"`
	Partitions []PartitionStatus `json:"partitions"`
}

// PartitionStatus is one hosted partition's replica (or the catalog group,
// topic MetadataTopic).
type PartitionStatus struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Role is the raft role of this replica: Leader, Follower, Candidate
	// or PreCandidate; Failed when a storage error stopped its raft group
	// (Error says which; it is reopened at growing intervals).
	Role     string   `json:"role"`
	Leader   uint64   `json:"leader"`
	Term     uint64   `json:"term"`
	Replicas []uint64 `json:"replicas"`
	// ISR is the in-sync set; computed by the leader, so it is only
	// current on the leader (followers report the one they last saw, if
	// any).
	ISR       []uint64 `json:"isr"`
	Commit    uint64   `json:"commit_index"`
	Applied   uint64   `json:"applied_index"`
	LastIndex uint64   `json:"last_index"`
	// HighWatermark and LogEnd are Kafka offsets (absent for the catalog).
	HighWatermark int64 `json:"high_watermark"`
	LogEnd        int64 `json:"log_end_offset"`
	// Followers is set on a leader: how far each follower is behind.
	Followers []FollowerStatus `json:"followers,omitempty"`
	// Error is the storage error of a Failed replica.
	Error string `json:"error,omitempty"`
}

// FollowerStatus is a leader's view of one follower.
type FollowerStatus struct {
	ID         uint64  `json:"id"`
	LagEntries uint64  `json:"lag_entries"`
	LagMs      float64 `json:"lag_ms"`
	InSync     bool    `json:"in_sync"`
}

// TransferResult answers a leadership transfer.
type TransferResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      uint64 `json:"from"`
	// Leader is the leader once the transfer finished.
	Leader uint64 `json:"leader"`
	Term   uint64 `json:"term"`
}

// StepDownResult answers a step-down: the partitions whose leadership
// moved, and those this node still leads (no in-sync follower took them
// before the deadline).
type StepDownResult struct {
	NodeID    uint64           `json:"node_id"`
	Moved     []TransferResult `json:"moved"`
	Remaining []PartitionRef   `json:"remaining"`
}

// PartitionRef names one partition.
type PartitionRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// Error is the body of every failed admin request.
type Error struct {
	Message string `json:"error"`
	// Leader is set when the request must go to a partition's leader: its
	// node id and, if known, its admin address.
	Leader          uint64 `json:"leader,omitempty"`
	LeaderAdminAddr string `json:"leader_admin_addr,omitempty"`
}
