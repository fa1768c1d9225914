// Package server assembles a Chronik node from its parts and runs it: the
// storage, the raft host, the catalog, the partition replicas, the group
// coordinator, the Kafka listener and the HTTP endpoint for metrics and
// health.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chronik-stream/chronik/internal/broker"
	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/metrics"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/topicconfig"
	"github.com/chronik-stream/chronik/internal/transport"
	"github.com/chronik-stream/chronik/internal/wire"
)

// metadataLog is the log of the catalog's raft group.
const metadataLog = "__cluster_metadata-0"

// Node is a running Chronik node.
type Node struct {
	cfg     config.Config
	logger  *slog.Logger
	metrics *metrics.Metrics

	store     *storage.Store
	transport *transport.Transport
	host      *raftnode.Host
	catalog   *meta.Catalog
	replicas  *replica.Manager
	groups    *group.Coordinator
	broker    *broker.Broker
	kafka     *wire.Server
	http      *http.Server
	httpLn    net.Listener

	defaults  topicconfig.Defaults
	publisher *publisher
	ready     atomic.Bool
	clusterID atomic.Pointer[string] // set once the catalog has one
	stop      chan struct{}
	wg        sync.WaitGroup
}

// Start brings a node up and returns once it serves Kafka clients.
func Start(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *Node, err error) {
	n := &Node{cfg: cfg, logger: logger, metrics: metrics.New(), stop: make(chan struct{})}
	defer func() {
		if err != nil {
			n.shutdown(context.Background())
		}
	}()
	if cfg.Cluster.Enabled && cfg.Cluster.Discovery.Mode == "dns" {
		return nil, fmt.Errorf("cluster.discovery.mode = \"dns\" is not supported yet: list the members in cluster.peers")
	}
	if cfg.ObjectStore.Type != "local" {
		logger.Warn("object_store is not used yet: raft snapshots to object storage are not implemented", "object_store.type", cfg.ObjectStore.Type)
	}
	if err := n.checkIdentity(); err != nil {
		return nil, err
	}
	n.store, err = storage.Open(cfg.DataDir, storage.Options{
		GroupCommitInterval:    time.Duration(cfg.WAL.GroupCommitIntervalMs) * time.Millisecond,
		MaxBatchSize:           cfg.WAL.MaxBatchSize,
		RetentionCheckInterval: time.Duration(cfg.Kafka.LogRetentionCheckIntervalMs) * time.Millisecond,
		Logger:                 logger,
		OnSync:                 n.metrics.Fsync,
	})
	if err != nil {
		return nil, err
	}
	members := n.members()
	var rt raftnode.Transport
	var forward meta.Forwarder
	// The transport starts before the host it delivers to exists (the
	// host needs the transport to send).
	var raftHost lateHost
	if cfg.Cluster.Enabled {
		peers := map[uint64]string{}
		for _, p := range cfg.Cluster.Peers.Nodes {
			peers[p.ID] = p.RaftAddress()
		}
		n.transport, err = transport.New(transport.Options{
			NodeID: cfg.NodeID, Listen: cfg.RaftListenAddr(), Peers: peers,
			DialTimeout: time.Duration(cfg.Raft.RPCTimeoutMs) * time.Millisecond / 5,
			Logger:      logger,
			Deliver:     raftHost.deliver,
			Unreachable: raftHost.reportUnreachable,
			PeerDown:    raftHost.peerDown,
			ClusterID:   n.knownClusterID,
		})
		if err != nil {
			return nil, err
		}
		rt = n.transport
		forward = n.forwardToMetadataLeader
	}
	tick := time.Duration(cfg.Raft.HeartbeatIntervalMs) * time.Millisecond
	n.host = raftnode.NewHost(raftnode.Config{
		NodeID:          cfg.NodeID,
		TickInterval:    tick,
		ElectionTicks:   max(cfg.Raft.ElectionTimeoutMs/max(cfg.Raft.HeartbeatIntervalMs, 1), 2),
		HeartbeatTicks:  1,
		MaxInflightMsgs: cfg.Raft.MaxInflightMessages,
		// Bounds the memory a leader holds for entries not yet committed,
		// e.g. while its disk is full.
		MaxUncommittedEntriesSize: 256 << 20,
		Logger:                    logger,
		Observer:                  electionObserver{n.metrics},
	}, rt)
	raftHost.Store(n.host)

	metaLog, err := n.store.OpenLog(metadataLog, storage.LogConfig{
		SegmentBytes: 64 << 20, SegmentMs: storage.DefaultSegmentMs, RetentionMs: -1, RetentionBytes: -1,
	})
	if err != nil {
		return nil, err
	}
	voters, learners := metadataMembers(members)
	n.catalog, err = meta.Open(n.host, metaLog, voters, learners, forward, logger.With("component", "catalog"))
	if err != nil {
		return nil, err
	}
	if n.transport != nil {
		n.transport.Handle(proposeMethod, n.answerProposal)
	}
	if err := n.waitForCatalog(ctx, voters); err != nil {
		return nil, err
	}
	if err := n.catalog.Init(ctx); err != nil {
		return nil, fmt.Errorf("initialise the cluster catalog: %w", err)
	}
	if err := n.recordClusterID(); err != nil {
		return nil, err
	}
	cid := n.catalog.ClusterID()
	n.clusterID.Store(&cid)
	host, port, err := splitHostPort(cfg.AdvertisedAddr)
	if err != nil {
		return nil, err
	}
	if err := n.registerBrokers(ctx, host, port); err != nil {
		return nil, err
	}

	n.defaults = topicDefaults(cfg)
	n.groups = group.New(group.Config{
		Partitions:            cfg.Kafka.OffsetsTopicNumPartitions,
		MinSessionTimeout:     time.Duration(cfg.Kafka.GroupMinSessionTimeoutMs) * time.Millisecond,
		MaxSessionTimeout:     time.Duration(cfg.Kafka.GroupMaxSessionTimeoutMs) * time.Millisecond,
		InitialRebalanceDelay: time.Duration(cfg.Kafka.GroupInitialRebalanceDelayMs) * time.Millisecond,
		OffsetsRetention:      time.Duration(cfg.Kafka.OffsetsRetentionMinutes) * time.Minute,
		Logger:                logger.With("component", "groups"),
	}, offsetsPartitions{n})
	n.publisher = newPublisher(n)
	n.replicas = replica.NewManager(replica.Settings{
		NodeID:           cfg.NodeID,
		LagMaxEntries:    uint64(cfg.Raft.Advanced.ReplicaLagMaxEntries),
		LagMax:           time.Duration(cfg.Raft.Advanced.ReplicaLagMaxMs) * time.Millisecond,
		OnLeadership:     n.leadershipChanged,
		OnLeaderState:    n.publisher.leaderState,
		PreferredLeaders: cfg.Raft.Advanced.EnableLeadershipTransfer,
	}, n.store, n.host, logger, commitObserver{n.metrics})
	n.metrics.SetGroupResolver(n.resolveGroup)
	n.metrics.RegisterState(stateSource{n})
	if err := n.reconcile(); err != nil {
		return nil, err
	}
	n.wg.Add(3)
	go n.reconcileLoop()
	go n.publisher.run()
	go n.livenessLoop()

	n.broker = broker.New(broker.Config{
		NodeID:                   int32(cfg.NodeID),
		Host:                     host,
		Port:                     port,
		AutoCreateTopics:         cfg.Kafka.AutoCreateTopicsEnable,
		NumPartitions:            cfg.Kafka.NumPartitions,
		DefaultReplicationFactor: cfg.DefaultReplicationFactor(len(members)),
		OffsetsTopicPartitions:   cfg.Kafka.OffsetsTopicNumPartitions,
		OffsetsReplicationFactor: cfg.DefaultReplicationFactor(len(members)),
		TopicDefaults:            n.defaults,
		FetchMaxBytes:            cfg.Kafka.FetchMaxBytes,
		QueuedMaxFetchBytes:      cfg.Kafka.QueuedMaxFetchBytes,
		Logger:                   logger,
	}, n.catalog, n.replicas, n.groups)
	n.kafka, err = wire.Listen(cfg.KafkaListenAddr(), n.broker, wire.Options{
		MaxRequestSize:        cfg.Kafka.SocketRequestMaxBytes,
		QueuedMaxRequestBytes: cfg.Kafka.QueuedMaxRequestBytes,
		RequestReadTimeout:    time.Duration(cfg.Kafka.RequestReadTimeoutMs) * time.Millisecond,
		Logger:                logger,
		Observer:              n.metrics,
		APIVersions:           broker.APIVersions,
	})
	if err != nil {
		return nil, err
	}
	n.metrics.RegisterBudgets(n.kafka.RequestBudget(), n.broker.FetchBudget())
	if err := n.startHTTP(); err != nil {
		return nil, err
	}
	n.ready.Store(true)
	logger.Info("chronik-server is ready", "node_id", cfg.NodeID, "kafka", n.kafka.Addr().String(),
		"advertised", cfg.AdvertisedAddr, "data_dir", cfg.DataDir, "cluster_id", n.catalog.ClusterID())
	return n, nil
}

// KafkaAddr returns the address the Kafka listener is bound to.
func (n *Node) KafkaAddr() net.Addr { return n.kafka.Addr() }

// HTTPAddr returns the metrics/health listener address, or nil.
func (n *Node) HTTPAddr() net.Addr {
	if n.httpLn == nil {
		return nil
	}
	return n.httpLn.Addr()
}

// Shutdown stops the node gracefully: it stops accepting requests, answers
// those in flight (until ctx ends), and flushes and closes storage.
func (n *Node) Shutdown(ctx context.Context) error {
	n.logger.Info("shutting down")
	return n.shutdown(ctx)
}

func (n *Node) shutdown(ctx context.Context) error {
	n.ready.Store(false)
	if n.transport != nil && n.cfg.Raft.Advanced.EnableLeadershipTransfer && n.replicas != nil {
		n.transferLeaderships(ctx, "before shutdown")
	}
	var errs []error
	if n.kafka != nil {
		if err := n.kafka.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close Kafka listener: %w", err))
		}
	}
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	n.wg.Wait()
	if n.http != nil {
		n.http.Shutdown(ctx)
	}
	if n.groups != nil {
		n.groups.Close()
	}
	if n.replicas != nil {
		n.replicas.Close()
	}
	if n.host != nil {
		n.host.Stop()
	}
	if n.transport != nil {
		n.transport.Close()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close storage: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (n *Node) startHTTP() error {
	if n.cfg.MetricsAddr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !n.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	n.registerAdmin(mux)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", n.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s (metrics_addr): %w", n.cfg.MetricsAddr, err)
	}
	n.httpLn = ln
	n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go n.http.Serve(ln)
	return nil
}

// identity is what the data directory records about its node.
type identity struct {
	NodeID    uint64
	ClusterID string
}

func (n *Node) identityPath() string { return filepath.Join(n.cfg.DataDir, "node.id") }

func readIdentity(path string) (identity, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return identity{}, false, nil
	}
	if err != nil {
		return identity{}, false, err
	}
	var id identity
	for _, line := range splitLines(string(b)) {
		k, v, _ := cut(line, "=")
		switch k {
		case "node_id":
			id.NodeID, err = strconv.ParseUint(v, 10, 64)
			if err != nil {
				return id, false, fmt.Errorf("%s: bad node_id %q", path, v)
			}
		case "cluster_id":
			id.ClusterID = v
		}
	}
	return id, true, nil
}

func writeIdentity(path string, id identity) error {
	tmp := path + ".tmp"
	data := fmt.Sprintf("node_id=%d\ncluster_id=%s\n", id.NodeID, id.ClusterID)
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// checkIdentity refuses a data directory that belongs to another node.
func (n *Node) checkIdentity() error {
	if err := os.MkdirAll(n.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data directory %s: %w", n.cfg.DataDir, err)
	}
	id, ok, err := readIdentity(n.identityPath())
	if err != nil {
		return fmt.Errorf("read node identity: %w", err)
	}
	if ok && id.NodeID != n.cfg.NodeID {
		return fmt.Errorf("data directory %s belongs to node %d, but this is node %d: use that node id or another data directory", n.cfg.DataDir, id.NodeID, n.cfg.NodeID)
	}
	if !ok {
		return writeIdentity(n.identityPath(), identity{NodeID: n.cfg.NodeID})
	}
	return nil
}

// recordClusterID writes the cluster id into the data directory, and
// refuses one that belongs to another cluster.
func (n *Node) recordClusterID() error {
	id, _, err := readIdentity(n.identityPath())
	if err != nil {
		return err
	}
	cid := n.catalog.ClusterID()
	if id.ClusterID != "" && id.ClusterID != cid {
		return fmt.Errorf("data directory %s belongs to cluster %s, but the catalog says %s", n.cfg.DataDir, id.ClusterID, cid)
	}
	if id.ClusterID == "" {
		return writeIdentity(n.identityPath(), identity{NodeID: n.cfg.NodeID, ClusterID: cid})
	}
	return nil
}

func splitHostPort(addr string) (string, int32, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("advertised_addr %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("advertised_addr %q: bad port", addr)
	}
	return h, int32(port), nil
}

func topicDefaults(cfg config.Config) topicconfig.Defaults {
	minISR := int64(1)
	if cfg.Cluster.Enabled && len(cfg.Cluster.Peers.Nodes) > 0 {
		minISR = int64(min(cfg.Cluster.MinInsyncReplicas, int(cfg.DefaultReplicationFactor(len(cfg.Cluster.Peers.Nodes)))))
	}
	return topicconfig.Defaults{
		RetentionMs:       cfg.Kafka.LogRetentionMs,
		RetentionBytes:    cfg.Kafka.LogRetentionBytes,
		SegmentBytes:      cfg.Kafka.LogSegmentBytes,
		SegmentMs:         cfg.Kafka.LogSegmentMs,
		MaxMessageBytes:   int64(cfg.Kafka.MessageMaxBytes),
		MinInsyncReplicas: max(minISR, 1),
	}
}

// lateHost forwards the transport's callbacks to the raft host once it
// exists; what peers send before that is dropped, and raft sends it again.
type lateHost struct{ atomic.Pointer[raftnode.Host] }

func (l *lateHost) deliver(envs []raftnode.Envelope) {
	if h := l.Load(); h != nil {
		h.Deliver(envs)
	}
}

func (l *lateHost) reportUnreachable(peer uint64) {
	if h := l.Load(); h != nil {
		h.ReportUnreachable(peer)
	}
}

func (l *lateHost) peerDown(peer uint64) {
	if h := l.Load(); h != nil {
		h.PeerDown(peer)
	}
}
