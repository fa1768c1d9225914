// Package bench is the load tool behind `chronik-server bench`: franz-go
// producers and consumers against any Kafka-compatible cluster, with every
// latency sample kept in an HDR histogram. Rate-limited runs measure each
// message from its intended send time, so a stall shows up in the
// percentiles instead of silently slowing the schedule (coordinated
// omission).
package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configures a run.
type Options struct {
	Bootstrap   []string
	Topic       string
	Partitions  int32
	Replication int16
	// TopicConfigs are set when the topic is created (e.g. retention.bytes
	// and segment.bytes, so a benchmark cannot fill the disk).
	TopicConfigs map[string]*string
	Size         int           // message value size in bytes
	Count        int64         // messages to send (0: run for Duration)
	Duration     time.Duration // run length when Count is 0
	Rate         float64       // messages per second over all producers (0: as fast as possible)
	Acks         string        // all, 1 or 0
	Compression  string        // none, gzip, snappy, lz4, zstd
	Producers    int
	Consumers    int
	Idempotent   bool
	// Linger and BatchBytes shape producer batches.
	Linger     time.Duration
	BatchBytes int32
	// Inflight is how many produce requests a non-idempotent producer
	// keeps in flight per broker (franz-go's default is 1; the Java
	// client's, and what idempotent producers get, is 5). 0 means 5.
	Inflight int
	Progress io.Writer // nil: no progress lines
	// Keys, if positive, gives messages keys key-0 .. key-<Keys-1> in turn
	// (a compacted topic refuses messages without a key).
	Keys int

	// keyFor, if set, gives message i its key (sustained runs number
	// their messages to verify delivery).
	keyFor func(i int64) []byte
	// onAck, if set, is called with each message's outcome and latency.
	onAck func(i int64, latency time.Duration, err error)
}

// Result is a run's figures.
type Result struct {
	Mode         string  `json:"mode"`
	Messages     int64   `json:"messages"`
	Errors       int64   `json:"errors"`
	Seconds      float64 `json:"seconds"`
	MsgsPerSec   float64 `json:"msgs_per_sec"`
	MBPerSec     float64 `json:"mb_per_sec"`
	LatencyP50   float64 `json:"latency_p50_ms"`
	LatencyP95   float64 `json:"latency_p95_ms"`
	LatencyP99   float64 `json:"latency_p99_ms"`
	LatencyP999  float64 `json:"latency_p999_ms"`
	LatencyMax   float64 `json:"latency_max_ms"`
	Samples      int64   `json:"latency_samples"`
	Size         int     `json:"message_bytes"`
	Acks         string  `json:"acks"`
	FirstError   string  `json:"first_error,omitempty"`
	LatencyBasis string  `json:"latency_basis"`
}

// histogram keeps microsecond samples from 1 µs to 1 hour with 3
// significant digits; nothing is dropped (values above the range are
// clamped and counted).
type histogram struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newHistogram() *histogram {
	return &histogram{h: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)}
}

func (h *histogram) record(d time.Duration) {
	us := max(int64(d/time.Microsecond), 1)
	h.mu.Lock()
	if h.h.RecordValue(us) != nil {
		h.h.RecordValue(h.h.HighestTrackableValue())
	}
	h.mu.Unlock()
}

func (h *histogram) fill(r *Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	r.LatencyP50, r.LatencyP95 = ms(h.h.ValueAtQuantile(50)), ms(h.h.ValueAtQuantile(95))
	r.LatencyP99, r.LatencyP999 = ms(h.h.ValueAtQuantile(99)), ms(h.h.ValueAtQuantile(99.9))
	r.LatencyMax, r.Samples = ms(h.h.Max()), h.h.TotalCount()
}

func (o *Options) clientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(o.Bootstrap...), kgo.AllowAutoTopicCreation()}
	switch o.Acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("--acks %q: use all, 1 or 0", o.Acks)
	}
	if !o.Idempotent && (o.Acks == "all" || o.Acks == "-1") {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if !o.Idempotent || o.Acks == "1" || o.Acks == "0" {
		inflight := o.Inflight
		if inflight <= 0 {
			inflight = 5
		}
		opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(inflight))
	}
	var codec kgo.CompressionCodec
	switch o.Compression {
	case "", "none":
		codec = kgo.NoCompression()
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("--compression %q: use none, gzip, snappy, lz4 or zstd", o.Compression)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(o.Linger))
	if o.BatchBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(o.BatchBytes))
	}
	return opts, nil
}

// progressEnd is the known end of a run: Count messages, else Duration.
func (o *Options) progressEnd() progressEnd {
	if o.Count > 0 {
		return progressEnd{count: o.Count}
	}
	return progressEnd{duration: o.Duration}
}

// EnsureTopic creates the topic if it does not exist.
func EnsureTopic(ctx context.Context, o Options) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.Bootstrap...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	_, err = adm.CreateTopic(ctx, o.Partitions, o.Replication, o.TopicConfigs, o.Topic)
	if err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		return fmt.Errorf("create topic %s: %w", o.Topic, err)
	}
	return nil
}

// DeleteTopic deletes a topic.
func DeleteTopic(ctx context.Context, bootstrap []string, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	return nil
}

// pacingSlack is how early a rate-limited producer may send a message.
const pacingSlack = time.Millisecond

// Produce runs producers and measures send-to-acknowledgement latency.
func Produce(ctx context.Context, o Options) (Result, error) {
	opts, err := o.clientOpts()
	if err != nil {
		return Result{}, err
	}
	if o.Producers < 1 {
		o.Producers = 1
	}
	hist := newHistogram()
	var sent, acked, failed atomic.Int64
	var firstErr atomic.Value
	value := make([]byte, o.Size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Count == 0 {
		var c context.CancelFunc
		runCtx, c = context.WithTimeout(runCtx, o.Duration)
		defer c()
	}
	start := time.Now()
	stopProgress := progress(o.Progress, "produce", &acked, o.Size, start, o.progressEnd())
	defer stopProgress()
	var wg sync.WaitGroup
	var next atomic.Int64 // message sequence over all producers
	for range o.Producers {
		cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(o.Topic))...)
		if err != nil {
			return Result{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			var inflight sync.WaitGroup
			for runCtx.Err() == nil {
				i := next.Add(1) - 1
				if o.Count > 0 && i >= o.Count {
					break
				}
				// Latency counts from the intended send time, so a stall
				// that delays sending is measured, not hidden (coordinated
				// omission). A message may go out up to pacingSlack early,
				// which saves a timer per message; its latency then counts
				// from the real send.
				basis := time.Now()
				if o.Rate > 0 {
					intended := start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))
					if d := intended.Sub(basis); d > pacingSlack {
						select {
						case <-time.After(d):
						case <-runCtx.Done():
						}
					}
					if now := time.Now(); now.Before(intended) {
						basis = now
					} else {
						basis = intended
					}
				}
				inflight.Add(1)
				sent.Add(1)
				// ctx, not runCtx: records in flight when the run time is up
				// still count, but an interrupt abandons them.
				rec := &kgo.Record{Value: value}
				switch {
				case o.keyFor != nil:
					rec.Key = o.keyFor(i)
				case o.Keys > 0:
					rec.Key = strconv.AppendInt([]byte("key-"), i%int64(o.Keys), 10)
				}
				cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
					latency := time.Since(basis)
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					} else {
						hist.record(latency)
						acked.Add(1)
					}
					if o.onAck != nil {
						o.onAck(i, latency, err)
					}
					inflight.Done()
				})
			}
			inflight.Wait()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	r := Result{Mode: "produce", Messages: acked.Load(), Errors: failed.Load(), Seconds: elapsed, Size: o.Size, Acks: o.Acks,
		LatencyBasis: "send to acknowledgement"}
	if o.Rate > 0 {
		r.LatencyBasis = "intended send time to acknowledgement"
	}
	r.MsgsPerSec = float64(r.Messages) / elapsed
	r.MBPerSec = r.MsgsPerSec * float64(o.Size) / 1e6
	hist.fill(&r)
	if e, ok := firstErr.Load().(string); ok {
		r.FirstError = e
	}
	return r, nil
}

// Consume reads Count messages (or for Duration) from the start of the topic
// with Consumers group members and reports throughput.
func Consume(ctx context.Context, o Options, group string) (Result, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(o.Bootstrap...), kgo.ConsumeTopics(o.Topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit()}
	if o.Consumers < 1 {
		o.Consumers = 1
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Count == 0 {
		var c context.CancelFunc
		runCtx, c = context.WithTimeout(runCtx, o.Duration)
		defer c()
	}
	var got, bytes atomic.Int64
	start := time.Now()
	stop := progress(o.Progress, "consume", &got, o.Size, start, o.progressEnd())
	defer stop()
	var wg sync.WaitGroup
	for range o.Consumers {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return Result{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for runCtx.Err() == nil && (o.Count == 0 || got.Load() < o.Count) {
				fs := cl.PollFetches(runCtx)
				fs.EachRecord(func(r *kgo.Record) {
					got.Add(1)
					bytes.Add(int64(len(r.Value)))
				})
				if o.Count > 0 && got.Load() >= o.Count {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	r := Result{Mode: "consume", Messages: got.Load(), Seconds: elapsed, Size: o.Size}
	r.MsgsPerSec = float64(r.Messages) / elapsed
	r.MBPerSec = float64(bytes.Load()) / elapsed / 1e6
	return r, nil
}

// E2E produces at Rate and consumes at the same time; latency is from each
// message's intended send time (written into the value) to its receipt.
func E2E(ctx context.Context, o Options) (Result, error) {
	if o.Size < 8 {
		return Result{}, errors.New("e2e needs --size of at least 8 bytes (the send time travels in the value)")
	}
	opts, err := o.clientOpts()
	if err != nil {
		return Result{}, err
	}
	hist := newHistogram()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Consume from the current end of every partition, so exactly the
	// messages of this run are measured.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(o.Bootstrap...))
	if err != nil {
		return Result{}, err
	}
	ends, err := kadm.NewClient(admCl).ListEndOffsets(runCtx, o.Topic)
	admCl.Close()
	if err != nil {
		return Result{}, fmt.Errorf("list end offsets of %s: %w", o.Topic, err)
	}
	start := map[int32]kgo.Offset{}
	ends.Each(func(lo kadm.ListedOffset) { start[lo.Partition] = kgo.NewOffset().At(lo.Offset) })
	cons, err := kgo.NewClient(kgo.SeedBrokers(o.Bootstrap...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: start}), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return Result{}, err
	}
	defer cons.Close()
	prod, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(o.Topic))...)
	if err != nil {
		return Result{}, err
	}
	defer prod.Close()
	var received, failed atomic.Int64
	var want atomic.Int64
	want.Store(-1)
	done := make(chan struct{})
	began := time.Now()
	stop := progress(o.Progress, "e2e", &received, o.Size, began, o.progressEnd())
	defer stop()
	go func() {
		defer close(done)
		for runCtx.Err() == nil {
			fs := cons.PollFetches(runCtx)
			fs.EachRecord(func(r *kgo.Record) {
				sentAt := time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))
				hist.record(time.Since(sentAt))
				received.Add(1)
			})
			if w := want.Load(); w >= 0 && received.Load() >= w {
				return
			}
		}
	}()
	rate := o.Rate
	if rate <= 0 {
		rate = 1000
	}
	var sent int64
	end := began.Add(o.Duration)
	for runCtx.Err() == nil && (o.Count == 0 && time.Now().Before(end) || o.Count > 0 && sent < o.Count) {
		intended := began.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
		if d := time.Until(intended); d > 0 {
			time.Sleep(d)
		}
		v := make([]byte, o.Size)
		binary.BigEndian.PutUint64(v, uint64(intended.UnixNano()))
		prod.Produce(runCtx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
		sent++
	}
	prod.Flush(runCtx)
	want.Store(sent - failed.Load())
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	cancel()
	elapsed := time.Since(began).Seconds()
	r := Result{Mode: "e2e", Messages: received.Load(), Errors: failed.Load(), Seconds: elapsed, Size: o.Size, Acks: o.Acks,
		LatencyBasis: "intended send time to receipt by the consumer"}
	r.MsgsPerSec = float64(r.Messages) / elapsed
	r.MBPerSec = r.MsgsPerSec * float64(o.Size) / 1e6
	hist.fill(&r)
	return r, nil
}

// WriteTable prints results as a table.
func WriteTable(w io.Writer, rs ...Result) {
	fmt.Fprintf(w, "%-8s %10s %12s %9s %9s %9s %9s %9s %9s %7s\n", "mode", "messages", "msgs/s", "MB/s", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms", "errors")
	for _, r := range rs {
		fmt.Fprintf(w, "%-8s %10d %12.0f %9.1f %9.2f %9.2f %9.2f %9.2f %9.2f %7d\n", r.Mode, r.Messages, r.MsgsPerSec, r.MBPerSec,
			r.LatencyP50, r.LatencyP95, r.LatencyP99, r.LatencyP999, r.LatencyMax, r.Errors)
		if r.FirstError != "" {
			fmt.Fprintf(w, "  first error: %s\n", r.FirstError)
		}
	}
}

// WriteJSON prints results as JSON.
func WriteJSON(w io.Writer, rs ...Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}
