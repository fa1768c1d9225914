// Package broker answers the Kafka APIs. There is one file per API key,
// named NN_api_name.go; each registers its handler and the versions it
// serves in init, so ApiVersions is built from the handlers and cannot
// drift from them. Every version advertised is covered by tests.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/membudget"
	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/topicconfig"
	"github.com/chronik-stream/chronik/internal/wire"
)

// GroupCoordinator runs the consumer groups whose offsets partitions this
// node leads.
type GroupCoordinator interface {
	PartitionFor(group string) int32
	HandleFrom(cl group.Client, req kmsg.Request, respond func(kmsg.Response))
}

// Config is the broker's view of the node configuration.
type Config struct {
	NodeID int32
	// Host and Port are advertised to clients.
	Host string
	Port int32

	AutoCreateTopics         bool
	NumPartitions            int32
	DefaultReplicationFactor int16
	OffsetsTopicPartitions   int32
	// OffsetsReplicationFactor is the replication factor of
	// __consumer_offsets.
	OffsetsReplicationFactor int16
	TopicDefaults            topicconfig.Defaults
	// CatalogTimeout bounds how long a catalog change may take.
	CatalogTimeout time.Duration
	// DownBrokerGrace is how long, at most, Metadata still lists a broker
	// that stopped being live, as the leader of the partitions it led,
	// until they publish successors: clients retry against it, as against
	// a Kafka broker whose session has not yet expired, instead of being
	// told LEADER_NOT_AVAILABLE, on which some fail after a few retries.
	DownBrokerGrace time.Duration
	// FetchMaxBytes caps the record bytes of one Fetch response, whatever
	// the client asks (fetch.max.bytes); 0 means Kafka's default, 55 MiB.
	FetchMaxBytes int32
	// QueuedMaxFetchBytes is the node-wide budget of Fetch response bytes
	// read from the log and not yet written; 0 means 256 MiB.
	QueuedMaxFetchBytes int64
	// Leaders moves leaderships for ElectLeaders; nil refuses elections.
	Leaders LeaderTransferrer
	Logger  *slog.Logger
}

// Broker answers Kafka requests on one node.
type Broker struct {
	cfg      Config
	catalog  *meta.Catalog
	replicas *replica.Manager
	groups   GroupCoordinator
	logger   *slog.Logger
	// fetchBudget bounds the memory of Fetch responses node-wide.
	fetchBudget *membudget.Pool
}

// New returns a broker.
func New(cfg Config, catalog *meta.Catalog, replicas *replica.Manager, groups GroupCoordinator) *Broker {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CatalogTimeout <= 0 {
		cfg.CatalogTimeout = 10 * time.Second
	}
	if cfg.FetchMaxBytes <= 0 {
		cfg.FetchMaxBytes = 57671680
	}
	if cfg.QueuedMaxFetchBytes <= 0 {
		cfg.QueuedMaxFetchBytes = 256 << 20
	}
	return &Broker{cfg: cfg, catalog: catalog, replicas: replicas, groups: groups, logger: cfg.Logger,
		fetchBudget: membudget.NewPool(cfg.QueuedMaxFetchBytes, heldCopies*int64(cfg.FetchMaxBytes))}
}

// FetchBudget returns the budget of Fetch response bytes, for metrics.
func (b *Broker) FetchBudget() *membudget.Pool { return b.fetchBudget }

type handlerFunc func(b *Broker, r *wire.Request, respond func(kmsg.Response))

type handler struct {
	min, max int16
	fn       handlerFunc
}

var handlers = map[int16]handler{}

// register declares the versions of an API this broker serves.
func register(key kmsg.Key, min, max int16, fn handlerFunc) {
	handlers[key.Int16()] = handler{min: min, max: max, fn: fn}
}

// Supported implements wire.Handler.
func (b *Broker) Supported(key, version int16) bool {
	h, ok := handlers[key]
	return ok && version >= h.min && version <= h.max
}

// Handle implements wire.Handler.
func (b *Broker) Handle(r *wire.Request, respond func(kmsg.Response)) {
	h := handlers[r.Key]
	h.fn(b, r, respond)
}

// APIVersions lists every served API and its versions, by key.
func APIVersions() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]int16, 0, len(handlers))
	for k := range handlers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(keys))
	for _, k := range keys {
		h := handlers[k]
		out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: h.min, MaxVersion: h.max})
	}
	return out
}

func (b *Broker) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), b.cfg.CatalogTimeout)
}

// partition returns the local replica of topic/partition, or the error a
// client should get: UNKNOWN_TOPIC_OR_PARTITION if the catalog has no such
// partition, NOT_LEADER_OR_FOLLOWER if it is not hosted here. A local
// replica of an earlier topic of the same name (deleted and created again,
// not yet removed here) is not the partition's: it must never serve the
// new topic.
func (b *Broker) partition(topic string, part int32) (*replica.Partition, error) {
	t := b.catalog.Topic(topic)
	if t == nil || part < 0 || int(part) >= len(t.Partitions) {
		return nil, kerr.UnknownTopicOrPartition
	}
	p := b.replicas.Get(replica.TopicPartition{Topic: topic, Partition: part})
	if p == nil || !sameReplica(p, t, t.Partitions[part]) {
		return nil, kerr.NotLeaderForPartition
	}
	return p, nil
}

// sameReplica reports whether the local replica r is the replica of
// partition p of topic t: same topic id, same raft group.
func sameReplica(r *replica.Partition, t *meta.Topic, p meta.Partition) bool {
	id := r.Identity()
	return id.TopicID == t.ID && uint64(id.Group) == p.Group
}

// leaderPartition returns the local replica if it is a ready leader.
func (b *Broker) leaderPartition(topic string, part int32) (*replica.Partition, error) {
	p, err := b.partition(topic, part)
	if err != nil {
		return nil, err
	}
	if err := p.CheckLeader(); err != nil {
		return nil, err
	}
	return p, nil
}

// errCode returns the Kafka code of err (0 for nil); errors that are not
// Kafka errors become UNKNOWN_SERVER_ERROR and are logged.
func (b *Broker) errCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	b.logger.Error("unexpected error answering a request", "err", err)
	return kerr.UnknownServerError.Code
}

// describedError is a Kafka error with a message for the client.
type describedError struct {
	code *kerr.Error
	msg  string
}

func (e *describedError) Error() string { return e.msg }
func (e *describedError) Unwrap() error { return e.code }

func describe(code *kerr.Error, format string, args ...any) error {
	return &describedError{code: code, msg: fmt.Sprintf(format, args...)}
}

// errMessage is the message for an error: ours if it has one, else nil
// (clients show the code's own text).
func errMessage(err error) *string {
	var de *describedError
	if errors.As(err, &de) {
		return &de.msg
	}
	return nil
}
