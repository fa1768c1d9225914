// Package metrics exposes Chronik's Prometheus metrics. Event metrics
// (requests, fsyncs, elections, commits) are counted as they happen through
// the observer hooks of the lower layers; state metrics (leaders, ISR, lag,
// log sizes) are read from the node at scrape time, so they are always
// current and cost nothing between scrapes.
//
// Label cardinality: per-API series are bounded by the API count; per
// partition series (topic, partition) grow with the partitions hosted on
// the node, and follower lag adds one series per follower of each
// partition this node leads; consumer group series grow with the groups
// coordinated here. Series of a partition whose replica leaves the node go
// with it. docs/monitoring.md describes every metric (a test checks it).
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics holds the registry and the event metrics.
type Metrics struct {
	Registry *prometheus.Registry

	requests        *prometheus.CounterVec
	requestBytes    *prometheus.CounterVec
	responseBytes   *prometheus.CounterVec
	requestLatency  *prometheus.HistogramVec
	connections     prometheus.Gauge
	connectionsOpen prometheus.Counter

	fsyncLatency    prometheus.Histogram
	electionCount   *prometheus.CounterVec
	electionLatency prometheus.Histogram
	workerWait      prometheus.Histogram
	roundTime       prometheus.Histogram
	commitLatency   prometheus.Histogram

	// resolve names a raft group for labels; set by the node.
	resolve func(group uint64) (topic string, partition int32, ok bool)
}

// msBuckets covers 0.1 ms to about 10 s.
var msBuckets = prometheus.ExponentialBuckets(0.1, 2, 17)

// New creates the registry with Go and process collectors and the event
// metrics.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_kafka_requests_total", Help: "Kafka requests answered, by API.",
		}, []string{"api"}),
		requestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_kafka_request_bytes_total", Help: "Bytes of Kafka requests, by API.",
		}, []string{"api"}),
		responseBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_kafka_response_bytes_total", Help: "Bytes of Kafka responses, by API.",
		}, []string{"api"}),
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chronik_kafka_request_latency_ms", Help: "Time from reading a request to writing its response, by API.", Buckets: msBuckets,
		}, []string{"api"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronik_kafka_connections", Help: "Open Kafka client connections.",
		}),
		connectionsOpen: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronik_kafka_connections_opened_total", Help: "Kafka client connections accepted.",
		}),
		fsyncLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronik_storage_fsync_latency_ms", Help: "Duration of each fdatasync of a partition log.", Buckets: msBuckets,
		}),
		electionCount: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_raft_election_count", Help: "Leaders elected, by partition (topic __cluster_metadata for the catalog).",
		}, []string{"topic", "partition"}),
		electionLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronik_raft_election_latency_ms", Help: "Time a raft group was without a leader before one was elected.", Buckets: msBuckets,
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronik_raft_commit_latency_ms", Help: "Time from proposing a produced batch to its commit on a quorum.", Buckets: msBuckets,
		}),
		workerWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronik_raft_worker_wait_ms", Help: "Time a raft group with a pending tick waited for a worker.", Buckets: msBuckets,
		}),
		roundTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronik_raft_round_ms", Help: "Duration of one round of a raft group on a worker (stepping messages, ticks, writing its log, sending).", Buckets: msBuckets,
		}),
	}
	r.MustRegister(m.requests, m.requestBytes, m.responseBytes, m.requestLatency, m.connections, m.connectionsOpen,
		m.fsyncLatency, m.electionCount, m.electionLatency, m.commitLatency, m.workerWait, m.roundTime)
	return m
}

// SetGroupResolver tells the metrics how to name raft groups.
func (m *Metrics) SetGroupResolver(f func(group uint64) (string, int32, bool)) { m.resolve = f }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// RequestDone implements wire.Observer.
func (m *Metrics) RequestDone(key, version int16, reqBytes, respBytes int, d time.Duration) {
	api := kmsg.NameForKey(key)
	m.requests.WithLabelValues(api).Inc()
	m.requestBytes.WithLabelValues(api).Add(float64(reqBytes))
	m.responseBytes.WithLabelValues(api).Add(float64(respBytes))
	m.requestLatency.WithLabelValues(api).Observe(ms(d))
}

// ConnectionOpened implements wire.Observer.
func (m *Metrics) ConnectionOpened() { m.connections.Inc(); m.connectionsOpen.Inc() }

// ConnectionClosed implements wire.Observer.
func (m *Metrics) ConnectionClosed() { m.connections.Dec() }

// Fsync observes one fdatasync (storage.Options.OnSync).
func (m *Metrics) Fsync(d time.Duration) { m.fsyncLatency.Observe(ms(d)) }

// RaftRound records a raft group's wait for a worker or its round
// (raftnode.Observer); a zero duration is not one.
func (m *Metrics) RaftRound(waited, took time.Duration) {
	if waited > 0 {
		m.workerWait.Observe(ms(waited))
	}
	if took > 0 {
		m.roundTime.Observe(ms(took))
	}
}

// Elected records an election (raftnode.Observer).
func (m *Metrics) Elected(group uint64, without time.Duration) {
	topic, part := "__cluster_metadata", "0"
	if m.resolve != nil {
		if t, p, ok := m.resolve(group); ok {
			topic, part = t, strconv.Itoa(int(p))
		}
	}
	m.electionCount.WithLabelValues(topic, part).Inc()
	m.electionLatency.Observe(ms(without))
}

// ForgetPartition drops the per-partition event series of a partition
// whose replica left this node, so deleted topics do not leave series
// behind.
func (m *Metrics) ForgetPartition(topic string, partition int32) {
	m.electionCount.DeleteLabelValues(topic, strconv.Itoa(int(partition)))
}

// Committed records a produce's commit latency (replica.Observer).
func (m *Metrics) Committed(d time.Duration) { m.commitLatency.Observe(ms(d)) }
