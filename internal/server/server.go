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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chronik-stream/chronik/internal/broker"
	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/membudget"
	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/metrics"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/topicconfig"
	"github.com/chronik-stream/chronik/internal/transport"
	"github.com/chronik-stream/chronik/internal/wire"
)

// metadataLog is the log of the catalog's raft group, in the store's
// internal namespace: no topic name reaches it.
var metadataLog = storage.InternalLog("catalog")

// format1MetadataLog is the catalog log's name in a format-1 data
// directory, which kept it beside the partition logs.
const format1MetadataLog = "__cluster_metadata-0"

// Node is a running Chronik node.
type Node struct {
	cfg     config.Config
	logger  *slog.Logger
	metrics *metrics.Metrics

	store *storage.Store
	// decompress is the budget of decompressed batches, shared by the
	// replicas and the log cleaner.
	decompress *membudget.Requests
	transport  *transport.Transport
	host       *raftnode.Host
	catalog    *meta.Catalog
	replicas   *replica.Manager
	groups     *group.Coordinator
	broker     *broker.Broker
	kafka      *wire.Server
	http       *http.Server
	httpLn     net.Listener

	defaults  topicconfig.Defaults
	publisher *publisher
	ready     atomic.Bool
	started   atomic.Bool            // every part exists; it stays set while stopping
	phase     atomic.Pointer[string] // what a starting node waits for
	clusterID atomic.Pointer[string] // set once the catalog has one
	identity  storage.Identity
	// catalogRef is the catalog once it exists, for the transport's
	// callbacks, which start before it.
	catalogRef atomic.Pointer[meta.Catalog]
	// staticPeers are the members the configuration lists (not those DNS
	// discovery found): their addresses are never replaced.
	staticPeers []uint64
	stop        chan struct{}
	wg          sync.WaitGroup

	fatal     chan struct{}
	fatalOnce sync.Once
	fatalErr  error
}

// Start brings a node up and returns once it serves Kafka clients.
func Start(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *Node, err error) {
	n := &Node{cfg: cfg, logger: logger, metrics: metrics.New(), stop: make(chan struct{}), fatal: make(chan struct{})}
	defer func() {
		if err != nil {
			n.shutdown(context.Background())
		}
	}()
	// Health, readiness and metrics answer from the start, so a probe sees
	// a node that is recovering its logs or waiting for its peers as such,
	// and does not kill it.
	n.setPhase("opening the data directory")
	if err := n.startHTTP(); err != nil {
		return nil, err
	}
	if err := cfg.Unsupported(); err != nil {
		return nil, err
	}
	n.decompress = membudget.NewRequests(membudget.DecompressBytes, membudget.DecompressBytes)
	n.store, err = storage.Open(cfg.DataDir, storage.Options{
		GroupCommitInterval:    time.Duration(cfg.WAL.GroupCommitIntervalMs) * time.Millisecond,
		MaxBatchSize:           cfg.WAL.MaxBatchSize,
		RetentionCheckInterval: time.Duration(cfg.Kafka.LogRetentionCheckIntervalMs) * time.Millisecond,
		Logger:                 logger,
		OnSync:                 n.metrics.Fsync,
		Cleaner: storage.CleanerOptions{
			Disabled:            !cfg.Kafka.LogCleanerEnable,
			DedupeBufferSize:    cfg.Kafka.LogCleanerDedupeBufferSize,
			IOMaxBytesPerSecond: float64(cfg.Kafka.LogCleanerIOMaxBytesPerSec),
			Backoff:             time.Duration(cfg.Kafka.LogCleanerBackoffMs) * time.Millisecond,
			Budget:              n.decompress,
		},
	})
	if err != nil {
		return nil, err
	}
	if err := n.checkIdentity(); err != nil {
		return nil, err
	}
	for _, p := range cfg.Cluster.Peers.Nodes {
		n.staticPeers = append(n.staticPeers, p.ID)
	}
	if cfg.Cluster.Enabled && cfg.Cluster.Discovery.Mode == "dns" {
		n.setPhase("resolving the cluster's members from DNS")
		if err := n.discoverMembers(ctx); err != nil {
			return nil, err
		}
		cfg = n.cfg
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
			RPCTimeout:  time.Duration(cfg.Raft.RPCTimeoutMs) * time.Millisecond,
			Logger:      logger,
			Deliver:     raftHost.deliver,
			Unreachable: raftHost.reportUnreachable,
			PeerDown:    raftHost.peerDown,
			ClusterID:   n.knownClusterID,
			Incarnation: n.identity.Incarnation,
			PeerIncarnation: func(id uint64) string {
				if c := n.catalogRef.Load(); c != nil {
					return c.Incarnation(int32(id))
				}
				return ""
			},
			Replaced: n.replaced,
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
		OneEntryPerMsg:  !cfg.Raft.Advanced.BatchAppendEntries,
		// Bounds the memory one leader holds for entries not yet
		// committed (raft's own bound; the node-wide one is the replica
		// manager's), e.g. while its disk is full.
		MaxUncommittedEntriesSize: uint64(cfg.Raft.Advanced.MaxUncommittedBytes),
		EntryCacheBytes:           cfg.Raft.Advanced.EntryCacheBytes,
		Logger:                    logger,
		Observer:                  electionObserver{n.metrics},
		LearnerBytesPerSec:        cfg.Cluster.Rebalance.ThrottleBytesPerSec,
	}, rt)
	raftHost.Store(n.host)

	if _, err := n.store.AdoptLegacyLog(format1MetadataLog, metadataLog); err != nil {
		return nil, err
	}
	snaps := meta.SnapshotPolicy{
		MaxLogBytes: int64(cfg.Raft.Snapshots.MaxLogSizeMB) << 20,
		MinEntries:  uint64(cfg.Raft.Snapshots.MinIntervalEntries),
		Compression: cfg.Raft.Snapshots.Compression,
	}
	metaLog, err := n.store.OpenLog(metadataLog, storage.LogConfig{
		// Segments a quarter of the snapshot trigger, so that compaction
		// after a snapshot drops most of the log.
		SegmentBytes: min(max(snaps.MaxLogBytes/4, 1<<20), 64<<20), SegmentMs: storage.DefaultSegmentMs, RetentionMs: -1, RetentionBytes: -1,
	})
	if err != nil {
		return nil, err
	}
	voters, learners := metadataMembers(members)
	host, port, err := splitHostPort(cfg.AdvertisedAddr)
	if err != nil {
		return nil, err
	}
	self := meta.Broker{ID: int32(cfg.NodeID), Host: host, Port: port, Admin: adminAddr(cfg.MetricsAddr, host), Incarnation: n.identity.Incarnation}
	join := false
	if n.transport != nil {
		if p, ok := cfg.Self(); ok {
			self.RaftAddr = p.RaftAddress()
		}
		n.transport.Handle(joinMethod, n.answerJoin)
		n.transport.Handle(addMemberMethod, n.answerAddMember)
		// A node whose catalog never started joins the cluster its peers
		// run, if they run one, rather than start on its configuration.
		if len(metaLog.ConfState()) == 0 && metaLog.LastIndex() == 0 {
			n.setPhase("looking for a running cluster")
			if join, err = n.joinOrBootstrap(ctx, self, voters); err != nil {
				return nil, err
			}
		}
	}
	n.catalog, err = meta.Open(n.host, metaLog, voters, learners, join, forward, snaps, logger.With("component", "catalog"))
	if err != nil {
		return nil, err
	}
	n.catalogRef.Store(n.catalog)
	if n.transport != nil {
		n.transport.Handle(proposeMethod, n.answerProposal)
	}
	n.setPhase("waiting for the cluster catalog")
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
	if err := n.registerBrokers(ctx, self); err != nil {
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
	// Kafka deletes every group's offsets of a deleted topic.
	n.catalog.OnTopicDeleted(n.groups.TopicDeleted)
	n.publisher = newPublisher(n)
	n.replicas = replica.NewManager(replica.Settings{
		NodeID:               cfg.NodeID,
		LagMaxEntries:        uint64(cfg.Raft.Advanced.ReplicaLagMaxEntries),
		LagMax:               time.Duration(cfg.Raft.Advanced.ReplicaLagMaxMs) * time.Millisecond,
		OnLeadership:         n.leadershipChanged,
		OnLeaderState:        n.publisher.leaderState,
		PreferredLeaders:     cfg.Raft.Advanced.EnableLeadershipTransfer,
		ProducerIDExpiration: time.Duration(cfg.Kafka.ProducerIDExpirationMs) * time.Millisecond,
		MaxUncommittedBytes:  cfg.Raft.Advanced.MaxUncommittedBytes,
		Decompress:           n.decompress,
	}, n.store, n.host, logger, commitObserver{n.metrics})
	n.metrics.SetGroupResolver(n.resolveGroup)
	n.metrics.RegisterState(stateSource{n})
	n.setPhase("opening partition logs")
	if err := n.reconcile(); err != nil {
		return nil, err
	}
	if n.transport != nil {
		n.transport.Handle(transferLeaderMethod, n.answerTransfer)
		n.transport.Handle(decommissionedMethod, n.answerDecommissioned)
	}
	if cfg.Cluster.Enabled && cfg.Cluster.Discovery.Mode == "dns" {
		n.wg.Add(1)
		go n.every(time.Duration(cfg.Cluster.Discovery.RefreshIntervalSecs)*time.Second, n.refreshMembers)
	}
	n.wg.Add(5)
	go n.reconcileLoop()
	go n.publisher.run()
	go n.every(500*time.Millisecond, n.checkLiveness)
	go n.every(reassignInterval, n.reassignPass)
	go n.every(time.Second, newController(n).pass)

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
		Leaders:                  leaderTransferrer{n},
		// A dead leader's successor publishes itself within an election
		// or two; a silent death takes the liveness timeout to notice.
		DownBrokerGrace: n.livenessTimeout(),
		Logger:          logger,
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
	n.metrics.RegisterBudgets(n.kafka.RequestBudget(), n.broker.FetchBudget(), n.decompress)
	n.metrics.RegisterCleaner(func() metrics.CleanerStats {
		s := n.store.CleanerStats()
		return metrics.CleanerStats{
			Passes: s.Passes, SegmentsCleaned: s.SegmentsCleaned, BytesRead: s.BytesRead, BytesWritten: s.BytesWritten,
			BytesReclaimed: s.BytesReclaimed, RecordsRemoved: s.RecordsRemoved, Errors: s.Errors, Seconds: s.Time.Seconds(),
			BatchesTooLarge: s.BatchesTooLarge,
		}
	})
	n.setPhase("")
	n.started.Store(true)
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
	n.setPhase("shutting down")
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
	// Every step is bounded by ctx: a step that does not finish in time
	// (a worker stuck on a dead disk, say) is left behind, and the steps
	// that depend on it are skipped. What was acknowledged is already
	// durable; the process exits anyway.
	within := func(what string, f func()) bool {
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
			return true
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s did not finish within the shutdown grace time", what))
			return false
		}
	}
	within("stopping the node's background loops", n.wg.Wait)
	if n.http != nil {
		n.http.Shutdown(ctx)
	}
	if n.groups != nil {
		within("stopping the group coordinator", n.groups.Close)
	}
	if n.replicas != nil {
		within("stopping the replica manager", n.replicas.Close)
	}
	stopped := true
	if n.host != nil {
		stopped = within("stopping the raft groups", n.host.Stop)
	}
	if n.transport != nil {
		n.transport.Close()
	}
	if n.store != nil && stopped {
		var err error
		if within("closing storage", func() { err = n.store.Close() }) && err != nil {
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
	mux.HandleFunc("/ready", n.handleReady)
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

// setPhase records what the node is doing while it starts or stops, for
// /ready; "" once it serves.
func (n *Node) setPhase(phase string) { n.phase.Store(&phase) }

// handleReady answers 200 while the node serves Kafka clients and 503
// while it starts (saying what it waits for) or stops. A serving node
// lists its partitions that a storage error stopped: they answer
// KAFKA_STORAGE_ERROR while the rest is served.
func (n *Node) handleReady(w http.ResponseWriter, _ *http.Request) {
	if !n.ready.Load() {
		phase := "starting"
		if p := n.phase.Load(); p != nil && *p != "" {
			phase = *p
		}
		http.Error(w, "not ready: "+phase, http.StatusServiceUnavailable)
		return
	}
	var b strings.Builder
	b.WriteString("ready\n")
	for _, p := range n.replicas.Partitions() {
		if err := p.View().Failed; err != nil {
			tp := p.TopicPartition()
			fmt.Fprintf(&b, "partition %s/%d failed (KAFKA_STORAGE_ERROR until reopened): %v\n", tp.Topic, tp.Partition, err)
		}
	}
	if err := n.catalog.Group().Failed(); err != nil {
		fmt.Fprintf(&b, "the catalog's raft group failed: %v\n", err)
	}
	w.Write([]byte(b.String()))
}

// checkIdentity refuses a data directory that belongs to another node, and
// gives a new directory its identity (with a fresh incarnation).
func (n *Node) checkIdentity() error {
	id, ok, err := storage.ReadIdentity(n.cfg.DataDir)
	if err != nil {
		return err
	}
	if ok && id.NodeID != n.cfg.NodeID {
		return fmt.Errorf("data directory %s belongs to node %d, but this is node %d: use that node id or another data directory", n.cfg.DataDir, id.NodeID, n.cfg.NodeID)
	}
	if !ok || id.Incarnation == "" {
		// A new directory, or one written before incarnations existed.
		id.NodeID, id.Incarnation = n.cfg.NodeID, storage.NewIncarnation()
		if err := storage.WriteIdentity(n.cfg.DataDir, id); err != nil {
			return err
		}
	}
	n.identity = id
	return nil
}

// recordClusterID writes the cluster id into the data directory, and
// refuses one that belongs to another cluster.
func (n *Node) recordClusterID() error {
	cid := n.catalog.ClusterID()
	if n.identity.ClusterID != "" && n.identity.ClusterID != cid {
		return fmt.Errorf("data directory %s belongs to cluster %s, but the catalog says %s", n.cfg.DataDir, n.identity.ClusterID, cid)
	}
	if n.identity.ClusterID == "" {
		n.identity.ClusterID = cid
		return storage.WriteIdentity(n.cfg.DataDir, n.identity)
	}
	return nil
}

// replaced stops a node whose data directory a peer showed is not the one
// it joined the cluster with.
func (n *Node) replaced(err error) {
	n.fail(fmt.Errorf("%w.\nThis node must not rejoin the cluster as itself: it could vote twice in a raft term or lose writes the cluster acknowledged. "+
		"The cluster keeps serving without it while every partition keeps a quorum of its replicas. Restore this node's data directory (%s) from a backup and start it again; "+
		"or, if the data is lost, run `chronik-server cluster replace --node-id %d` against another node and start this one again on an empty data directory: it rejoins as a new, empty member (docs/replication.md, \"A node that lost its data\")", err, n.cfg.DataDir, n.cfg.NodeID))
}

// fail stops the node because of err; Start returns it, or Fatal reports it.
func (n *Node) fail(err error) {
	n.fatalOnce.Do(func() {
		n.fatalErr = err
		n.logger.Error("stopping the node", "err", err)
		close(n.fatal)
	})
}

// Fatal is closed when the node must stop; Err then says why.
func (n *Node) Fatal() <-chan struct{} { return n.fatal }

// Err returns why the node must stop, once Fatal is closed.
func (n *Node) Err() error {
	select {
	case <-n.fatal:
		return n.fatalErr
	default:
		return nil
	}
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
