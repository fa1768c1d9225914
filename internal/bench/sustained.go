package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SustainedOptions configures a sustained-load run: produce at Rate with
// acks=all for Duration, report every Interval, then read everything back
// and check that every acknowledged message is there exactly once.
type SustainedOptions struct {
	Options
	Interval time.Duration
	// MetricsAddrs are the servers' metrics addresses (host:port); their
	// process_resident_memory_bytes is read at start, every interval and
	// at the end.
	MetricsAddrs []string
	// VerifyTimeout bounds the read-back.
	VerifyTimeout time.Duration
	// Out receives the interval lines (nil: none).
	Out io.Writer
}

// IntervalStat is one interval of a sustained run.
type IntervalStat struct {
	EndSeconds float64 `json:"end_seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	P99        float64 `json:"latency_p99_ms"`
	Errors     int64   `json:"errors"`
}

// RSSReport is one server's resident memory over a run. A Go server's RSS
// rises and falls with its heap's collection cycles, so single samples are
// noise: start and end are medians over a window of per-second samples.
type RSSReport struct {
	Addr       string  `json:"metrics_addr"`
	StartBytes float64 `json:"start_bytes"` // before the load
	// WarmBytes is the median RSS over the first window under load after
	// the first interval: the base for growth, since a server's memory
	// rises to its working set first.
	WarmBytes float64 `json:"warm_bytes"`
	// EndBytes is the median RSS over the run's last window.
	EndBytes  float64 `json:"end_bytes"`
	PeakBytes float64 `json:"peak_bytes"`
	// WindowSeconds is the length of the warm and end windows.
	WindowSeconds float64 `json:"window_seconds"`
	// GrowthPercent is the change from WarmBytes to EndBytes.
	GrowthPercent float64 `json:"growth_percent"`
	// TrendPercentPerHour is the least-squares slope of every sample after
	// the first interval, relative to WarmBytes.
	TrendPercentPerHour float64 `json:"trend_percent_per_hour"`
	Samples             int     `json:"samples"`
	Error               string  `json:"error,omitempty"`

	// series is every sample under load: seconds since the start, bytes.
	series [][2]float64
}

// rssWindow is the span of the warm and end medians: a tenth of the run,
// at least 10 s and at most a minute.
func rssWindow(run time.Duration) time.Duration {
	return min(max(run/10, 10*time.Second), time.Minute)
}

// summarize computes the warm and end medians, growth and trend from the
// samples taken after warmFrom seconds.
func (r *RSSReport) summarize(warmFrom, runSeconds, window float64) {
	r.WindowSeconds = window
	var warm, end, xs, ys []float64
	for _, s := range r.series {
		t, v := s[0], s[1]
		if t < warmFrom {
			continue
		}
		xs, ys = append(xs, t), append(ys, v)
		if t < warmFrom+window {
			warm = append(warm, v)
		}
		if t >= runSeconds-window {
			end = append(end, v)
		}
	}
	r.Samples = len(xs)
	if len(warm) == 0 || len(end) == 0 {
		return
	}
	r.WarmBytes, r.EndBytes = median(warm), median(end)
	r.GrowthPercent = (r.EndBytes - r.WarmBytes) / r.WarmBytes * 100
	if slope, ok := leastSquaresSlope(xs, ys); ok {
		r.TrendPercentPerHour = slope * 3600 / r.WarmBytes * 100
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// leastSquaresSlope is the slope of the least-squares line through (x, y).
func leastSquaresSlope(xs, ys []float64) (float64, bool) {
	n := float64(len(xs))
	if n < 2 {
		return 0, false
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
		sxx, sxy = sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, false
	}
	return (n*sxy - sx*sy) / den, true
}

// SustainedResult is a sustained run's figures.
type SustainedResult struct {
	TargetMsgsPerSec float64        `json:"target_msgs_per_sec"`
	Produce          Result         `json:"produce"`
	Intervals        []IntervalStat `json:"intervals"`
	Delivery         DeliveryReport `json:"delivery"`
	RSS              []RSSReport    `json:"rss"`
}

// OK reports whether the run lost or duplicated nothing.
func (r SustainedResult) OK() bool { return r.Delivery.OK() }

// sustainedKeyBytes is the key of every message: the run id, then the
// message's sequence number, both big-endian uint64.
const sustainedKeyBytes = 16

// Sustained runs a sustained load (see SustainedOptions).
func Sustained(ctx context.Context, so SustainedOptions) (SustainedResult, error) {
	o := so.Options
	if o.Rate <= 0 || o.Duration <= 0 {
		return SustainedResult{}, errors.New("a sustained run needs a --rate and a --duration")
	}
	if so.Interval <= 0 {
		so.Interval = 10 * time.Second
	}
	if so.VerifyTimeout <= 0 {
		so.VerifyTimeout = 5 * time.Minute
	}
	o.Count, o.Acks, o.Progress = 0, "all", nil
	res := SustainedResult{TargetMsgsPerSec: o.Rate}

	var runIDBytes [8]byte
	if _, err := rand.Read(runIDBytes[:]); err != nil {
		return res, fmt.Errorf("run id: %w", err)
	}
	runID := binary.BigEndian.Uint64(runIDBytes[:])
	// Exactly Rate × Duration messages, at the rate: the run ends on time
	// and every sequence number fits the delivery check (the pacing may
	// send a message a little early, so a run bounded by time alone sends
	// a few more).
	o.Count = int64(math.Ceil(o.Rate * o.Duration.Seconds()))
	check := newDeliveryCheck(o.Count)

	startOffsets, err := endOffsets(ctx, o.Bootstrap, o.Topic)
	if err != nil {
		return res, err
	}
	res.RSS = make([]RSSReport, len(so.MetricsAddrs))
	for i, addr := range so.MetricsAddrs {
		res.RSS[i].Addr = addr
		rss, err := ReadRSS(ctx, addr)
		if err != nil {
			res.RSS[i].Error = err.Error()
			continue
		}
		res.RSS[i].StartBytes, res.RSS[i].PeakBytes = rss, rss
	}
	var rssMu sync.Mutex // the interval lines read the latest samples
	sampleRSS := func(at float64) {
		for i := range res.RSS {
			if rss, err := ReadRSS(ctx, res.RSS[i].Addr); err == nil {
				rssMu.Lock()
				r := &res.RSS[i]
				r.PeakBytes = max(r.PeakBytes, rss)
				r.series = append(r.series, [2]float64{at, rss})
				rssMu.Unlock()
			}
		}
	}

	interval := newIntervalRecorder()
	o.keyFor = func(i int64) []byte {
		k := make([]byte, sustainedKeyBytes)
		binary.BigEndian.PutUint64(k, runID)
		binary.BigEndian.PutUint64(k[8:], uint64(i))
		return k
	}
	o.onAck = func(i int64, latency time.Duration, err error) {
		if err != nil {
			interval.errors.Add(1)
			return
		}
		check.ack(i)
		interval.record(latency)
	}
	start := time.Now()
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { // RSS, once a second
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				sampleRSS(now.Sub(start).Seconds())
			}
		}
	})
	bg.Go(func() {
		t := time.NewTicker(so.Interval)
		defer t.Stop()
		last := start
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				st := interval.take(now.Sub(last), now.Sub(start))
				last = now
				res.Intervals = append(res.Intervals, st)
				if so.Out != nil {
					rssMu.Lock()
					rss := rssSummary(res.RSS)
					rssMu.Unlock()
					fmt.Fprintf(so.Out, "sustained %7s/%-7s %10.0f msgs/s (target %.0f)  p99 %8.2f ms  errors %d%s\n",
						formatSeconds(time.Duration(st.EndSeconds*float64(time.Second))), formatSeconds(o.Duration),
						st.MsgsPerSec, o.Rate, st.P99, st.Errors, rss)
				}
			}
		}
	})
	res.Produce, err = Produce(ctx, o)
	close(stop)
	bg.Wait()
	if err != nil {
		return res, err
	}
	runSeconds := time.Since(start).Seconds()
	for i := range res.RSS {
		res.RSS[i].summarize(so.Interval.Seconds(), runSeconds, rssWindow(o.Duration).Seconds())
	}

	if so.Out != nil {
		fmt.Fprintf(so.Out, "sustained: produced %d acknowledged messages; reading them back\n", res.Produce.Messages)
	}
	vctx, cancel := context.WithTimeout(ctx, so.VerifyTimeout)
	defer cancel()
	if err := readBack(vctx, o.Bootstrap, o.Topic, runID, startOffsets, check); err != nil {
		return res, err
	}
	res.Delivery = check.report()
	return res, nil
}

func rssSummary(rs []RSSReport) string {
	var b strings.Builder
	for _, r := range rs {
		if n := len(r.series); n > 0 {
			fmt.Fprintf(&b, "  rss %s %.0f MiB", r.Addr, r.series[n-1][1]/(1<<20))
		}
	}
	return b.String()
}

// endOffsets lists the end offset of every partition of topic.
func endOffsets(ctx context.Context, bootstrap []string, topic string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(lo kadm.ListedOffset) { out[lo.Partition] = lo.Offset })
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions", topic)
	}
	return out, nil
}

// readBack consumes topic from the start offsets to the current end offsets
// and marks every message of run runID as seen.
func readBack(ctx context.Context, bootstrap []string, topic string, runID uint64, from map[int32]int64, check *deliveryCheck) error {
	to, err := endOffsets(ctx, bootstrap, topic)
	if err != nil {
		return err
	}
	starts := map[int32]kgo.Offset{}
	pending := map[int32]bool{}
	for p, end := range to {
		if end > from[p] {
			starts[p] = kgo.NewOffset().At(from[p])
			pending[p] = true
		}
	}
	if len(pending) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("reading back %s: %d partitions not read to their end: %w", topic, len(pending), ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Key) == sustainedKeyBytes && binary.BigEndian.Uint64(r.Key) == runID {
				check.see(int64(binary.BigEndian.Uint64(r.Key[8:])))
			}
			if r.Offset+1 >= to[r.Partition] {
				delete(pending, r.Partition)
			}
		})
	}
	return nil
}

// ReadRSS reads process_resident_memory_bytes from a server's /metrics.
func ReadRSS(ctx context.Context, metricsAddr string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read metrics of %s: %w", metricsAddr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read metrics of %s: %s", metricsAddr, resp.Status)
	}
	v, err := metricValue(resp.Body, "process_resident_memory_bytes")
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", metricsAddr, err)
	}
	return v, nil
}

// metricValue returns the value of an unlabelled metric in the Prometheus
// text format.
func metricValue(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok || !strings.HasPrefix(rest, " ") {
			continue
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s metric", name)
}

// intervalRecorder collects one interval's latencies and counts; take
// returns them and starts the next interval.
type intervalRecorder struct {
	*histogram
	errors atomic.Int64
}

func newIntervalRecorder() *intervalRecorder {
	return &intervalRecorder{histogram: newHistogram()}
}

func (r *intervalRecorder) take(length, end time.Duration) IntervalStat {
	r.mu.Lock()
	n, p99 := r.h.TotalCount(), r.h.ValueAtQuantile(99)
	r.h.Reset()
	r.mu.Unlock()
	return IntervalStat{EndSeconds: end.Seconds(), MsgsPerSec: float64(n) / length.Seconds(),
		P99: float64(p99) / 1000, Errors: r.errors.Swap(0)}
}

// DeliveryReport compares the acknowledged messages with those read back.
type DeliveryReport struct {
	Acknowledged int64 `json:"acknowledged"`
	// Consumed counts distinct messages of this run read back.
	Consumed int64 `json:"consumed"`
	// Missing are acknowledged messages not read back: lost.
	Missing int64 `json:"missing"`
	// Duplicates are extra copies of messages read back.
	Duplicates int64 `json:"duplicates"`
	// Unacknowledged are messages read back whose produce reported an error
	// (or never answered): allowed, a failed produce may still be written.
	Unacknowledged int64 `json:"unacknowledged_present"`
	// FirstMissing lists up to 10 missing sequence numbers.
	FirstMissing []int64 `json:"first_missing,omitempty"`
}

// OK reports zero loss and zero duplicates.
func (d DeliveryReport) OK() bool { return d.Missing == 0 && d.Duplicates == 0 }

// deliveryCheck records which sequence numbers were acknowledged (from
// many producer callbacks at once) and which were read back (from one
// goroutine), in bitsets sized for the run.
type deliveryCheck struct {
	acked      []atomic.Uint64
	seen       []uint64
	duplicates int64
	outOfRange int64 // sequence numbers beyond the bitsets (a bug if ever > 0)
}

func newDeliveryCheck(n int64) *deliveryCheck {
	words := (n + 63) / 64
	return &deliveryCheck{acked: make([]atomic.Uint64, words), seen: make([]uint64, words)}
}

func (c *deliveryCheck) ack(seq int64) {
	if seq < 0 || seq/64 >= int64(len(c.acked)) {
		atomic.AddInt64(&c.outOfRange, 1)
		return
	}
	c.acked[seq/64].Or(1 << (seq % 64))
}

func (c *deliveryCheck) see(seq int64) {
	if seq < 0 || seq/64 >= int64(len(c.seen)) {
		atomic.AddInt64(&c.outOfRange, 1)
		return
	}
	bit := uint64(1) << (seq % 64)
	if c.seen[seq/64]&bit != 0 {
		c.duplicates++
		return
	}
	c.seen[seq/64] |= bit
}

func (c *deliveryCheck) report() DeliveryReport {
	d := DeliveryReport{Duplicates: c.duplicates}
	for w := range c.seen {
		acked, seen := c.acked[w].Load(), c.seen[w]
		for b := range 64 {
			bit := uint64(1) << b
			a, s := acked&bit != 0, seen&bit != 0
			if a {
				d.Acknowledged++
			}
			if s {
				d.Consumed++
			}
			switch {
			case a && !s:
				d.Missing++
				if len(d.FirstMissing) < 10 {
					d.FirstMissing = append(d.FirstMissing, int64(w*64+b))
				}
			case s && !a:
				d.Unacknowledged++
			}
		}
	}
	// A sequence number outside the bitsets cannot be checked; count it as
	// missing rather than pass silently.
	d.Missing += atomic.LoadInt64(&c.outOfRange)
	return d
}

// WriteSustained prints a sustained run's summary.
func WriteSustained(w io.Writer, r SustainedResult) {
	fmt.Fprintf(w, "\ntarget %.0f msgs/s with acks=all; achieved %.0f msgs/s over %.0f s (%d acknowledged, %d errors)\n",
		r.TargetMsgsPerSec, r.Produce.MsgsPerSec, r.Produce.Seconds, r.Produce.Messages, r.Produce.Errors)
	fmt.Fprintf(w, "latency from intended send time: p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n",
		r.Produce.LatencyP50, r.Produce.LatencyP95, r.Produce.LatencyP99, r.Produce.LatencyP999, r.Produce.LatencyMax)
	if r.Produce.FirstError != "" {
		fmt.Fprintf(w, "first produce error: %s\n", r.Produce.FirstError)
	}
	for _, m := range r.RSS {
		if m.Error != "" {
			fmt.Fprintf(w, "rss %s: %s\n", m.Addr, m.Error)
			continue
		}
		fmt.Fprintf(w, "rss %s: idle %.1f MiB; median over %.0f s after the first interval %.1f MiB, over the last %.0f s %.1f MiB: growth %+.1f%%; trend %+.1f%%/hour; peak %.1f MiB (%d samples)\n",
			m.Addr, m.StartBytes/(1<<20), m.WindowSeconds, m.WarmBytes/(1<<20), m.WindowSeconds, m.EndBytes/(1<<20),
			m.GrowthPercent, m.TrendPercentPerHour, m.PeakBytes/(1<<20), m.Samples)
	}
	d := r.Delivery
	verdict := "zero loss, no duplicates"
	if !d.OK() {
		verdict = fmt.Sprintf("FAILED: %d missing (first %v), %d duplicates", d.Missing, d.FirstMissing, d.Duplicates)
	}
	fmt.Fprintf(w, "delivery: %d acknowledged, %d read back, %d unacknowledged but present: %s\n",
		d.Acknowledged, d.Consumed, d.Unacknowledged, verdict)
}
