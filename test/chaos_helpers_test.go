package test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// Helpers of the chaos tests (chaos_test.go, nemesis_test.go): leaders as
// raft sees them, a recorded producer workload, and the exactly-once check.

// newChaos starts a three-node cluster whose raft links go through
// Toxiproxy, and creates topic with the given partitions and RF 3.
func newChaos(t *testing.T, extra string, topic string, partitions int32, configs map[string]*string) *harness.ChaosCluster {
	t.Helper()
	c := harness.NewChaosCluster(t, harness.ClusterOptions{Nodes: 3, ExtraConfig: extra})
	c.Start()
	cl := clusterClient(t, c.Cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 3, configs, topic)
	if err != nil || res.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, res.Err)
	}
	for p := range partitions {
		waitFullISR(t, c.Cluster, topic, p, 3)
	}
	return c
}

// raftLeaders returns the running nodes that say (in their metrics) they
// lead topic/p. Only a leader exports chronik_raft_isr_size, so this is
// raft's view, independent of the catalog.
func raftLeaders(c *harness.Cluster, topic string, p int32) map[int]int {
	out := map[int]int{}
	re := regexp.MustCompile(fmt.Sprintf(`chronik_raft_isr_size\{partition="%d",topic="%s"\} (\d+)`, p, regexp.QuoteMeta(topic)))
	for _, n := range c.Running() {
		m, err := n.Metrics()
		if err != nil {
			continue
		}
		if sm := re.FindStringSubmatch(m); sm != nil {
			isr, _ := strconv.Atoi(sm[1])
			out[n.ID] = isr
		}
	}
	return out
}

// metricValue reads one sample of a node's metrics (line prefix up to the
// value), -1 if absent.
func metricValue(n *harness.Node, series string) int64 {
	m, err := n.Metrics()
	if err != nil {
		return -1
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)`)
	sm := re.FindStringSubmatch(m)
	if sm == nil {
		return -1
	}
	f, err := strconv.ParseFloat(sm[1], 64)
	if err != nil {
		return -1
	}
	return int64(f)
}

// waitFullISR waits until one node leads topic/p with an ISR of size n,
// and returns it.
func waitFullISR(t *testing.T, c *harness.Cluster, topic string, p int32, n int) int {
	t.Helper()
	var lead int
	harness.WaitFor(t, fmt.Sprintf("a leader of %s/%d with %d in sync", topic, p, n), 60*time.Second, func() error {
		ls := raftLeaders(c, topic, p)
		if len(ls) != 1 {
			return fmt.Errorf("leaders: %v", ls)
		}
		for id, isr := range ls {
			if isr != n {
				return fmt.Errorf("node %d leads with ISR %d", id, isr)
			}
			lead = id
		}
		return nil
	})
	return lead
}

// waitRaftLeader waits for a node other than not (and among the running
// ones) to lead topic/p, and returns it and how long that took from since.
func waitRaftLeader(t *testing.T, c *harness.Cluster, topic string, p int32, not int, since time.Time) (int, time.Duration) {
	t.Helper()
	var lead int
	harness.WaitFor(t, fmt.Sprintf("a leader of %s/%d other than node %d", topic, p, not), 30*time.Second, func() error {
		for id := range raftLeaders(c, topic, p) {
			if id != not {
				lead = id
				return nil
			}
		}
		return errNotYet
	})
	return lead, time.Since(since)
}

// ack is one produce attempt of the workload and what became of it.
type ack struct {
	value     string
	partition int32
	offset    int64 // -1 unless acknowledged
	err       error
	sent      time.Time
	done      time.Time
}

// workload produces numbered records ("<prefix>-<i>") with an idempotent
// acks=all producer at a steady pace, and records every outcome.
type workload struct {
	t      *testing.T
	cl     *kgo.Client
	topic  string
	prefix string
	mu     sync.Mutex
	recs   []*ack
	wg     sync.WaitGroup
	stop   chan struct{}
	done   chan struct{}
}

// startWorkload starts producing to topic, one record every interval, at
// most inflight unanswered.
func startWorkload(t *testing.T, c *harness.Cluster, topic, prefix string, interval time.Duration, opts ...kgo.Opt) *workload {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60 * time.Second),
		kgo.ProducerLinger(time.Millisecond), kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	w := &workload{t: t, cl: cl, topic: topic, prefix: prefix, stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { w.Stop(); cl.Close() })
	go w.run(interval)
	return w
}

func (w *workload) run(interval time.Duration) {
	defer close(w.done)
	sem := make(chan struct{}, 500)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		select {
		case <-w.stop:
			return
		case sem <- struct{}{}:
		}
		a := &ack{value: fmt.Sprintf("%s-%d", w.prefix, i), offset: -1, sent: time.Now()}
		w.mu.Lock()
		w.recs = append(w.recs, a)
		w.mu.Unlock()
		w.wg.Add(1)
		w.cl.Produce(context.Background(), &kgo.Record{Value: []byte(a.value)}, func(r *kgo.Record, err error) {
			w.mu.Lock()
			a.done, a.err, a.partition = time.Now(), err, r.Partition
			if err == nil {
				a.offset = r.Offset
			}
			w.mu.Unlock()
			<-sem
			w.wg.Done()
		})
	}
}

// Stop stops sending and waits for every outstanding produce to finish.
func (w *workload) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.wg.Wait()
}

// acked counts acknowledged records.
func (w *workload) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.recs {
		if a.err == nil && !a.done.IsZero() {
			n++
		}
	}
	return n
}

// waitAcked waits until n records are acknowledged in total.
func (w *workload) waitAcked(n int, d time.Duration) {
	w.t.Helper()
	harness.WaitFor(w.t, fmt.Sprintf("%d acknowledged produces", n), d, func() error {
		if got := w.acked(); got < n {
			return fmt.Errorf("%d acknowledged", got)
		}
		return nil
	})
}

// waitAckSentAfter waits for the acknowledgement of a record sent after
// since, and returns how long after since it came.
func (w *workload) waitAckSentAfter(since time.Time, d time.Duration) time.Duration {
	w.t.Helper()
	var first time.Time
	harness.WaitFor(w.t, "a produce sent after the fault to be acknowledged", d, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, a := range w.recs {
			if a.sent.After(since) && a.err == nil && !a.done.IsZero() && (first.IsZero() || a.done.Before(first)) {
				first = a.done
			}
		}
		if first.IsZero() {
			return errNotYet
		}
		return nil
	})
	return first.Sub(since)
}

// errors returns the errors produces ended with.
func (w *workload) errors() []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []error
	for _, a := range w.recs {
		if a.err != nil {
			out = append(out, a.err)
		}
	}
	return out
}

// history returns the workload's records (after Stop).
func (w *workload) history() []*ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.recs)
}

// tally is what an exactly-once check found.
type tally struct {
	Acked, Unacked, Consumed, Lost, Duplicated, Misplaced int
}

func (f tally) String() string {
	return fmt.Sprintf("acknowledged %d (plus %d unacknowledged attempts), consumed %d, lost %d, duplicated %d, at a wrong offset %d",
		f.Acked, f.Unacked, f.Consumed, f.Lost, f.Duplicated, f.Misplaced)
}

// readAll consumes every partition of topic from the start up to its end
// offsets as the cluster reports them now.
func readAll(t *testing.T, c *harness.Cluster, topic string) []*kgo.Record {
	t.Helper()
	cl := clusterClient(t, c)
	var ends kadm.ListedOffsets
	harness.WaitFor(t, "end offsets of "+topic, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		ends, err = kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		return err
	})
	want := 0
	ends.Each(func(o kadm.ListedOffset) { want += int(o.Offset) })
	if want == 0 {
		return nil
	}
	return consumeAll(t, c, topic, want)
}

// checkExactlyOnce checks every record of the workloads against what the
// topic holds: each acknowledged record is there once, at the partition
// and offset it was acknowledged with; no value is there twice; offsets are
// dense. Unacknowledged records may be there (at most once) or not.
// Records of other producers in the topic count only for density.
func checkExactlyOnce(t *testing.T, c *harness.Cluster, topic string, ws ...*workload) tally {
	t.Helper()
	recs := readAll(t, c, topic)
	var f tally
	f.Consumed = len(recs)
	type pos struct {
		p int32
		o int64
	}
	at := map[string][]pos{}
	for _, r := range recs {
		at[string(r.Value)] = append(at[string(r.Value)], pos{r.Partition, r.Offset})
	}
	ours := map[string]bool{}
	for _, w := range ws {
		for _, a := range w.history() {
			ours[a.value] = true
		}
	}
	var problems []string
	for v, ps := range at {
		if len(ps) > 1 && ours[v] {
			f.Duplicated += len(ps) - 1
			problems = append(problems, fmt.Sprintf("%s consumed %d times at %v", v, len(ps), ps))
		}
	}
	for _, w := range ws {
		for _, a := range w.history() {
			if a.err != nil || a.done.IsZero() {
				f.Unacked++
				continue
			}
			f.Acked++
			ps := at[a.value]
			switch {
			case len(ps) == 0:
				f.Lost++
				problems = append(problems, fmt.Sprintf("%s acknowledged at %d/%d is gone", a.value, a.partition, a.offset))
			case ps[0] != (pos{a.partition, a.offset}):
				f.Misplaced++
				problems = append(problems, fmt.Sprintf("%s acknowledged at %d/%d, consumed at %v", a.value, a.partition, a.offset, ps))
			}
		}
	}
	t.Logf("FIGURE %s: %v", t.Name(), f)
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Fatalf("%d problems, first: %v", len(problems), problems[:min(10, len(problems))])
	}
	checkDenseOffsets(t, recs)
	return f
}

// noFailedProduces fails if any workload produce ended with an error. The
// client retries retriable errors (NOT_LEADER, NOT_ENOUGH_REPLICAS, broken
// connections) until the delivery timeout, so a record fails only on an
// error that is not retriable or on an outage longer than that timeout.
func noFailedProduces(t *testing.T, w *workload) {
	t.Helper()
	for _, err := range w.errors() {
		t.Errorf("produce failed: %v", err)
	}
}
