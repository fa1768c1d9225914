// Package config builds chronik-server's configuration.
//
// A Config is assembled from four sources; a later one wins:
//
//  1. the defaults ([Default]),
//  2. an optional TOML file,
//  3. environment variables: CHRONIK_ + the key's TOML path upper-cased with
//     "." replaced by "_" (raft.election_timeout_ms is
//     CHRONIK_RAFT_ELECTION_TIMEOUT_MS),
//  4. overrides keyed by TOML path, which is how the command applies its
//     flags.
//
// [Load] does all of that and then [Config.Validate]s the result. Every
// error names the key, its environment variable and the rule that was
// broken; all errors are reported together. docs/configuration.md is the
// operator's reference.
//
// Keys are found by reflection over the toml struct tags, so a new field
// gets its environment variable, its override key and its [EnvVars] entry
// without further code. A field's desc tag is its one-line description.
package config

import (
	"net"
	"path/filepath"
	"strconv"
)

// Config is the whole server configuration. Durations are integers in the
// unit their key names (_ms, _secs, _minutes).
type Config struct {
	NodeID         uint64 `toml:"node_id" desc:"this node's id; must be unique in the cluster"`
	AdvertisedAddr string `toml:"advertised_addr" desc:"host:port that clients and other nodes use to reach this node's Kafka listener"`
	ListenAddr     string `toml:"listen_addr" desc:"address the Kafka listener binds; empty means \":<advertised port>\""`
	DataDir        string `toml:"data_dir" desc:"directory for the partition logs and node state"`
	MetricsAddr    string `toml:"metrics_addr" desc:"address of the HTTP metrics endpoint; empty disables it"`
	LogLevel       string `toml:"log_level" desc:"debug, info, warn or error"`
	LogFormat      string `toml:"log_format" desc:"text or json"`

	Kafka       KafkaConfig       `toml:"kafka"`
	Cluster     ClusterConfig     `toml:"cluster"`
	Raft        RaftConfig        `toml:"raft"`
	ObjectStore ObjectStoreConfig `toml:"object_store"`
	WAL         WALConfig         `toml:"wal"`
}

// KafkaConfig is the broker behaviour seen by Kafka clients. The keys
// mirror Kafka's broker settings of the same name (with _ for .).
type KafkaConfig struct {
	AutoCreateTopicsEnable       bool  `toml:"auto_create_topics_enable" desc:"create a topic when a client produces to or fetches metadata for an unknown one"`
	NumPartitions                int32 `toml:"num_partitions" desc:"partitions of auto-created topics"`
	DefaultReplicationFactor     int16 `toml:"default_replication_factor" desc:"replication factor of auto-created topics; 0 means min(cluster.replication_factor, number of nodes)"`
	SocketRequestMaxBytes        int32 `toml:"socket_request_max_bytes" desc:"largest request the server accepts, in bytes"`
	MessageMaxBytes              int32 `toml:"message_max_bytes" desc:"largest record batch the server accepts, in bytes"`
	QueuedMaxRequestBytes        int64 `toml:"queued_max_request_bytes" desc:"node-wide bytes of requests read but not yet answered; a connection's reader waits while they are spent"`
	RequestReadTimeoutMs         int   `toml:"request_read_timeout_ms" desc:"a request's body must arrive within this time once its size is read, or the connection is closed"`
	FetchMaxBytes                int32 `toml:"fetch_max_bytes" desc:"largest Fetch response, in record bytes, whatever the client asks (the first batch may exceed it, KIP-74)"`
	QueuedMaxFetchBytes          int64 `toml:"queued_max_fetch_bytes" desc:"node-wide bytes of Fetch responses read from the log but not yet written (each byte counts twice); fetches read less or wait while they are spent"`
	OffsetsTopicNumPartitions    int32 `toml:"offsets_topic_num_partitions" desc:"partitions of the consumer offsets topic"`
	OffsetsRetentionMinutes      int   `toml:"offsets_retention_minutes" desc:"how long committed offsets of an empty group are kept"`
	GroupMinSessionTimeoutMs     int   `toml:"group_min_session_timeout_ms" desc:"smallest session timeout a consumer may ask for"`
	GroupMaxSessionTimeoutMs     int   `toml:"group_max_session_timeout_ms" desc:"largest session timeout a consumer may ask for"`
	GroupInitialRebalanceDelayMs int   `toml:"group_initial_rebalance_delay_ms" desc:"how long a new group waits for more members before its first rebalance"`
	LogSegmentBytes              int64 `toml:"log_segment_bytes" desc:"a partition's active segment is rolled when it would grow past this"`
	LogSegmentMs                 int64 `toml:"log_segment_ms" desc:"a partition's active segment is rolled this long after its first append"`
	LogRetentionMs               int64 `toml:"log_retention_ms" desc:"segments whose newest record is older are deleted; -1 keeps data forever"`
	LogRetentionBytes            int64 `toml:"log_retention_bytes" desc:"oldest segments are deleted while a partition is larger; -1 means no limit"`
	LogRetentionCheckIntervalMs  int64 `toml:"log_retention_check_interval_ms" desc:"how often retention runs"`
	ProducerIDExpirationMs       int64 `toml:"producer_id_expiration_ms" desc:"idempotent producer state is dropped after this long without writes"`
	LogCleanerEnable             bool  `toml:"log_cleaner_enable" desc:"run the log cleaner, which compacts topics whose cleanup.policy includes compact"`
	LogCleanerDedupeBufferSize   int64 `toml:"log_cleaner_dedupe_buffer_size" desc:"memory of the cleaner's key map, in bytes (24 bytes per key, 90% filled); one pass compacts as many segments as its keys fit"`
	LogCleanerIOMaxBytesPerSec   int64 `toml:"log_cleaner_io_max_bytes_per_second" desc:"bytes per second the cleaner reads plus writes; 0 means no bound"`
	LogCleanerBackoffMs          int64 `toml:"log_cleaner_backoff_ms" desc:"pause between cleaner passes over the logs"`
}

// ClusterConfig says whether this node is part of a replicated cluster and
// who the other members are.
type ClusterConfig struct {
	Enabled           bool            `toml:"enabled" desc:"run as a member of a replicated cluster; false runs a single node"`
	ReplicationFactor int             `toml:"replication_factor" desc:"replicas of each partition (odd: 1, 3, 5, 7)"`
	MinInsyncReplicas int             `toml:"min_insync_replicas" desc:"replicas that must have a write before acks=all succeeds"`
	Peers             PeersConfig     `toml:"peers"`
	Discovery         DiscoveryConfig `toml:"discovery"`
	Rebalance         RebalanceConfig `toml:"rebalance"`
}

// RebalanceConfig tunes the moves of replicas and leaderships between
// members: the rebalancer's and those of reassignments.
type RebalanceConfig struct {
	Enabled             bool  `toml:"enabled" desc:"move replicas and leaderships until every member holds and leads about as many partitions as the others"`
	IntervalSecs        int   `toml:"interval_secs" desc:"how often the metadata leader checks the balance (also at once when a member joins)"`
	MaxConcurrentMoves  int   `toml:"max_concurrent_moves" desc:"replica moves the rebalancer and decommissioning keep in progress at once"`
	ThrottleBytesPerSec int64 `toml:"throttle_bytes_per_sec" desc:"bytes per second a node sends to replicas catching up after being added to a partition (a move); 0 means no bound"`
}

// PeersConfig is the static member list.
type PeersConfig struct {
	Nodes []Peer `toml:"nodes" desc:"cluster members, this node included"`
}

// Peer is one cluster member.
type Peer struct {
	ID   uint64 `toml:"id"`
	Addr string `toml:"addr"` // Kafka host:port, as advertised by that node
	// RaftAddr is the host:port of the member's raft listener; empty means
	// Addr's host with Addr's port + 100 (see [Peer.RaftAddress]).
	RaftAddr string `toml:"raft_addr"`
}

// DiscoveryConfig says how members are found.
type DiscoveryConfig struct {
	Mode                string `toml:"mode" desc:"static (cluster.peers.nodes) or dns"`
	DNSService          string `toml:"dns_service" desc:"DNS name to resolve members from; required when mode is dns"`
	RefreshIntervalSecs int    `toml:"refresh_interval_secs" desc:"how often DNS discovery re-resolves"`
	DNSServer           string `toml:"dns_server" desc:"DNS server (host:port) DNS discovery asks; empty means the system's resolver"`
	NodeIDFromHostname  bool   `toml:"node_id_from_hostname" desc:"take node_id from the host name's StatefulSet ordinal (<name>-<ordinal>: ordinal + 1)"`
}

// RaftConfig tunes consensus between the members.
type RaftConfig struct {
	ElectionTimeoutMs   int    `toml:"election_timeout_ms" desc:"a follower that hears nothing from the leader this long starts an election"`
	HeartbeatIntervalMs int    `toml:"heartbeat_interval_ms" desc:"how often the leader sends heartbeats"`
	RPCTimeoutMs        int    `toml:"rpc_timeout_ms" desc:"timeout of one raft RPC"`
	MaxInflightMessages int    `toml:"max_inflight_messages" desc:"append messages sent to a follower before waiting for its answers"`
	ListenAddr          string `toml:"listen_addr" desc:"address the raft listener binds; empty means \":<port>\" of this node's raft address in cluster.peers.nodes, or of advertised port + 100"`

	Snapshots RaftSnapshotsConfig `toml:"snapshots"`
	Advanced  RaftAdvancedConfig  `toml:"advanced"`
}

// RaftSnapshotsConfig says when the raft log is compacted.
type RaftSnapshotsConfig struct {
	MaxLogSizeMB       int    `toml:"max_log_size_mb" desc:"snapshot once the raft log since the last snapshot is this large"`
	MinIntervalEntries int    `toml:"min_interval_entries" desc:"entries between two snapshots, at least"`
	Compression        string `toml:"compression" desc:"snapshot compression: none, gzip or zstd"`
}

// RaftAdvancedConfig holds settings that rarely need changing.
type RaftAdvancedConfig struct {
	ReplicaLagMaxEntries     int   `toml:"replica_lag_max_entries" desc:"a follower further behind than this many entries leaves the in-sync set"`
	ReplicaLagMaxMs          int   `toml:"replica_lag_max_ms" desc:"a follower that has not caught up for this long leaves the in-sync set"`
	EnableLeadershipTransfer bool  `toml:"enable_leadership_transfer" desc:"hand leadership to another member before shutting down"`
	BatchAppendEntries       bool  `toml:"batch_append_entries" desc:"send several entries per append message"`
	MaxUncommittedBytes      int64 `toml:"max_uncommitted_bytes" desc:"bytes of produced batches this node's partition leaders may hold accepted but not yet committed; produces wait for room"`
	EntryCacheBytes          int64 `toml:"entry_cache_bytes" desc:"bytes of recent raft entries all partitions of a node keep in memory to replicate them without reading the disk"`
}

// ObjectStoreConfig is where tiered data and snapshots are kept.
type ObjectStoreConfig struct {
	Type            string `toml:"type" desc:"local or s3"`
	Path            string `toml:"path" desc:"directory of the local store; empty means <data_dir>/objects"`
	Bucket          string `toml:"bucket" desc:"S3 bucket; required when type is s3"`
	Prefix          string `toml:"prefix" desc:"key prefix inside the bucket"`
	Endpoint        string `toml:"endpoint" desc:"S3 endpoint URL for S3-compatible stores (MinIO, ...); empty means AWS"`
	Region          string `toml:"region" desc:"S3 region"`
	AccessKeyID     string `toml:"access_key_id" desc:"S3 access key id; set together with secret_access_key or leave both empty"`
	SecretAccessKey string `toml:"secret_access_key" secret:"true" desc:"S3 secret access key; never shown in errors or by Redacted"`
	ForcePathStyle  bool   `toml:"force_path_style" desc:"address the bucket as endpoint/bucket instead of bucket.endpoint"`
}

// WALConfig tunes the group commit of the partition logs.
type WALConfig struct {
	GroupCommitIntervalMs int `toml:"group_commit_interval_ms" desc:"how long a flush waits for more appends; 0 flushes as soon as the previous flush is done"`
	MaxBatchSize          int `toml:"max_batch_size" desc:"a flush starts once this many appends are pending"`
}

// Allowed values of the enumerated keys.
var (
	LogLevels           = []string{"debug", "info", "warn", "error"}
	LogFormats          = []string{"text", "json"}
	SnapshotCompression = []string{"none", "gzip", "zstd"}
	DiscoveryModes      = []string{"static", "dns"}
	ObjectStoreTypes    = []string{"local", "s3"}
)

// RaftPortOffset is added to a Kafka port to get the default raft port.
const RaftPortOffset = 100

// Default returns the built-in configuration. It is valid: a single node
// listening on :9092.
func Default() Config {
	return Config{
		NodeID:         1,
		AdvertisedAddr: "localhost:9092",
		DataDir:        "./data",
		MetricsAddr:    ":8080",
		LogLevel:       "info",
		LogFormat:      "text",
		Kafka: KafkaConfig{
			AutoCreateTopicsEnable:       true,
			NumPartitions:                1,
			DefaultReplicationFactor:     0,
			SocketRequestMaxBytes:        104857600,
			MessageMaxBytes:              1048588,
			QueuedMaxRequestBytes:        268435456,
			RequestReadTimeoutMs:         30000,
			FetchMaxBytes:                57671680,
			QueuedMaxFetchBytes:          268435456,
			OffsetsTopicNumPartitions:    50,
			OffsetsRetentionMinutes:      10080,
			GroupMinSessionTimeoutMs:     6000,
			GroupMaxSessionTimeoutMs:     1800000,
			GroupInitialRebalanceDelayMs: 3000,
			LogSegmentBytes:              1073741824,
			LogSegmentMs:                 604800000,
			LogRetentionMs:               604800000,
			LogRetentionBytes:            -1,
			LogRetentionCheckIntervalMs:  30000,
			ProducerIDExpirationMs:       86400000,
			LogCleanerEnable:             true,
			LogCleanerDedupeBufferSize:   134217728,
			LogCleanerBackoffMs:          15000,
		},
		Cluster: ClusterConfig{
			ReplicationFactor: 3,
			MinInsyncReplicas: 2,
			Discovery: DiscoveryConfig{
				Mode:                "static",
				RefreshIntervalSecs: 30,
			},
			Rebalance: RebalanceConfig{
				Enabled:            true,
				IntervalSecs:       60,
				MaxConcurrentMoves: 2,
			},
		},
		Raft: RaftConfig{
			ElectionTimeoutMs:   1000,
			HeartbeatIntervalMs: 100,
			RPCTimeoutMs:        5000,
			MaxInflightMessages: 256,
			Snapshots: RaftSnapshotsConfig{
				MaxLogSizeMB:       64,
				MinIntervalEntries: 10000,
				Compression:        "zstd",
			},
			Advanced: RaftAdvancedConfig{
				ReplicaLagMaxEntries:     1000,
				ReplicaLagMaxMs:          10000,
				EnableLeadershipTransfer: true,
				BatchAppendEntries:       true,
				MaxUncommittedBytes:      256 << 20,
				EntryCacheBytes:          64 << 20,
			},
		},
		ObjectStore: ObjectStoreConfig{
			Type:           "local",
			Region:         "us-east-1",
			ForcePathStyle: true,
		},
		WAL: WALConfig{
			GroupCommitIntervalMs: 0,
			MaxBatchSize:          1000,
		},
	}
}

// KafkaListenAddr is the address the Kafka listener binds: listen_addr, or
// ":<port of advertised_addr>" when that is empty.
func (c *Config) KafkaListenAddr() string {
	if c.ListenAddr != "" {
		return c.ListenAddr
	}
	_, port, err := net.SplitHostPort(c.AdvertisedAddr)
	if err != nil {
		return ""
	}
	return ":" + port
}

// RaftListenAddr is the address the raft listener binds: raft.listen_addr
// if set; otherwise ":<port>" where port is that of this node's raft
// address in cluster.peers.nodes (so the listener is where the other
// members dial), or, when this node is not listed, the port of
// advertised_addr + 100.
func (c *Config) RaftListenAddr() string {
	if c.Raft.ListenAddr != "" {
		return c.Raft.ListenAddr
	}
	if p, ok := c.Self(); ok {
		if _, port, err := net.SplitHostPort(p.RaftAddress()); err == nil {
			return ":" + port
		}
	}
	_, port, err := net.SplitHostPort(c.AdvertisedAddr)
	if err != nil {
		return ""
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return ""
	}
	return ":" + strconv.Itoa(n+RaftPortOffset)
}

// Self returns this node's entry in cluster.peers.nodes.
func (c *Config) Self() (Peer, bool) {
	for _, p := range c.Cluster.Peers.Nodes {
		if p.ID == c.NodeID {
			return p, true
		}
	}
	return Peer{}, false
}

// ObjectStorePath is the directory of the local object store:
// object_store.path, or <data_dir>/objects when that is empty.
func (c *Config) ObjectStorePath() string {
	if c.ObjectStore.Path != "" {
		return c.ObjectStore.Path
	}
	return filepath.Join(c.DataDir, "objects")
}

// DefaultReplicationFactor is the replication factor of auto-created
// topics in a cluster of nodes members: kafka.default_replication_factor
// if set, else min(cluster.replication_factor, nodes). A node with
// cluster.enabled = false always gets 1.
func (c *Config) DefaultReplicationFactor(nodes int) int16 {
	if !c.Cluster.Enabled {
		return 1
	}
	if c.Kafka.DefaultReplicationFactor > 0 {
		return c.Kafka.DefaultReplicationFactor
	}
	return int16(max(1, min(c.Cluster.ReplicationFactor, nodes)))
}

// Redacted returns a copy with secrets replaced, fit for logging.
func (c Config) Redacted() Config {
	if c.ObjectStore.SecretAccessKey != "" {
		c.ObjectStore.SecretAccessKey = "REDACTED"
	}
	c.Cluster.Peers.Nodes = append([]Peer(nil), c.Cluster.Peers.Nodes...)
	return c
}
