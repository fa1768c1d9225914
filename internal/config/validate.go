package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/chronik-stream/chronik/internal/membudget"
)

// FieldError is one broken rule. Its text is
//
//	invalid config: <key> (<ENV VAR>) = <value> <rule>
//
// for example "invalid config: raft.heartbeat_interval_ms
// (CHRONIK_RAFT_HEARTBEAT_INTERVAL_MS) = 2000 must be less than
// raft.election_timeout_ms = 1000".
type FieldError struct {
	Key   string // TOML path; list elements as cluster.peers.nodes[i].field
	Env   string // environment variable that sets Key, "" if none
	Value string // the offending value, formatted; "" if not shown
	Rule  string // what the value must be
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("invalid config: ")
	b.WriteString(e.Key)
	if e.Env != "" {
		b.WriteString(" (" + e.Env + ")")
	}
	if e.Value != "" {
		b.WriteString(" = " + e.Value)
	}
	b.WriteString(" " + e.Rule)
	return b.String()
}

// Validate checks every rule and returns all broken ones joined
// (errors.Join); each is a *FieldError. It returns nil for a valid
// configuration.
func (c *Config) Validate() error {
	v := &checker{}
	c.validate(v)
	return errors.Join(v.errs...)
}

// Warnings returns notes about a configuration that is valid but probably
// not what the operator wants. The server should log them at startup.
func (c *Config) Warnings() []string {
	var w []string
	r := c.Raft
	if r.HeartbeatIntervalMs > 0 && r.ElectionTimeoutMs > r.HeartbeatIntervalMs && r.HeartbeatIntervalMs*10 > r.ElectionTimeoutMs {
		w = append(w, fmt.Sprintf("raft.heartbeat_interval_ms = %d is more than a tenth of raft.election_timeout_ms = %d; a few delayed heartbeats can trigger needless elections (recommended: heartbeat <= election/10)",
			r.HeartbeatIntervalMs, r.ElectionTimeoutMs))
	}
	nodes := c.Cluster.Peers.Nodes
	if !c.Cluster.Enabled && len(nodes) > 0 {
		w = append(w, fmt.Sprintf("cluster.peers.nodes lists %d members but cluster.enabled is false; they are ignored", len(nodes)))
	}
	if c.Cluster.Enabled {
		if self, ok := c.Self(); ok && self.Addr != c.AdvertisedAddr {
			w = append(w, fmt.Sprintf("advertised_addr = %q differs from this node's address in cluster.peers.nodes (id %d, addr %q); other members and clients may reach it at different addresses",
				c.AdvertisedAddr, self.ID, self.Addr))
		}
		rf, isr := c.Cluster.ReplicationFactor, c.Cluster.MinInsyncReplicas
		if rf > 1 && isr == rf {
			w = append(w, fmt.Sprintf("cluster.min_insync_replicas = cluster.replication_factor = %d: acks=all writes stop while any one replica is down", rf))
		}
		if drf := int(c.Kafka.DefaultReplicationFactor); drf > 0 && drf < isr {
			w = append(w, fmt.Sprintf("kafka.default_replication_factor = %d is less than cluster.min_insync_replicas = %d: acks=all writes to auto-created topics will fail", drf, isr))
		}
	} else if c.Kafka.DefaultReplicationFactor > 1 {
		w = append(w, fmt.Sprintf("kafka.default_replication_factor = %d is ignored because cluster.enabled is false (a single node keeps 1 replica)", c.Kafka.DefaultReplicationFactor))
	}
	if k := c.Kafka; k.QueuedMaxRequestBytes >= int64(k.SocketRequestMaxBytes) && k.QueuedMaxRequestBytes-int64(k.SocketRequestMaxBytes) < membudget.SmallMax {
		w = append(w, fmt.Sprintf("kafka.queued_max_request_bytes = %d leaves less than %d bytes beside a request of kafka.socket_request_max_bytes = %d: small requests (Metadata, Fetch, ordinary produces) wait while one that large is read",
			k.QueuedMaxRequestBytes, membudget.SmallMax, k.SocketRequestMaxBytes))
	}
	if c.Kafka.MessageMaxBytes > c.Kafka.SocketRequestMaxBytes {
		w = append(w, fmt.Sprintf("kafka.message_max_bytes = %d is more than kafka.socket_request_max_bytes = %d; batches that large cannot be sent", c.Kafka.MessageMaxBytes, c.Kafka.SocketRequestMaxBytes))
	}
	return w
}

type checker struct {
	errs []error
}

// fail records that key, whose value is value, breaks rule.
func (v *checker) fail(key string, value any, rule string, args ...any) {
	e := &FieldError{Key: key, Rule: fmt.Sprintf(rule, args...)}
	switch {
	case strings.HasPrefix(key, peersKey):
		e.Env = PeersEnv
	case byKey[key] != nil:
		e.Env = byKey[key].env
	}
	switch x := value.(type) {
	case nil:
	case string:
		if l := byKey[key]; l != nil && l.secret {
			break
		}
		e.Value = strconv.Quote(x)
	default:
		e.Value = fmt.Sprint(x)
	}
	v.errs = append(v.errs, e)
}

func (v *checker) enum(key, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		v.fail(key, value, "must be one of %s", strings.Join(allowed, ", "))
	}
}

func (v *checker) addr(key, value string, needHost bool) {
	if rule := checkAddr(value, needHost); rule != "" {
		v.fail(key, value, "%s", rule)
	}
}

// atLeast checks value >= lo.
func atLeast[T int | int16 | int32 | int64 | uint64](v *checker, key string, value, lo T) {
	if value < lo {
		v.fail(key, value, "must be at least %d", lo)
	}
}

func (c *Config) validate(v *checker) {
	// Top level.
	if c.NodeID < 1 || c.NodeID > maxID {
		v.fail("node_id", c.NodeID, "must be between 1 and %d", uint64(maxID))
	}
	v.addr("advertised_addr", c.AdvertisedAddr, true)
	if c.ListenAddr != "" {
		v.addr("listen_addr", c.ListenAddr, false)
	}
	if c.DataDir == "" {
		v.fail("data_dir", c.DataDir, "must not be empty")
	}
	if c.MetricsAddr != "" {
		v.addr("metrics_addr", c.MetricsAddr, false)
	}
	v.enum("log_level", c.LogLevel, LogLevels)
	v.enum("log_format", c.LogFormat, LogFormats)

	c.validateKafka(v)
	c.validateCluster(v)
	c.validateRaft(v)
	c.validateObjectStore(v)
	c.validateListeners(v)

	// [wal]
	atLeast(v, "wal.group_commit_interval_ms", c.WAL.GroupCommitIntervalMs, 0)
	atLeast(v, "wal.max_batch_size", c.WAL.MaxBatchSize, 1)
}

func (c *Config) validateKafka(v *checker) {
	k := c.Kafka
	atLeast(v, "kafka.num_partitions", k.NumPartitions, 1)
	if k.DefaultReplicationFactor < 0 {
		v.fail("kafka.default_replication_factor", k.DefaultReplicationFactor, "must be 0 (automatic) or positive")
	}
	atLeast(v, "kafka.socket_request_max_bytes", k.SocketRequestMaxBytes, 1)
	atLeast(v, "kafka.message_max_bytes", k.MessageMaxBytes, 1)
	if k.QueuedMaxRequestBytes < int64(k.SocketRequestMaxBytes) {
		v.fail("kafka.queued_max_request_bytes", k.QueuedMaxRequestBytes,
			"must be at least kafka.socket_request_max_bytes = %d (a request of that size could never be read)", k.SocketRequestMaxBytes)
	}
	atLeast(v, "kafka.request_read_timeout_ms", k.RequestReadTimeoutMs, 1)
	atLeast(v, "kafka.fetch_max_bytes", k.FetchMaxBytes, 1024)
	if k.QueuedMaxFetchBytes < 2*int64(k.FetchMaxBytes) {
		v.fail("kafka.queued_max_fetch_bytes", k.QueuedMaxFetchBytes,
			"must be at least twice kafka.fetch_max_bytes = %d (a response's bytes count twice while it is written)", k.FetchMaxBytes)
	}
	atLeast(v, "kafka.offsets_topic_num_partitions", k.OffsetsTopicNumPartitions, 1)
	atLeast(v, "kafka.offsets_retention_minutes", k.OffsetsRetentionMinutes, 1)
	atLeast(v, "kafka.group_min_session_timeout_ms", k.GroupMinSessionTimeoutMs, 1)
	atLeast(v, "kafka.group_max_session_timeout_ms", k.GroupMaxSessionTimeoutMs, 1)
	if k.GroupMaxSessionTimeoutMs >= 1 && k.GroupMinSessionTimeoutMs > k.GroupMaxSessionTimeoutMs {
		v.fail("kafka.group_min_session_timeout_ms", k.GroupMinSessionTimeoutMs,
			"must not be more than kafka.group_max_session_timeout_ms = %d", k.GroupMaxSessionTimeoutMs)
	}
	atLeast(v, "kafka.group_initial_rebalance_delay_ms", k.GroupInitialRebalanceDelayMs, 0)
	if k.LogSegmentBytes < 1024 || k.LogSegmentBytes > 2147483647 {
		v.fail("kafka.log_segment_bytes", k.LogSegmentBytes, "must be between 1024 and 2147483647")
	}
	atLeast(v, "kafka.log_segment_ms", k.LogSegmentMs, 1)
	if k.LogRetentionMs != -1 && k.LogRetentionMs < 1 {
		v.fail("kafka.log_retention_ms", k.LogRetentionMs, "must be -1 (keep forever) or positive")
	}
	if k.LogRetentionBytes != -1 && k.LogRetentionBytes < 1 {
		v.fail("kafka.log_retention_bytes", k.LogRetentionBytes, "must be -1 (no limit) or positive")
	}
	atLeast(v, "kafka.log_retention_check_interval_ms", k.LogRetentionCheckIntervalMs, 1)
	atLeast(v, "kafka.producer_id_expiration_ms", k.ProducerIDExpirationMs, 1)
	atLeast(v, "kafka.log_cleaner_dedupe_buffer_size", k.LogCleanerDedupeBufferSize, 1<<20)
	atLeast(v, "kafka.log_cleaner_io_max_bytes_per_second", k.LogCleanerIOMaxBytesPerSec, 0)
	atLeast(v, "kafka.log_cleaner_backoff_ms", k.LogCleanerBackoffMs, 1)
}

func (c *Config) validateCluster(v *checker) {
	cl := c.Cluster
	rf := cl.ReplicationFactor
	if rf < 1 || rf%2 == 0 {
		v.fail("cluster.replication_factor", rf, "must be odd and at least 1 (1 for a single node; 3, 5 or 7 for a cluster)")
	}
	if cl.MinInsyncReplicas < 1 {
		v.fail("cluster.min_insync_replicas", cl.MinInsyncReplicas, "must be at least 1")
	} else if rf >= 1 && cl.MinInsyncReplicas > rf {
		v.fail("cluster.min_insync_replicas", cl.MinInsyncReplicas, "must not be more than cluster.replication_factor = %d", rf)
	}

	// The member list is checked whether or not it is used: a mistake in
	// it should not wait until the cluster is enabled.
	ids := make(map[uint64]int)
	addrs := make(map[string]int)
	raftAddrs := make(map[string]int)
	for i, p := range cl.Peers.Nodes {
		key := fmt.Sprintf("%s[%d]", peersKey, i)
		if p.ID < 1 || p.ID > maxID {
			v.fail(key+".id", p.ID, "must be between 1 and %d", uint64(maxID))
		} else if j, dup := ids[p.ID]; dup {
			v.fail(key+".id", p.ID, "is also the id of %s[%d]", peersKey, j)
		} else {
			ids[p.ID] = i
		}
		addrOK := checkAddr(p.Addr, true) == ""
		if !addrOK {
			v.addr(key+".addr", p.Addr, true)
		} else if j, dup := addrs[p.Addr]; dup {
			v.fail(key+".addr", p.Addr, "is also the address of %s[%d]", peersKey, j)
		} else {
			addrs[p.Addr] = i
		}
		if p.RaftAddr != "" {
			v.addr(key+".raft_addr", p.RaftAddr, true)
		} else if addrOK && p.RaftAddress() == "" {
			v.fail(key+".raft_addr", p.RaftAddr, "is unset and its default (port of addr %q + %d) is above 65535; set it", p.Addr, RaftPortOffset)
		}
		if ra := p.RaftAddress(); ra != "" && checkAddr(ra, true) == "" {
			if j, dup := raftAddrs[ra]; dup {
				v.fail(key+".raft_addr", ra, "is also the raft address of %s[%d]", peersKey, j)
			} else {
				raftAddrs[ra] = i
			}
		}
	}

	for i, p := range cl.Peers.Nodes {
		if ra := p.RaftAddress(); ra != "" {
			if j, clash := addrs[ra]; clash {
				v.fail(fmt.Sprintf("%s[%d].raft_addr", peersKey, i), ra, "is also the Kafka address of %s[%d]", peersKey, j)
			}
		}
	}

	d := cl.Discovery
	v.enum("cluster.discovery.mode", d.Mode, DiscoveryModes)
	if d.Mode == "dns" && d.DNSService == "" {
		v.fail("cluster.discovery.dns_service", d.DNSService, "must be set when cluster.discovery.mode = \"dns\"")
	}
	atLeast(v, "cluster.discovery.refresh_interval_secs", d.RefreshIntervalSecs, 1)
	if d.DNSServer != "" {
		v.addr("cluster.discovery.dns_server", d.DNSServer, true)
	}
	atLeast(v, "cluster.rebalance.interval_secs", cl.Rebalance.IntervalSecs, 1)
	atLeast(v, "cluster.rebalance.max_concurrent_moves", cl.Rebalance.MaxConcurrentMoves, 1)
	atLeast(v, "cluster.rebalance.throttle_bytes_per_sec", cl.Rebalance.ThrottleBytesPerSec, 0)

	if !cl.Enabled || d.Mode != "static" {
		return
	}
	n := len(cl.Peers.Nodes)
	if _, ok := c.Self(); !ok {
		v.fail(peersKey, FormatPeers(cl.Peers.Nodes), "must include this node (node_id = %d) when cluster.enabled = true", c.NodeID)
	}
	if rf > n {
		v.fail("cluster.replication_factor", rf, "is more than the %d members in %s", n, peersKey)
	}
	if drf := int(c.Kafka.DefaultReplicationFactor); drf > n {
		v.fail("kafka.default_replication_factor", drf, "is more than the %d members in %s", n, peersKey)
	}
}

func (c *Config) validateRaft(v *checker) {
	r := c.Raft
	atLeast(v, "raft.election_timeout_ms", r.ElectionTimeoutMs, 1)
	if r.HeartbeatIntervalMs < 1 {
		v.fail("raft.heartbeat_interval_ms", r.HeartbeatIntervalMs, "must be at least 1")
	} else if r.HeartbeatIntervalMs >= r.ElectionTimeoutMs {
		v.fail("raft.heartbeat_interval_ms", r.HeartbeatIntervalMs, "must be less than raft.election_timeout_ms = %d", r.ElectionTimeoutMs)
	}
	if r.RPCTimeoutMs <= r.HeartbeatIntervalMs {
		v.fail("raft.rpc_timeout_ms", r.RPCTimeoutMs, "must be greater than raft.heartbeat_interval_ms = %d", r.HeartbeatIntervalMs)
	}
	atLeast(v, "raft.max_inflight_messages", r.MaxInflightMessages, 1)
	if r.ListenAddr != "" {
		v.addr("raft.listen_addr", r.ListenAddr, false)
	} else if c.Cluster.Enabled {
		if _, ok := c.Self(); !ok {
			if p := addrPort(c.AdvertisedAddr); p > 0 && p+RaftPortOffset > 65535 {
				v.fail("raft.listen_addr", r.ListenAddr, "is unset and its default (port of advertised_addr %d + %d) is above 65535; set it", p, RaftPortOffset)
			}
		}
	}

	s := r.Snapshots
	atLeast(v, "raft.snapshots.max_log_size_mb", s.MaxLogSizeMB, 1)
	atLeast(v, "raft.snapshots.min_interval_entries", s.MinIntervalEntries, 1)
	v.enum("raft.snapshots.compression", s.Compression, SnapshotCompression)

	a := r.Advanced
	atLeast(v, "raft.advanced.replica_lag_max_entries", a.ReplicaLagMaxEntries, 1)
	atLeast(v, "raft.advanced.replica_lag_max_ms", a.ReplicaLagMaxMs, 1)
	atLeast(v, "raft.advanced.max_uncommitted_bytes", a.MaxUncommittedBytes, 1<<20)
	atLeast(v, "raft.advanced.entry_cache_bytes", a.EntryCacheBytes, 1<<20)
}

// validateListeners checks that this node's listeners do not share a port.
func (c *Config) validateListeners(v *checker) {
	type listener struct{ key, addr string }
	ls := []listener{{"listen_addr", c.KafkaListenAddr()}}
	if c.MetricsAddr != "" {
		ls = append(ls, listener{"metrics_addr", c.MetricsAddr})
	}
	if c.Cluster.Enabled {
		ls = append(ls, listener{"raft.listen_addr", c.RaftListenAddr()})
	}
	for i := range ls {
		for j := range i {
			if sameListener(ls[i].addr, ls[j].addr) {
				v.fail(ls[i].key, ls[i].addr, "uses the same port as %s = %q", ls[j].key, ls[j].addr)
			}
		}
	}
}

// sameListener reports whether two bind addresses would collide: same port
// and the same host, or either binds every interface.
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || any(ha) || any(hb)
}

func (c *Config) validateObjectStore(v *checker) {
	o := c.ObjectStore
	v.enum("object_store.type", o.Type, ObjectStoreTypes)
	if o.Type != "s3" {
		return
	}
	if o.Bucket == "" {
		v.fail("object_store.bucket", o.Bucket, "must be set when object_store.type = \"s3\"")
	}
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
		if o.AccessKeyID == "" {
			v.fail("object_store.access_key_id", o.AccessKeyID, "must be set when object_store.secret_access_key is (set both or neither)")
		} else {
			v.fail("object_store.secret_access_key", nil, "must be set when object_store.access_key_id is (set both or neither)")
		}
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail("object_store.endpoint", o.Endpoint, "must be an http:// or https:// URL")
		}
	}
}

// Unsupported returns an error naming every key set to a value this
// release does not act on: object storage is not built yet, and DNS
// discovery's keys do nothing under static discovery; a key that would be
// silently ignored is refused instead. It is
// nil when there is none; each joined error is a *FieldError.
func (c *Config) Unsupported() error {
	v := &checker{}
	d := Default()
	o, do := c.ObjectStore, d.ObjectStore
	const noObjects = "is not supported by this release: it keeps every log on local disk (object storage is not built yet); remove the key"
	if o.Type != do.Type {
		v.fail("object_store.type", o.Type, noObjects)
	}
	for _, k := range []struct {
		key      string
		val, def any
	}{
		{"object_store.path", o.Path, do.Path},
		{"object_store.bucket", o.Bucket, do.Bucket},
		{"object_store.prefix", o.Prefix, do.Prefix},
		{"object_store.endpoint", o.Endpoint, do.Endpoint},
		{"object_store.region", o.Region, do.Region},
		{"object_store.access_key_id", o.AccessKeyID, do.AccessKeyID},
		{"object_store.secret_access_key", o.SecretAccessKey, do.SecretAccessKey},
		{"object_store.force_path_style", o.ForcePathStyle, do.ForcePathStyle},
	} {
		if k.val != k.def {
			v.fail(k.key, k.val, noObjects)
		}
	}
	disc, dd := c.Cluster.Discovery, d.Cluster.Discovery
	if disc.Mode != "dns" {
		const onlyDNS = "is used only by DNS discovery (cluster.discovery.mode = \"dns\"); remove the key"
		if disc.DNSService != dd.DNSService {
			v.fail("cluster.discovery.dns_service", disc.DNSService, onlyDNS)
		}
		if disc.RefreshIntervalSecs != dd.RefreshIntervalSecs {
			v.fail("cluster.discovery.refresh_interval_secs", disc.RefreshIntervalSecs, onlyDNS)
		}
		if disc.DNSServer != dd.DNSServer {
			v.fail("cluster.discovery.dns_server", disc.DNSServer, onlyDNS)
		}
	}
	return errors.Join(v.errs...)
}
