package group

import (
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Partitions is the coordinator's access to the __consumer_offsets partitions.
type Partitions interface {
	// Append writes one record batch to partition p with acks=all. cb gets nil once the batch is
	// committed (durable on a quorum), or a *kerr.Error (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS,
	// REQUEST_TIMED_OUT, ...). cb may run on any goroutine and must not block.
	Append(p int32, batch []byte, cb func(error))
	// Read returns committed batches of partition p from offset (whole batches, concatenated),
	// at most about maxBytes (but at least one batch), the offset after the last batch returned,
	// and the high watermark. Errors if this node does not lead p.
	Read(p int32, offset int64, maxBytes int) (batches []byte, next int64, hw int64, err error)
	// LogStartOffset returns the first readable offset of p.
	LogStartOffset(p int32) int64
	// DeleteRecords moves the log start of p to offset (for compaction); cb as for Append.
	DeleteRecords(p int32, offset int64, cb func(error))
}

// Defaults for the zero values of Config (Kafka's defaults).
const (
	DefaultPartitions             = 50
	DefaultMinSessionTimeout      = 6 * time.Second
	DefaultMaxSessionTimeout      = 30 * time.Minute
	DefaultOffsetsRetention       = 7 * 24 * time.Hour
	DefaultRetentionCheckInterval = 10 * time.Minute
	DefaultCompactThreshold       = 64 << 20
)

// Kafka's fixed limits.
const (
	// maxOffsetMetadata is offset.metadata.max.bytes.
	maxOffsetMetadata = 4096
	// newMemberJoinTimeoutDefault bounds how long a new member's JoinGroup
	// may wait in a join phase (Kafka's GroupCoordinator.NewMemberJoinTimeoutMs).
	newMemberJoinTimeoutDefault = 5 * time.Minute
	// loadReadBytes is how much one Read asks for while loading.
	loadReadBytes = 1 << 20
	// loadRetryDefault is the pause before a failed load is retried.
	loadRetryDefault = 200 * time.Millisecond
)

var (
	newMemberJoinTimeout = newMemberJoinTimeoutDefault
	loadRetry            = loadRetryDefault
)

// Config configures a Coordinator. Zero values take the documented defaults,
// except InitialRebalanceDelay, for which zero means no delay.
type Config struct {
	// Partitions is the number of __consumer_offsets partitions
	// (offsets_topic_num_partitions), overriding the default of 50.
	Partitions int32
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min/max.session.timeout.ms), overriding the
	// defaults of 6s and 30m.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long
	// the first join phase of an empty group waits for more members.
	InitialRebalanceDelay time.Duration
	// OffsetsRetention is offsets.retention.minutes, overriding the default
	// of 7 days.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms:
	// how often expired offsets are swept, overriding the default of 10m.
	OffsetsRetentionCheckInterval time.Duration
	// CompactThreshold is how many bytes appended to an offsets partition
	// since its last compaction trigger the next one, overriding the
	// default of 64 MiB.
	CompactThreshold int64
	// Logger receives the coordinator's log lines; nil discards them.
	Logger *slog.Logger
}

func (cfg Config) withDefaults() Config {
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.OffsetsRetention <= 0 {
		cfg.OffsetsRetention = DefaultOffsetsRetention
	}
	if cfg.OffsetsRetentionCheckInterval <= 0 {
		cfg.OffsetsRetentionCheckInterval = DefaultRetentionCheckInterval
	}
	if cfg.CompactThreshold <= 0 {
		cfg.CompactThreshold = DefaultCompactThreshold
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Coordinator is the classic group coordinator of one node. It serves the
// groups of the __consumer_offsets partitions this node leads; each such
// partition has a shard whose goroutine owns the partition's groups and
// offsets (see shard.go).
type Coordinator struct {
	cfg   Config
	parts Partitions
	log   *slog.Logger

	mu     sync.Mutex
	shards map[int32]*shard // partitions led here, loading or loaded
	closed bool

	wg sync.WaitGroup // shard loops and loaders
}

// New returns a coordinator that leads no partition yet.
func New(cfg Config, parts Partitions) *Coordinator {
	cfg = cfg.withDefaults()
	return &Coordinator{
		cfg:    cfg,
		parts:  parts,
		log:    cfg.Logger.With("component", "group"),
		shards: map[int32]*shard{},
	}
}

// PartitionFor returns the __consumer_offsets partition of group: FNV-1a 32
// of the group id modulo the partition count. FindCoordinator answers with
// the leader of this partition.
func (c *Coordinator) PartitionFor(group string) int32 {
	h := fnv.New32a()
	h.Write([]byte(group))
	return int32(h.Sum32() % uint32(c.cfg.Partitions))
}

// BecameLeader starts loading partition p: it is read from its log start to
// its high watermark and its groups and offsets rebuilt. Until that is done,
// requests for its groups get COORDINATOR_LOAD_IN_PROGRESS. Calling it for a
// partition already led does nothing.
//
// Call it once this node leads p and p's high watermark covers every batch
// written in earlier terms (with raft: once the new term's first entry is
// committed), so the load sees every committed write of the previous leader.
func (c *Coordinator) BecameLeader(p int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.shards[p] != nil {
		return
	}
	s := newShard(c, p)
	c.shards[p] = s
	c.wg.Add(2)
	go s.run()
	go s.load()
}

// Resigned drops the groups of p from memory. Requests waiting on them
// (JoinGroup, SyncGroup, commits whose append is in flight) are answered
// with NOT_COORDINATOR. Calling it for a partition not led does nothing.
func (c *Coordinator) Resigned(p int32) {
	c.mu.Lock()
	s := c.shards[p]
	delete(c.shards, p)
	c.mu.Unlock()
	if s != nil {
		s.q.closeWith(s.stop)
	}
}

// Close resigns every partition and waits until the coordinator's
// goroutines have exited (a load waits for its Partitions.Read to return).
// Later requests get NOT_COORDINATOR.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closed = true
	shards := c.shards
	c.shards = map[int32]*shard{}
	c.mu.Unlock()
	for _, s := range shards {
		s.q.closeWith(s.stop)
	}
	c.wg.Wait()
}

// shardOf returns the shard of partition p, or nil if p is not led here.
func (c *Coordinator) shardOf(p int32) *shard {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shards[p]
}

func (c *Coordinator) allShards() []*shard {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*shard, 0, len(c.shards))
	for _, s := range c.shards {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *shard) int { return int(a.p - b.p) })
	return out
}

// onGroup runs fn in the loop of the shard owning group once that shard is
// loaded. If this node does not coordinate the group, or the shard is still
// loading, fail gets NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS instead;
// exactly one of fn and fail runs.
func (c *Coordinator) onGroup(group string, fail func(code int16), fn func(s *shard)) {
	s := c.shardOf(c.PartitionFor(group))
	if s == nil {
		fail(kerr.NotCoordinator.Code)
		return
	}
	ok := s.q.push(func() {
		if code := s.servable(); code != 0 {
			fail(code)
			return
		}
		fn(s)
	})
	if !ok {
		fail(kerr.NotCoordinator.Code)
	}
}

// GroupSummary describes one loaded group.
type GroupSummary struct {
	Group        string
	Partition    int32 // its __consumer_offsets partition
	State        string
	ProtocolType string
	Protocol     string
	Generation   int32
	Members      int
	Offsets      int // committed offsets
	// Committed lists the committed offsets, for lag metrics.
	Committed []CommittedOffset
}

// CommittedOffset is a group's committed offset of one partition.
type CommittedOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Groups describes every group loaded on this node, sorted by group id. It
// waits for each shard's loop, so it must not be called from a Partitions
// callback or a respond function.
func (c *Coordinator) Groups() []GroupSummary {
	var (
		mu  sync.Mutex
		out []GroupSummary
		wg  sync.WaitGroup
	)
	for _, s := range c.allShards() {
		wg.Add(1)
		ok := s.q.push(func() {
			defer wg.Done()
			if s.servable() != 0 {
				return
			}
			var part []GroupSummary
			for _, g := range s.groups {
				if g.state == stateDead {
					continue
				}
				part = append(part, g.summary(s.p))
			}
			mu.Lock()
			out = append(out, part...)
			mu.Unlock()
		})
		if !ok {
			wg.Done()
		}
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b GroupSummary) int {
		switch {
		case a.Group < b.Group:
			return -1
		case a.Group > b.Group:
			return 1
		}
		return 0
	})
	return out
}

// Handle processes one group request and calls respond exactly once with
// its response, of the request's version. It does not block: JoinGroup,
// SyncGroup and writes to the offsets log wait inside the coordinator.
// respond may run on a coordinator goroutine, before or after Handle
// returns; it must not block and must not call Groups or Close.
//
// The request must have been decoded with ReadFrom, not UnsafeReadFrom:
// the coordinator keeps its strings (group and member ids, topics).
//
// Handle takes the ten classic group APIs listed by APIVersions. Any other
// request is answered with the zero response of its kind and logged.
func (c *Coordinator) Handle(req kmsg.Request, respond func(kmsg.Response)) {
	c.HandleFrom(Client{}, req, respond)
}

// Client names the connection a request came from. The coordinator uses it
// for generated member ids and DescribeGroups.
type Client struct {
	ID   string // the client id of the request header
	Host string // the peer's address, as Kafka shows it ("/10.0.0.1")
}

// HandleFrom is Handle with the request's client id and host.
func (c *Coordinator) HandleFrom(cl Client, req kmsg.Request, respond func(kmsg.Response)) {
	respond = once(c.log, req, respond)
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		c.handleJoinGroup(cl, r, respond)
	case *kmsg.SyncGroupRequest:
		c.handleSyncGroup(r, respond)
	case *kmsg.HeartbeatRequest:
		c.handleHeartbeat(r, respond)
	case *kmsg.LeaveGroupRequest:
		c.handleLeaveGroup(r, respond)
	case *kmsg.OffsetCommitRequest:
		c.handleOffsetCommit(r, respond)
	case *kmsg.OffsetFetchRequest:
		c.handleOffsetFetch(r, respond)
	case *kmsg.DescribeGroupsRequest:
		c.handleDescribeGroups(r, respond)
	case *kmsg.ListGroupsRequest:
		c.handleListGroups(r, respond)
	case *kmsg.DeleteGroupsRequest:
		c.handleDeleteGroups(r, respond)
	case *kmsg.OffsetDeleteRequest:
		c.handleOffsetDelete(r, respond)
	default:
		c.log.Error("request is not a group request", "key", req.Key())
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		respond(resp)
	}
}

// once guards respond against a second call, which would be a bug here.
func once(log *slog.Logger, req kmsg.Request, respond func(kmsg.Response)) func(kmsg.Response) {
	var done atomic.Bool
	return func(r kmsg.Response) {
		if done.Swap(true) {
			log.Error("second response to one request dropped", "key", req.Key())
			return
		}
		respond(r)
	}
}

// versionRange is the versions of one API that the coordinator serves.
type versionRange struct{ min, max int16 }

// versions is filled by the init() of each API's file.
var versions = map[int16]versionRange{}

func supported(key, v int16) bool {
	r, ok := versions[key]
	return ok && v >= r.min && v <= r.max
}

// APIVersions lists the group APIs and the versions the coordinator serves,
// for the broker's ApiVersions response.
func APIVersions() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(versions))
	for k, r := range versions {
		out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: r.min, MaxVersion: r.max})
	}
	slices.SortFunc(out, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey - b.ApiKey) })
	return out
}

// gather collects the answers of several shards to one request and calls
// done once all have answered. Every part writes only its own slots of the
// result; the mutex orders those writes before done.
type gather struct {
	mu   sync.Mutex
	left int
	done func()
}

// newGather expects n calls of finish.
func newGather(n int, done func()) *gather {
	g := &gather{left: n, done: done}
	if n == 0 {
		done()
	}
	return g
}

func (g *gather) finish() {
	g.mu.Lock()
	g.left--
	last := g.left == 0
	g.mu.Unlock()
	if last {
		g.done()
	}
}
