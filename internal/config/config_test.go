package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeFile writes a TOML file into a temporary directory.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "chronik.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(kv ...string) func(string) (string, bool) { return LookupFunc(kv) }

func TestDefaultsValid(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if w := d.Warnings(); len(w) != 0 {
		t.Fatalf("defaults warn: %v", w)
	}
	c, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("Load with no sources = %+v, want defaults", c)
	}
	// An empty file is the defaults too.
	c, err = Load(writeFile(t, ""), env(), map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("empty file = %+v, want defaults", c)
	}
	if got := d.KafkaListenAddr(); got != ":9092" {
		t.Errorf("KafkaListenAddr = %q", got)
	}
	if got := d.RaftListenAddr(); got != ":9192" {
		t.Errorf("RaftListenAddr = %q", got)
	}
	if got := d.ObjectStorePath(); got != filepath.Join("data", "objects") {
		t.Errorf("ObjectStorePath = %q", got)
	}
}

const precedenceFile = `
data_dir = "/file"
log_level = "debug"
[kafka]
num_partitions = 6
[raft]
election_timeout_ms = 3000
[raft.advanced]
replica_lag_max_ms = 20000
[cluster]
enabled = true
replication_factor = 3
[[cluster.peers.nodes]]
id = 1
addr = "a:9092"
raft_addr = "a:7000"
[[cluster.peers.nodes]]
id = 2
addr = "b:9092"
[[cluster.peers.nodes]]
id = 3
addr = "c:9092"
`

func TestPrecedence(t *testing.T) {
	file := writeFile(t, precedenceFile)
	tests := []struct {
		name      string
		path      string
		env       []string
		overrides map[string]string
		check     func(c Config) string
	}{
		{
			name: "file overrides default",
			path: file,
			check: func(c Config) string {
				if c.DataDir != "/file" || c.LogLevel != "debug" || c.Kafka.NumPartitions != 6 ||
					c.Raft.ElectionTimeoutMs != 3000 || c.Raft.Advanced.ReplicaLagMaxMs != 20000 ||
					!c.Cluster.Enabled || len(c.Cluster.Peers.Nodes) != 3 || c.Cluster.Peers.Nodes[0].RaftAddr != "a:7000" {
					return "file values not applied"
				}
				if c.Raft.HeartbeatIntervalMs != 100 || c.MetricsAddr != ":8080" {
					return "keys absent from the file lost their defaults"
				}
				return ""
			},
		},
		{
			name: "env overrides file",
			path: file,
			env: []string{
				"CHRONIK_DATA_DIR=/env",
				"CHRONIK_RAFT_ELECTION_TIMEOUT_MS=4000",
				"CHRONIK_RAFT_ADVANCED_REPLICA_LAG_MAX_MS=30000",
				"CHRONIK_KAFKA_AUTO_CREATE_TOPICS_ENABLE=false",
				"CHRONIK_CLUSTER_PEERS=x:9092,y:9092,z:9092",
				"CHRONIK_LOG_LEVEL=", // empty: ignored
			},
			check: func(c Config) string {
				if c.DataDir != "/env" || c.Raft.ElectionTimeoutMs != 4000 || c.Raft.Advanced.ReplicaLagMaxMs != 30000 || c.Kafka.AutoCreateTopicsEnable {
					return "env values not applied"
				}
				if c.Kafka.NumPartitions != 6 || c.LogLevel != "debug" {
					return "file values lost"
				}
				want := []Peer{{1, "x:9092", ""}, {2, "y:9092", ""}, {3, "z:9092", ""}}
				if !reflect.DeepEqual(c.Cluster.Peers.Nodes, want) {
					return "CHRONIK_CLUSTER_PEERS did not replace the list"
				}
				return ""
			},
		},
		{
			name: "override beats env",
			path: file,
			env:  []string{"CHRONIK_DATA_DIR=/env", "CHRONIK_NODE_ID=2", "CHRONIK_CLUSTER_PEERS=x:9092,y:9092,z:9092"},
			overrides: map[string]string{
				"data_dir":                 "/flag",
				"node_id":                  "3",
				"raft.election_timeout_ms": "5000",
				"cluster.peers":            "3@p:9092, 4@q:9092, 5@r:9092",
			},
			check: func(c Config) string {
				if c.DataDir != "/flag" || c.NodeID != 3 || c.Raft.ElectionTimeoutMs != 5000 {
					return "overrides not applied"
				}
				if len(c.Cluster.Peers.Nodes) != 3 || c.Cluster.Peers.Nodes[0].Addr != "p:9092" {
					return "peers override not applied"
				}
				return ""
			},
		},
		{
			name:      "override by full peers key",
			overrides: map[string]string{"cluster.peers.nodes": "h:1"},
			check: func(c Config) string {
				if len(c.Cluster.Peers.Nodes) != 1 || c.Cluster.Peers.Nodes[0] != (Peer{ID: 1, Addr: "h:1"}) {
					return "peers not set"
				}
				return ""
			},
		},
		{
			name: "env without file",
			env:  []string{"CHRONIK_NODE_ID=7", "CHRONIK_OBJECT_STORE_FORCE_PATH_STYLE=0", "CHRONIK_KAFKA_LOG_RETENTION_MS=-1"},
			check: func(c Config) string {
				if c.NodeID != 7 || c.ObjectStore.ForcePathStyle || c.Kafka.LogRetentionMs != -1 {
					return "env not applied"
				}
				return ""
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.path, env(tc.env...), tc.overrides)
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(c); msg != "" {
				t.Fatalf("%s: %+v", msg, c)
			}
		})
	}
}

func TestMalformedValues(t *testing.T) {
	tests := []struct {
		env, value, want string
	}{
		{"CHRONIK_RAFT_ELECTION_TIMEOUT_MS", "abc", "must be an integer"},
		{"CHRONIK_NODE_ID", "-1", "must be an integer between 0 and"},
		{"CHRONIK_KAFKA_DEFAULT_REPLICATION_FACTOR", "40000", "between -32768 and 32767"},
		{"CHRONIK_KAFKA_NUM_PARTITIONS", "1.5", "must be an integer"},
		{"CHRONIK_CLUSTER_ENABLED", "yes", "must be true or false"},
		{"CHRONIK_CLUSTER_PEERS", "a:1,,b:2", "empty"},
		{"CHRONIK_CLUSTER_PEERS", "a", "must be host:port"},
	}
	for _, tc := range tests {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			_, err := Load("", env(tc.env+"="+tc.value), nil)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.env) || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "invalid config: ") {
				t.Fatalf("error %q does not name %s and %q", msg, tc.env, tc.want)
			}
		})
		// The same value given as an override names the key.
		key := ""
		for _, ev := range EnvVars() {
			if ev.Name == tc.env {
				key = ev.Key
			}
		}
		_, err := Load("", nil, map[string]string{key: tc.value})
		if err == nil || !strings.Contains(err.Error(), "override "+key) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("override %s=%q: error %v", key, tc.value, err)
		}
	}

	_, err := Load("", nil, map[string]string{"raft.election_timout_ms": "1"})
	if err == nil || !strings.Contains(err.Error(), `unknown key "raft.election_timout_ms"`) || !strings.Contains(err.Error(), "did you mean raft.election_timeout_ms") {
		t.Errorf("unknown override key: %v", err)
	}
}

// threeNodes sets up a valid three-member cluster with this node as 1.
func threeNodes(c *Config) {
	c.Cluster.Enabled = true
	c.Cluster.Peers.Nodes = []Peer{{ID: 1, Addr: "localhost:9092"}, {ID: 2, Addr: "localhost:9093"}, {ID: 3, Addr: "localhost:9094"}}
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // substrings of the error
	}{
		{"node_id zero", func(c *Config) { c.NodeID = 0 }, []string{"node_id (CHRONIK_NODE_ID) = 0 must be between 1"}},
		{"advertised no port", func(c *Config) { c.AdvertisedAddr = "localhost" }, []string{"advertised_addr (CHRONIK_ADVERTISED_ADDR)", "host:port"}},
		{"advertised no host", func(c *Config) { c.AdvertisedAddr = ":9092" }, []string{"advertised_addr", "must name a host"}},
		{"advertised bad port", func(c *Config) { c.AdvertisedAddr = "h:70000" }, []string{"advertised_addr", "port between 1 and 65535"}},
		{"advertised named port", func(c *Config) { c.AdvertisedAddr = "h:kafka" }, []string{"advertised_addr", "port between 1 and 65535"}},
		{"listen addr", func(c *Config) { c.ListenAddr = "9092" }, []string{"listen_addr (CHRONIK_LISTEN_ADDR) = \"9092\" must be [host]:port"}},
		{"metrics addr", func(c *Config) { c.MetricsAddr = "x:0" }, []string{"metrics_addr (CHRONIK_METRICS_ADDR)"}},
		{"data_dir empty", func(c *Config) { c.DataDir = "" }, []string{"data_dir (CHRONIK_DATA_DIR) = \"\" must not be empty"}},
		{"log_level", func(c *Config) { c.LogLevel = "verbose" }, []string{"log_level (CHRONIK_LOG_LEVEL) = \"verbose\" must be one of debug, info, warn, error"}},
		{"log_format", func(c *Config) { c.LogFormat = "xml" }, []string{"log_format (CHRONIK_LOG_FORMAT)", "text, json"}},

		{"num_partitions", func(c *Config) { c.Kafka.NumPartitions = 0 }, []string{"kafka.num_partitions (CHRONIK_KAFKA_NUM_PARTITIONS) = 0 must be at least 1"}},
		{"default rf negative", func(c *Config) { c.Kafka.DefaultReplicationFactor = -1 }, []string{"kafka.default_replication_factor"}},
		{"socket max", func(c *Config) { c.Kafka.SocketRequestMaxBytes = 0 }, []string{"kafka.socket_request_max_bytes"}},
		{"message max", func(c *Config) { c.Kafka.MessageMaxBytes = -5 }, []string{"kafka.message_max_bytes"}},
		{"queued requests below a request", func(c *Config) { c.Kafka.QueuedMaxRequestBytes = 50 << 20 }, []string{
			"kafka.queued_max_request_bytes (CHRONIK_KAFKA_QUEUED_MAX_REQUEST_BYTES) = 52428800 must be at least kafka.socket_request_max_bytes = 104857600"}},
		{"request raised past the queue", func(c *Config) { c.Kafka.SocketRequestMaxBytes = 300 << 20 }, []string{"kafka.queued_max_request_bytes", "a request of that size could never be read"}},
		{"request read timeout", func(c *Config) { c.Kafka.RequestReadTimeoutMs = 0 }, []string{"kafka.request_read_timeout_ms (CHRONIK_KAFKA_REQUEST_READ_TIMEOUT_MS) = 0 must be at least 1"}},
		{"fetch max", func(c *Config) { c.Kafka.FetchMaxBytes = 100 }, []string{"kafka.fetch_max_bytes (CHRONIK_KAFKA_FETCH_MAX_BYTES) = 100 must be at least 1024"}},
		{"fetch budget below two responses", func(c *Config) { c.Kafka.QueuedMaxFetchBytes = 100 << 20 }, []string{
			"kafka.queued_max_fetch_bytes (CHRONIK_KAFKA_QUEUED_MAX_FETCH_BYTES) = 104857600 must be at least twice kafka.fetch_max_bytes = 57671680"}},
		{"offsets partitions", func(c *Config) { c.Kafka.OffsetsTopicNumPartitions = 0 }, []string{"kafka.offsets_topic_num_partitions"}},
		{"offsets retention", func(c *Config) { c.Kafka.OffsetsRetentionMinutes = 0 }, []string{"kafka.offsets_retention_minutes"}},
		{"group min", func(c *Config) { c.Kafka.GroupMinSessionTimeoutMs = 0 }, []string{"kafka.group_min_session_timeout_ms"}},
		{"group max", func(c *Config) { c.Kafka.GroupMaxSessionTimeoutMs = -1 }, []string{"kafka.group_max_session_timeout_ms (CHRONIK_KAFKA_GROUP_MAX_SESSION_TIMEOUT_MS) = -1 must be at least 1"}},
		{"group min > max", func(c *Config) { c.Kafka.GroupMinSessionTimeoutMs = 10000; c.Kafka.GroupMaxSessionTimeoutMs = 5000 },
			[]string{"kafka.group_min_session_timeout_ms (CHRONIK_KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS) = 10000 must not be more than kafka.group_max_session_timeout_ms = 5000"}},
		{"rebalance delay", func(c *Config) { c.Kafka.GroupInitialRebalanceDelayMs = -1 }, []string{"kafka.group_initial_rebalance_delay_ms"}},
		{"segment bytes small", func(c *Config) { c.Kafka.LogSegmentBytes = 1023 }, []string{"kafka.log_segment_bytes", "between 1024 and 2147483647"}},
		{"segment bytes big", func(c *Config) { c.Kafka.LogSegmentBytes = 1 << 31 }, []string{"kafka.log_segment_bytes", "between 1024 and 2147483647"}},
		{"segment ms", func(c *Config) { c.Kafka.LogSegmentMs = 0 }, []string{"kafka.log_segment_ms"}},
		{"retention ms", func(c *Config) { c.Kafka.LogRetentionMs = 0 }, []string{"kafka.log_retention_ms", "-1 (keep forever) or positive"}},
		{"retention bytes", func(c *Config) { c.Kafka.LogRetentionBytes = -2 }, []string{"kafka.log_retention_bytes", "-1 (no limit) or positive"}},
		{"retention check", func(c *Config) { c.Kafka.LogRetentionCheckIntervalMs = 0 }, []string{"kafka.log_retention_check_interval_ms"}},
		{"producer id expiration", func(c *Config) { c.Kafka.ProducerIDExpirationMs = 0 }, []string{"kafka.producer_id_expiration_ms"}},

		{"rf even", func(c *Config) { c.Cluster.ReplicationFactor = 2; c.Cluster.MinInsyncReplicas = 1 }, []string{"cluster.replication_factor (CHRONIK_CLUSTER_REPLICATION_FACTOR) = 2 must be odd"}},
		{"rf zero", func(c *Config) { c.Cluster.ReplicationFactor = 0; c.Cluster.MinInsyncReplicas = 1 }, []string{"cluster.replication_factor", "at least 1"}},
		{"isr zero", func(c *Config) { c.Cluster.MinInsyncReplicas = 0 }, []string{"cluster.min_insync_replicas (CHRONIK_CLUSTER_MIN_INSYNC_REPLICAS) = 0 must be at least 1"}},
		{"isr > rf", func(c *Config) { c.Cluster.MinInsyncReplicas = 4 }, []string{"cluster.min_insync_replicas", "must not be more than cluster.replication_factor = 3"}},
		{"peer id zero", func(c *Config) { threeNodes(c); c.Cluster.Peers.Nodes[2].ID = 0 }, []string{"cluster.peers.nodes[2].id (CHRONIK_CLUSTER_PEERS) = 0"}},
		{"peer id dup", func(c *Config) { threeNodes(c); c.Cluster.Peers.Nodes[2].ID = 2 }, []string{"cluster.peers.nodes[2].id", "is also the id of cluster.peers.nodes[1]"}},
		{"peer addr dup", func(c *Config) { threeNodes(c); c.Cluster.Peers.Nodes[2].Addr = "localhost:9093" }, []string{"cluster.peers.nodes[2].addr", "is also the address of cluster.peers.nodes[1]"}},
		{"peer addr bad", func(c *Config) { threeNodes(c); c.Cluster.Peers.Nodes[1].Addr = "localhost" }, []string{"cluster.peers.nodes[1].addr", "host:port"}},
		{"peer raft addr bad", func(c *Config) { threeNodes(c); c.Cluster.Peers.Nodes[1].RaftAddr = "x" }, []string{"cluster.peers.nodes[1].raft_addr", "host:port"}},
		{"peer raft addr dup", func(c *Config) { threeNodes(c); c.Cluster.Peers.Nodes[1].RaftAddr = "localhost:9192" },
			[]string{"cluster.peers.nodes[1].raft_addr", "is also the raft address of cluster.peers.nodes[0]"}},
		{"peer raft addr clashes with kafka", func(c *Config) { threeNodes(c); c.Cluster.Peers.Nodes[1].RaftAddr = "localhost:9094" },
			[]string{"cluster.peers.nodes[1].raft_addr", "is also the Kafka address of cluster.peers.nodes[2]"}},
		{"peer raft port overflow", func(c *Config) { threeNodes(c); c.Cluster.Peers.Nodes[2].Addr = "h:65500" }, []string{"cluster.peers.nodes[2].raft_addr", "above 65535"}},
		{"peers missing self", func(c *Config) { threeNodes(c); c.NodeID = 4 }, []string{"cluster.peers.nodes (CHRONIK_CLUSTER_PEERS)", "must include this node (node_id = 4)"}},
		{"cluster without peers", func(c *Config) { c.Cluster.Enabled = true }, []string{"cluster.peers.nodes", "must include this node"}},
		{"rf > members", func(c *Config) {
			threeNodes(c)
			c.Cluster.ReplicationFactor = 5
		}, []string{"cluster.replication_factor", "is more than the 3 members"}},
		{"default rf > members", func(c *Config) { threeNodes(c); c.Kafka.DefaultReplicationFactor = 4 }, []string{"kafka.default_replication_factor", "is more than the 3 members"}},
		{"discovery mode", func(c *Config) { c.Cluster.Discovery.Mode = "consul" }, []string{"cluster.discovery.mode (CHRONIK_CLUSTER_DISCOVERY_MODE)", "static, dns"}},
		{"dns without service", func(c *Config) { c.Cluster.Discovery.Mode = "dns" }, []string{"cluster.discovery.dns_service (CHRONIK_CLUSTER_DISCOVERY_DNS_SERVICE)", `must be set when cluster.discovery.mode = "dns"`}},
		{"refresh interval", func(c *Config) { c.Cluster.Discovery.RefreshIntervalSecs = 0 }, []string{"cluster.discovery.refresh_interval_secs"}},

		{"election zero", func(c *Config) { c.Raft.ElectionTimeoutMs = 0 }, []string{"raft.election_timeout_ms (CHRONIK_RAFT_ELECTION_TIMEOUT_MS) = 0 must be at least 1"}},
		{"heartbeat zero", func(c *Config) { c.Raft.HeartbeatIntervalMs = 0 }, []string{"raft.heartbeat_interval_ms (CHRONIK_RAFT_HEARTBEAT_INTERVAL_MS) = 0 must be at least 1"}},
		{"heartbeat >= election", func(c *Config) { c.Raft.HeartbeatIntervalMs = 2000 },
			[]string{"invalid config: raft.heartbeat_interval_ms (CHRONIK_RAFT_HEARTBEAT_INTERVAL_MS) = 2000 must be less than raft.election_timeout_ms = 1000"}},
		{"rpc <= heartbeat", func(c *Config) { c.Raft.RPCTimeoutMs = 100 }, []string{"raft.rpc_timeout_ms (CHRONIK_RAFT_RPC_TIMEOUT_MS) = 100 must be greater than raft.heartbeat_interval_ms = 100"}},
		{"inflight", func(c *Config) { c.Raft.MaxInflightMessages = 0 }, []string{"raft.max_inflight_messages"}},
		{"raft listen", func(c *Config) { c.Raft.ListenAddr = "nope" }, []string{"raft.listen_addr (CHRONIK_RAFT_LISTEN_ADDR)"}},
		{"raft default port overflow", func(c *Config) {
			c.Cluster.Enabled = true
			c.Cluster.Discovery = DiscoveryConfig{Mode: "dns", DNSService: "s", RefreshIntervalSecs: 1}
			c.AdvertisedAddr = "h:65500"
		},
			[]string{"raft.listen_addr", "above 65535"}},
		{"snapshot size", func(c *Config) { c.Raft.Snapshots.MaxLogSizeMB = 0 }, []string{"raft.snapshots.max_log_size_mb (CHRONIK_RAFT_SNAPSHOTS_MAX_LOG_SIZE_MB)"}},
		{"snapshot interval", func(c *Config) { c.Raft.Snapshots.MinIntervalEntries = 0 }, []string{"raft.snapshots.min_interval_entries"}},
		{"compression", func(c *Config) { c.Raft.Snapshots.Compression = "lz4" }, []string{"raft.snapshots.compression", "none, gzip, zstd"}},
		{"lag entries", func(c *Config) { c.Raft.Advanced.ReplicaLagMaxEntries = 0 }, []string{"raft.advanced.replica_lag_max_entries (CHRONIK_RAFT_ADVANCED_REPLICA_LAG_MAX_ENTRIES)"}},
		{"lag ms", func(c *Config) { c.Raft.Advanced.ReplicaLagMaxMs = -1 }, []string{"raft.advanced.replica_lag_max_ms (CHRONIK_RAFT_ADVANCED_REPLICA_LAG_MAX_MS) = -1"}},

		{"store type", func(c *Config) { c.ObjectStore.Type = "gcs" }, []string{"object_store.type (CHRONIK_OBJECT_STORE_TYPE)", "local, s3"}},
		{"s3 without bucket", func(c *Config) { c.ObjectStore.Type = "s3" }, []string{"object_store.bucket (CHRONIK_OBJECT_STORE_BUCKET)", "must be set when object_store.type = \"s3\""}},
		{"s3 key without secret", func(c *Config) { c.ObjectStore = ObjectStoreConfig{Type: "s3", Bucket: "b", AccessKeyID: "AK"} },
			[]string{"object_store.secret_access_key (CHRONIK_OBJECT_STORE_SECRET_ACCESS_KEY) must be set"}},
		{"s3 secret without key", func(c *Config) { c.ObjectStore = ObjectStoreConfig{Type: "s3", Bucket: "b", SecretAccessKey: "hush"} },
			[]string{"object_store.access_key_id", "set both or neither"}},
		{"s3 endpoint", func(c *Config) {
			c.ObjectStore = ObjectStoreConfig{Type: "s3", Bucket: "b", Endpoint: "localhost:9000"}
		},
			[]string{"object_store.endpoint (CHRONIK_OBJECT_STORE_ENDPOINT)", "http:// or https://"}},

		{"wal interval", func(c *Config) { c.WAL.GroupCommitIntervalMs = -1 }, []string{"wal.group_commit_interval_ms (CHRONIK_WAL_GROUP_COMMIT_INTERVAL_MS) = -1 must be at least 0"}},
		{"wal batch", func(c *Config) { c.WAL.MaxBatchSize = 0 }, []string{"wal.max_batch_size (CHRONIK_WAL_MAX_BATCH_SIZE) = 0 must be at least 1"}},

		{"metrics on kafka port", func(c *Config) { c.MetricsAddr = "0.0.0.0:9092" }, []string{"metrics_addr", `uses the same port as listen_addr = ":9092"`}},
		{"raft on metrics port", func(c *Config) { threeNodes(c); c.Raft.ListenAddr = ":8080" }, []string{"raft.listen_addr", "same port as metrics_addr"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("%T is not a *FieldError", err)
			}
			if strings.Contains(err.Error(), "hush") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestValidCases(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"three nodes", threeNodes},
		{"single node rf 1", func(c *Config) { c.Cluster.ReplicationFactor = 1; c.Cluster.MinInsyncReplicas = 1 }},
		{"cluster of one", func(c *Config) {
			c.Cluster.Enabled = true
			c.Cluster.ReplicationFactor, c.Cluster.MinInsyncReplicas = 1, 1
			c.Cluster.Peers.Nodes = []Peer{{ID: 1, Addr: "localhost:9092"}}
		}},
		{"dns discovery needs no peers", func(c *Config) {
			c.Cluster.Enabled = true
			c.Cluster.Discovery.Mode, c.Cluster.Discovery.DNSService = "dns", "chronik.svc"
		}},
		{"wan tuning", func(c *Config) {
			threeNodes(c)
			c.Raft.ElectionTimeoutMs, c.Raft.HeartbeatIntervalMs, c.Raft.RPCTimeoutMs = 5000, 500, 15000
		}},
		{"s3", func(c *Config) {
			c.ObjectStore = ObjectStoreConfig{Type: "s3", Bucket: "b", Endpoint: "http://localhost:9000", AccessKeyID: "a", SecretAccessKey: "s", Region: "us-east-1"}
		}},
		{"retention forever", func(c *Config) { c.Kafka.LogRetentionMs = -1 }},
		{"ipv6 addresses", func(c *Config) {
			c.AdvertisedAddr = "[::1]:9092"
			c.ListenAddr = "[::]:9092"
			c.MetricsAddr = "[::1]:8080"
		}},
		{"metrics disabled", func(c *Config) { c.MetricsAddr = "" }},
		{"segment bounds", func(c *Config) { c.Kafka.LogSegmentBytes = 1024 }},
		{"small memory", func(c *Config) {
			c.Kafka.SocketRequestMaxBytes, c.Kafka.QueuedMaxRequestBytes = 4<<20, 16<<20
			c.Kafka.FetchMaxBytes, c.Kafka.QueuedMaxFetchBytes = 4<<20, 8<<20
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	c := Default()
	c.NodeID = 0
	c.LogLevel = "loud"
	c.Raft.HeartbeatIntervalMs = 2000
	c.WAL.MaxBatchSize = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, key := range []string{"node_id", "log_level", "raft.heartbeat_interval_ms", "wal.max_batch_size"} {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, "invalid config: "+key+" ")
		}
		if !found {
			t.Errorf("no line for %s in:\n%v", key, err)
		}
	}

	// Load joins file, environment, override and validation errors.
	p := writeFile(t, "bogus = 1\n")
	_, err = Load(p, env("CHRONIK_WAL_MAX_BATCH_SIZE=x"), map[string]string{"node_id": "0"})
	for _, w := range []string{"unknown key bogus", "CHRONIK_WAL_MAX_BATCH_SIZE", "node_id (CHRONIK_NODE_ID) = 0"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown top key", "data_dri = \"x\"\n", []string{"unknown key data_dri", "did you mean data_dir"}},
		{"unknown nested key", "[raft]\nelection_timeout = 5\n", []string{"unknown key raft.election_timeout", "did you mean raft.election_timeout_ms"}},
		{"unknown table", "[raft.snapshot]\ncompression = \"none\"\n", []string{"unknown key raft.snapshot.compression", "did you mean raft.snapshots.compression"}},
		{"wrong table", "[kafka]\ndata_dir = \"x\"\n", []string{"unknown key kafka.data_dir", "did you mean data_dir"}},
		{"unknown peer key", "[[cluster.peers.nodes]]\nid = 1\naddress = \"h:1\"\n", []string{"unknown key cluster.peers.nodes.address"}},
		{"syntax", "node_id = 1\n\nlog_level = = \"x\"\n", []string{"line 3"}},
		{"type", "[raft]\nelection_timeout_ms = \"fast\"\n", []string{"line 2", "raft.election_timeout_ms"}},
		{"range", "[kafka]\ndefault_replication_factor = 40000\n", []string{"kafka.default_replication_factor", "out of range"}},
		{"negative node id", "node_id = -1\n", []string{"node_id = -1 must not be negative"}},
		{"negative peer id", "[[cluster.peers.nodes]]\nid = -2\naddr = \"h:1\"\n", []string{"cluster.peers.nodes[0].id = -2 must not be negative"}},
		{"alias differs", "node_id = 2\n[cluster]\nnode_id = 3\n", []string{"node_id = 2 and its alias cluster.node_id = 3 differ"}},
		{"alias zero", "[cluster]\nnode_id = 0\n", []string{"cluster.node_id = 0 must be at least 1"}},
		{"alias type", "[cluster]\nnode_id = \"two\"\n", []string{"cluster.node_id"}},
		{"validation after file", "[raft]\nheartbeat_interval_ms = 2000\n", []string{"raft.heartbeat_interval_ms (CHRONIK_RAFT_HEARTBEAT_INTERVAL_MS) = 2000 must be less than raft.election_timeout_ms = 1000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.body)
			_, err := Load(p, nil, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			want := tc.want
			if tc.name != "validation after file" {
				want = append(want, p)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}

	missing := filepath.Join(t.TempDir(), "nope.toml")
	if _, err := Load(missing, nil, nil); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
}

func TestNodeIDAlias(t *testing.T) {
	for _, body := range []string{"[cluster]\nnode_id = 4\n", "node_id = 4\n[cluster]\nnode_id = 4\n"} {
		c, err := Load(writeFile(t, body), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.NodeID != 4 {
			t.Errorf("%q: node_id = %d", body, c.NodeID)
		}
	}
	// Overrides accept the alias too.
	if c, err := Load("", nil, map[string]string{"cluster.node_id": "6"}); err != nil || c.NodeID != 6 {
		t.Errorf("override alias: %d, %v", c.NodeID, err)
	}
	if EnvName("cluster.peers") != PeersEnv || EnvName(peersKey) != PeersEnv || EnvName("wal.max_batch_size") != "CHRONIK_WAL_MAX_BATCH_SIZE" {
		t.Error("EnvName")
	}
	// The environment beats the alias.
	c, err := Load(writeFile(t, "[cluster]\nnode_id = 4\n"), env("CHRONIK_NODE_ID=5"), nil)
	if err != nil || c.NodeID != 5 {
		t.Errorf("env over alias: %d, %v", c.NodeID, err)
	}
}

func TestParsePeers(t *testing.T) {
	good := []struct {
		in   string
		want []Peer
	}{
		{"", nil},
		{"  ", nil},
		{"localhost:9092", []Peer{{ID: 1, Addr: "localhost:9092"}}},
		{"a:9092,b:9093, c:9094 ", []Peer{{ID: 1, Addr: "a:9092"}, {ID: 2, Addr: "b:9093"}, {ID: 3, Addr: "c:9094"}}},
		{"3@a:9092,1@b:9092", []Peer{{ID: 3, Addr: "a:9092"}, {ID: 1, Addr: "b:9092"}}},
		{" 10 @ [::1]:9092 , 20@10.0.0.2:9092", []Peer{{ID: 10, Addr: "[::1]:9092"}, {ID: 20, Addr: "10.0.0.2:9092"}}},
	}
	for _, tc := range good {
		got, err := ParsePeers(tc.in)
		if err != nil {
			t.Errorf("ParsePeers(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePeers(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if len(got) > 0 {
			again, err := ParsePeers(FormatPeers(got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("FormatPeers round trip of %q: %+v, %v", tc.in, again, err)
			}
		}
	}
	bad := []struct{ in, want string }{
		{"a:1,", "peer 2 is empty"},
		{",a:1", "peer 1 is empty"},
		{"a", "must be host:port"},
		{":9092", "must name a host"},
		{"a:0", "port between 1 and 65535"},
		{"a:99999", "port between 1 and 65535"},
		{"a:http", "port between 1 and 65535"},
		{"1@a:1,b:2", "not a mix"},
		{"a:1,2@b:2", "not a mix"},
		{"0@a:1", "id \"0\" must be an integer between 1"},
		{"x@a:1", "must be an integer"},
		{"-1@a:1", "must be an integer"},
		{"1@a:1,1@b:1", "id 1 is also used by peer 1"},
		{"a:1,a:1", "address a:1 is also used by peer 1"},
		{"1@", "must be host:port"},
	}
	for _, tc := range bad {
		_, err := ParsePeers(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePeers(%q) error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestPeerRaftAddress(t *testing.T) {
	tests := []struct {
		p    Peer
		want string
	}{
		{Peer{Addr: "h:9092"}, "h:9192"},
		{Peer{Addr: "[::1]:9093"}, "[::1]:9193"},
		{Peer{Addr: "h:9092", RaftAddr: "r:7000"}, "r:7000"},
		{Peer{Addr: "h:65500"}, ""},
		{Peer{Addr: "bad"}, ""},
	}
	for _, tc := range tests {
		if got := tc.p.RaftAddress(); got != tc.want {
			t.Errorf("%+v.RaftAddress() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestListenAddrs(t *testing.T) {
	c := Default()
	c.AdvertisedAddr = "node2.example:9093"
	if got := c.KafkaListenAddr(); got != ":9093" {
		t.Errorf("KafkaListenAddr = %q", got)
	}
	if got := c.RaftListenAddr(); got != ":9193" {
		t.Errorf("RaftListenAddr = %q", got)
	}
	c.ListenAddr = "127.0.0.1:19093"
	if got := c.KafkaListenAddr(); got != "127.0.0.1:19093" {
		t.Errorf("KafkaListenAddr = %q", got)
	}
	// This node's entry in the member list decides the raft port.
	c.Cluster.Peers.Nodes = []Peer{{ID: 1, Addr: "node2.example:9093", RaftAddr: "node2.example:7001"}}
	if got := c.RaftListenAddr(); got != ":7001" {
		t.Errorf("RaftListenAddr with peer raft_addr = %q", got)
	}
	c.Raft.ListenAddr = "10.0.0.1:7777"
	if got := c.RaftListenAddr(); got != "10.0.0.1:7777" {
		t.Errorf("RaftListenAddr explicit = %q", got)
	}
	c.ObjectStore.Path = "/objects"
	if got := c.ObjectStorePath(); got != "/objects" {
		t.Errorf("ObjectStorePath = %q", got)
	}
}

func TestDefaultReplicationFactor(t *testing.T) {
	c := Default()
	if got := c.DefaultReplicationFactor(3); got != 1 {
		t.Errorf("single node: %d", got)
	}
	threeNodes(&c)
	for nodes, want := range map[int]int16{1: 1, 2: 2, 3: 3, 5: 3} {
		if got := c.DefaultReplicationFactor(nodes); got != want {
			t.Errorf("nodes %d: %d, want %d", nodes, got, want)
		}
	}
	c.Kafka.DefaultReplicationFactor = 2
	if got := c.DefaultReplicationFactor(3); got != 2 {
		t.Errorf("explicit: %d", got)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string // "" means no warning
	}{
		{"heartbeat tenth is fine", func(c *Config) { c.Raft.ElectionTimeoutMs, c.Raft.HeartbeatIntervalMs = 5000, 500 }, ""},
		{"heartbeat too close", func(c *Config) { c.Raft.HeartbeatIntervalMs = 300 }, "raft.heartbeat_interval_ms = 300 is more than a tenth of raft.election_timeout_ms = 1000"},
		{"peers without cluster", func(c *Config) { c.Cluster.Peers.Nodes = []Peer{{ID: 1, Addr: "h:1"}} }, "cluster.enabled is false"},
		{"advertised differs", func(c *Config) { threeNodes(c); c.AdvertisedAddr = "other:9092" }, "differs from this node's address"},
		{"isr equals rf", func(c *Config) { threeNodes(c); c.Cluster.MinInsyncReplicas = 3 }, "any one replica is down"},
		{"default rf below isr", func(c *Config) { threeNodes(c); c.Kafka.DefaultReplicationFactor = 1 }, "auto-created topics will fail"},
		{"default rf single node", func(c *Config) { c.Kafka.DefaultReplicationFactor = 3 }, "is ignored because cluster.enabled is false"},
		{"message larger than request", func(c *Config) { c.Kafka.MessageMaxBytes = 200 << 20 }, "kafka.message_max_bytes"},
		{"no room beside a largest request", func(c *Config) { c.Kafka.QueuedMaxRequestBytes = 100 << 20 }, "small requests (Metadata, Fetch, ordinary produces) wait"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("warning case must be valid: %v", err)
			}
			w := c.Warnings()
			if tc.want == "" {
				if len(w) != 0 {
					t.Fatalf("unexpected warnings %q", w)
				}
				return
			}
			if len(w) != 1 || !strings.Contains(w[0], tc.want) {
				t.Fatalf("warnings %q, want one containing %q", w, tc.want)
			}
		})
	}
}

// TestMemoryBound checks the formula docs/configuration.md gives.
func TestMemoryBound(t *testing.T) {
	c := Default()
	// The cleaner's key map, its I/O buffers and three batches.
	cleaner := int64(128+2)<<20 + 64<<10 + 3*int64(c.Kafka.MessageMaxBytes)
	// requests, fetches, response buffers, base, uncommitted, entry cache,
	// decompressed batches
	if got, want := c.MemoryLimit(), int64(256+256+32+64+256+64+128)<<20+cleaner; got != want {
		t.Errorf("MemoryLimit() = %d, want %d", got, want)
	}
	if got, want := c.MemoryBound(100), int64(256+256+32+64+256+64+128+100)<<20+100*136<<10+cleaner; got != want {
		t.Errorf("MemoryBound(100) = %d, want %d", got, want)
	}
	c.Kafka.LogCleanerEnable = false
	if got, want := c.MemoryLimit(), int64(256+256+32+64+256+64+128)<<20; got != want {
		t.Errorf("MemoryLimit() without the cleaner = %d, want %d", got, want)
	}
	// In a cluster, each peer adds its raft message queues both ways.
	c.Cluster.Enabled = true
	c.Cluster.Peers.Nodes = []Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	if got, want := c.MemoryLimit(), int64(256+256+32+64+256+64+128+2*2*64)<<20; got != want {
		t.Errorf("MemoryLimit() of a node of three = %d, want %d", got, want)
	}
}

// tomlLeaves walks Config independently of the package's own walker.
func tomlLeaves(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("toml"), ",")[0]
		if name == "" {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, tomlLeaves(f.Type, prefix+name+".")...)
			continue
		}
		out = append(out, prefix+name)
	}
	return out
}

func TestEnvVarsCoverEveryLeaf(t *testing.T) {
	want := tomlLeaves(reflect.TypeOf(Config{}), "")
	vars := EnvVars()
	var got []string
	for _, v := range vars {
		got = append(got, v.Key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("EnvVars keys\n%v\nwant\n%v", got, want)
	}
	re := regexp.MustCompile(`^CHRONIK_[A-Z0-9_]+$`)
	seen := map[string]bool{}
	for _, v := range vars {
		wantName := "CHRONIK_" + strings.ToUpper(strings.ReplaceAll(v.Key, ".", "_"))
		if v.Key == "cluster.peers.nodes" {
			wantName = "CHRONIK_CLUSTER_PEERS"
		}
		if v.Name != wantName || !re.MatchString(v.Name) {
			t.Errorf("%s: env %s, want %s", v.Key, v.Name, wantName)
		}
		if seen[v.Name] {
			t.Errorf("duplicate env var %s", v.Name)
		}
		seen[v.Name] = true
		if v.Description == "" {
			t.Errorf("%s has no desc tag", v.Key)
		}
		if v.Type == "" {
			t.Errorf("%s has no type", v.Key)
		}
	}

	// Every variable actually sets its key, and its documented default
	// parses back to the default.
	for _, v := range vars {
		val := "zz-test"
		switch v.Type {
		case "bool":
			val = map[string]string{"true": "false", "false": "true"}[v.Default]
		case "peers":
			val = "9@h:1"
		case "string":
		default:
			val = "7"
		}
		c := Default()
		if errs := applyEnv(&c, env(v.Name+"="+val)); len(errs) != 0 {
			t.Errorf("%s=%s: %v", v.Name, val, errs)
		}
		if reflect.DeepEqual(c, Default()) {
			t.Errorf("%s=%s changed nothing", v.Name, val)
		}
		if v.Default != "" {
			c := Default()
			if errs := applyEnv(&c, env(v.Name+"="+v.Default)); len(errs) != 0 || !reflect.DeepEqual(c, Default()) {
				t.Errorf("%s: default %q does not round-trip (%v)", v.Name, v.Default, errs)
			}
		}
	}
}

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{"PATH=/bin", "CHRONIK_DATA_DIR=/x", "CHRONIK_DATADIR=/y", "CHRONIK_CLUSTER_PEERS=a:1", "CHRONIK_RAFT_ELECTION_TIMEOUT=1"})
	want := []string{"CHRONIK_DATADIR", "CHRONIK_RAFT_ELECTION_TIMEOUT"}
	if !slices.Equal(got, want) {
		t.Fatalf("UnknownEnv = %v, want %v", got, want)
	}
}

func TestSecrets(t *testing.T) {
	c := Default()
	c.ObjectStore.SecretAccessKey = "hush"
	c.Cluster.Peers.Nodes = []Peer{{ID: 1, Addr: "h:1"}}
	r := c.Redacted()
	if r.ObjectStore.SecretAccessKey == "hush" || c.ObjectStore.SecretAccessKey != "hush" {
		t.Fatal("Redacted did not copy and hide the secret")
	}
	r.Cluster.Peers.Nodes[0].Addr = "changed"
	if c.Cluster.Peers.Nodes[0].Addr != "h:1" {
		t.Fatal("Redacted shares the peer list")
	}
	for _, v := range EnvVars() {
		if v.Key == "object_store.secret_access_key" && v.Default != "" {
			t.Fatal("secret has a default")
		}
	}
}

// TestDocs keeps docs/configuration.md in step with the code: every key
// has a table row naming its variable and default.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if m := regexp.MustCompile("^\\| `([a-z0-9_.]+)` \\|").FindStringSubmatch(line); m != nil {
			rows[m[1]] = line
		}
	}
	for _, v := range EnvVars() {
		row, ok := rows[v.Key]
		if !ok {
			t.Errorf("docs/configuration.md has no row for %s", v.Key)
			continue
		}
		cells := strings.Split(row, "|")
		if len(cells) < 6 {
			t.Errorf("row for %s is short: %s", v.Key, row)
			continue
		}
		env, typ, def := strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3]), strings.TrimSpace(cells[4])
		if env != "`"+v.Name+"`" {
			t.Errorf("%s: doc env %s, want %s", v.Key, env, v.Name)
		}
		if typ != v.Type {
			t.Errorf("%s: doc type %s, want %s", v.Key, typ, v.Type)
		}
		wantDef := "`" + v.Default + "`"
		if v.Default == "" {
			wantDef = `""`
		}
		if def != wantDef {
			t.Errorf("%s: doc default %s, want %s", v.Key, def, wantDef)
		}
	}
}

// TestDocExamples loads every TOML block of docs/configuration.md and the
// environment-only cluster example.
func TestDocExamples(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d toml blocks", len(blocks))
	}
	for i, b := range blocks {
		c, err := Load(writeFile(t, b[1]), nil, nil)
		if err != nil {
			t.Errorf("block %d:\n%s\n%v", i, b[1], err)
			continue
		}
		if strings.Contains(b[1], "node1.toml") {
			if c.RaftListenAddr() != ":9192" || c.KafkaListenAddr() != ":9092" || len(c.Warnings()) != 0 {
				t.Errorf("node1: raft %s kafka %s warnings %q", c.RaftListenAddr(), c.KafkaListenAddr(), c.Warnings())
			}
		}
	}
	for n := 1; n <= 3; n++ {
		id, port := string(rune('0'+n)), 9091+n
		c, err := Load("", env(
			"CHRONIK_NODE_ID="+id,
			"CHRONIK_ADVERTISED_ADDR=localhost:"+strconv.Itoa(port),
			"CHRONIK_DATA_DIR=./data/node-"+id,
			"CHRONIK_METRICS_ADDR=:808"+id,
			"CHRONIK_CLUSTER_ENABLED=true",
			"CHRONIK_CLUSTER_PEERS=localhost:9092,localhost:9093,localhost:9094",
		), nil)
		if err != nil {
			t.Fatalf("node %d: %v", n, err)
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("node %d warnings %q", n, w)
		}
		if got, want := c.RaftListenAddr(), ":"+strconv.Itoa(port+100); got != want {
			t.Errorf("node %d raft listen %s, want %s", n, got, want)
		}
	}
}

func TestUnsupportedKeysAreRefused(t *testing.T) {
	d := Default()
	if err := d.Unsupported(); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	d.Cluster.Discovery = DiscoveryConfig{Mode: "dns", DNSService: "chronik.svc", RefreshIntervalSecs: 5, DNSServer: "127.0.0.1:5353"}
	if err := d.Unsupported(); err != nil {
		t.Fatalf("DNS discovery is refused: %v", err)
	}
	for _, c := range []struct {
		name string
		set  func(*Config)
		key  string
	}{
		{"s3", func(c *Config) { c.ObjectStore.Type = "s3" }, "object_store.type (CHRONIK_OBJECT_STORE_TYPE)"},
		{"bucket", func(c *Config) { c.ObjectStore.Bucket = "b" }, "object_store.bucket"},
		{"path", func(c *Config) { c.ObjectStore.Path = "/objects" }, "object_store.path"},
		{"secret", func(c *Config) { c.ObjectStore.SecretAccessKey = "hush" }, "object_store.secret_access_key"},
		{"dns service without dns", func(c *Config) { c.Cluster.Discovery.DNSService = "chronik.svc" }, "cluster.discovery.dns_service"},
		{"refresh without dns", func(c *Config) { c.Cluster.Discovery.RefreshIntervalSecs = 5 }, "cluster.discovery.refresh_interval_secs"},
		{"dns server without dns", func(c *Config) { c.Cluster.Discovery.DNSServer = "127.0.0.1:53" }, "cluster.discovery.dns_server"},
	} {
		cfg := Default()
		c.set(&cfg)
		err := cfg.Unsupported()
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.key)
		}
		if strings.Contains(err.Error(), "hush") {
			t.Errorf("%s: the error shows the secret: %v", c.name, err)
		}
	}
}

func TestNodeIDFromHostname(t *testing.T) {
	for host, want := range map[string]uint64{"chronik-0": 1, "chronik-2.chronik-headless.default.svc.cluster.local": 3, "my-app-db-11": 12} {
		if id, err := NodeIDFromHostname(host); err != nil || id != want {
			t.Errorf("%s: %d %v, want %d", host, id, err, want)
		}
	}
	for _, host := range []string{"chronik", "chronik-", "chronik-x.svc", "chronik-99999999999"} {
		if _, err := NodeIDFromHostname(host); err == nil {
			t.Errorf("%s gave a node id", host)
		}
	}
}
