package test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// javaProc is a long-running Java process (a Streams application, a
// Connect worker): the test reads its stdout line by line as events and
// shows its stderr when the test fails.
type javaProc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stderr *lockedWriter

	mu    sync.Mutex
	lines []string

	done chan struct{} // closed when the process has exited
	exit error
}

// startJava starts mainClass with javaCmd; jvmOptions are added to the
// JVM's (system properties for the logger, say).
func startJava(t *testing.T, name string, jvmOptions []string, mainClass string, args ...string) *javaProc {
	t.Helper()
	p := &javaProc{t: t, name: name, cmd: javaCmd(t, mainClass, args...),
		stderr: &lockedWriter{b: &strings.Builder{}}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	// Timestamps on the log lines, to line them up with the nodes'.
	opts := append([]string{"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS"}, jvmOptions...)
	p.cmd.Env = append(os.Environ(), "JAVA_TOOL_OPTIONS="+strings.Join(opts, " "))
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.exit = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr (last 20000 bytes):\n%s", name, strings.Join(p.output(), "\n"), name, tail(p.stderr.String(), 20000))
		}
	})
	return p
}

func (p *javaProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *javaProc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lines)
}

// fields returns the tab-separated fields of every stdout line starting
// with event.
func (p *javaProc) events(event string) [][]string {
	var out [][]string
	for _, l := range p.output() {
		if f := strings.Split(l, "\t"); f[0] == event {
			out = append(out, f[1:])
		}
	}
	return out
}

// alive fails unless the process is still running.
func (p *javaProc) alive() error {
	if !p.running() {
		return fmt.Errorf("%s exited: %v", p.name, p.exit)
	}
	return nil
}

// stop sends SIGTERM and waits for the process to exit by itself.
func (p *javaProc) stop(d time.Duration) error {
	if !p.running() {
		return fmt.Errorf("%s had already exited: %v", p.name, p.exit)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s still running %v after SIGTERM", p.name, d)
	}
}

// The Streams test's input: lines of words from a small vocabulary, each
// word appearing many times.
var wordCountVocabulary = strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango")

// wordCountLines makes n lines, from line first on, of 1 to 4 words.
func wordCountLines(first, n int) []string {
	var out []string
	for i := first; i < first+n; i++ {
		var words []string
		for j := range 1 + i%4 {
			words = append(words, wordCountVocabulary[(i*7+j*3)%len(wordCountVocabulary)])
		}
		out = append(out, strings.Join(words, " "))
	}
	return out
}

func countWords(counts map[string]int64, lines []string) {
	for _, l := range lines {
		for _, w := range strings.Fields(l) {
			counts[w]++
		}
	}
}

// produceLines writes lines to topic, one at a time (each acknowledged
// by all in-sync replicas before the next), keyed by their number.
func produceLines(ctx context.Context, cl *kgo.Client, topic string, first int, lines []string, produced *atomic.Int64) error {
	for i, l := range lines {
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "line-%d", first+i), Value: []byte(l)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return fmt.Errorf("produce line %d: %w", first+i, err)
		}
		if produced != nil {
			produced.Add(1)
		}
	}
	return nil
}

// caughtUp returns nil once group has committed, for every partition of
// topics, the partition's end offset: every record written to them has
// been processed. Streams commits only after flushing what it produced,
// so the repartition topic's end is final once the input's offsets are
// all committed; committed offsets are read before end offsets for that
// reason.
func caughtUp(ctx context.Context, adm *kadm.Client, group string, topics ...string) error {
	committed, err := adm.FetchOffsetsForTopics(ctx, group, topics...)
	if err != nil {
		return fmt.Errorf("committed offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("end offsets: %w", err)
	}
	var behind []string
	for _, topic := range topics {
		parts, ok := ends[topic]
		if !ok || len(parts) == 0 {
			return fmt.Errorf("no end offsets for %s", topic)
		}
		for p, end := range parts {
			if end.Err != nil {
				return fmt.Errorf("end offset of %s/%d: %w", topic, p, end.Err)
			}
			c, ok := committed.Lookup(topic, p)
			if !ok || c.Err != nil || c.At < end.Offset {
				behind = append(behind, fmt.Sprintf("%s/%d at %d of %d", topic, p, c.At, end.Offset))
			}
		}
	}
	if len(behind) > 0 {
		slices.Sort(behind)
		return fmt.Errorf("behind: %s", strings.Join(behind, ", "))
	}
	return nil
}

// purged returns nil once every partition of topic starts where it ends:
// its records have all been deleted.
func purged(ctx context.Context, adm *kadm.Client, topic string) error {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	for p, end := range ends[topic] {
		start, _ := starts.Lookup(topic, p)
		if end.Err != nil || start.Err != nil || start.Offset != end.Offset {
			return fmt.Errorf("%s/%d starts at %d, ends at %d (%v %v)", topic, p, start.Offset, end.Offset, start.Err, end.Err)
		}
	}
	return nil
}

// latestByKey reads every partition of topic from its start to its end
// and returns the last value written for each key (a key's records all go
// to one partition, in order).
func latestByKey(ctx context.Context, addrs []string, topic string) (map[string][]byte, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	for p, end := range ends[topic] {
		if end.Err != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, end.Err)
		}
		if end.Offset > 0 {
			want[p] = end.Offset
			offsets[p] = kgo.NewOffset().AtStart()
		}
	}
	latest := map[string][]byte{}
	if len(want) == 0 {
		return latest, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w (left: %v)", topic, err, want)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			latest[string(r.Key)] = r.Value
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return latest, nil
}

// latestCounts reads the word count's output topic: the last count
// written for each word.
func latestCounts(ctx context.Context, addrs []string, topic string) (map[string]int64, error) {
	latest, err := latestByKey(ctx, addrs, topic)
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for k, v := range latest {
		if len(v) != 8 {
			return nil, fmt.Errorf("%s: the count of %q has %d bytes", topic, k, len(v))
		}
		counts[k] = int64(binary.BigEndian.Uint64(v))
	}
	return counts, nil
}

// reprocessedWords adds up, per word, how many times the application
// reported processing again a record it had processed before: a line
// read again from the input adds each of its words, a word read again
// from the repartition topic adds that word.
func reprocessedWords(app *javaProc, input, repartition string) (map[string]int64, int) {
	extra := map[string]int64{}
	events := app.events("REPROCESSED")
	for _, f := range events { // topic, partition, offset, key, value
		if len(f) != 5 {
			continue
		}
		switch f[0] {
		case input:
			for _, w := range strings.Fields(f[4]) {
				extra[w]++
			}
		case repartition:
			extra[f[3]]++
		}
	}
	return extra, len(events)
}

// checkCounts compares the word counts read from the output topic with
// those of the lines produced. At least once, a count may only be too
// high, and only by records the application processed twice: reprocessed
// gives that bound per word (empty when nothing was reprocessed, and
// then every count must be exact).
func checkCounts(t *testing.T, got, want, reprocessed map[string]int64) {
	t.Helper()
	for _, w := range slices.Sorted(maps.Keys(want)) {
		g, e, extra := got[w], want[w], reprocessed[w]
		if g < e || g > e+extra {
			t.Errorf("count of %q = %d, want %d (+ up to %d reprocessed)", w, g, e, extra)
		}
	}
	for w := range got {
		if _, ok := want[w]; !ok {
			t.Errorf("count of unexpected word %q = %d", w, got[w])
		}
	}
}

// TestKafkaStreamsWordCount runs Kafka's word count (Kafka Streams 4.1.1,
// at least once) against a three-node cluster: internal topics created
// with their configs, exact counts, state restored from the changelog by
// a restarted application with an empty state directory, repartition
// records deleted once consumed, and counts still right after the node
// coordinating the application's group is killed mid-stream.
//
// What at-least-once promises, and so what the test asserts: a record is
// processed again only when a task restarts from its last committed
// offset without its state having been committed with it (a dirty close:
// the application crashed, or lost its tasks to a rebalance). Its changes
// to the store may then already be in the changelog, so a count can be
// too high, never too low. A Chronik node dying is not such a case by
// itself: the producer's retries are idempotent and the consumer resumes
// at its position, so the counts should stay exact. The application
// reports every record it processes a second time; the test asserts each
// count is exact but for those, which it allows once each, and logs them.
func TestKafkaStreamsWordCount(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	cl := clusterClient(t, c)
	// The admin client must not create topics by asking for their
	// metadata: it looks at the application's internal topics, which the
	// application creates with its own partition count and configs.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	adm := kadm.NewClient(admCl)
	ctx := harness.Context(t, 3*time.Minute)

	const app, input, output = "wordcount", "wc-lines", "wc-counts"
	repartition, changelog := app+"-words-repartition", app+"-counts-changelog"
	createTopic(t, cl, input, 3, 3)
	createTopic(t, cl, output, 3, 3)

	want := map[string]int64{}
	produced := 0
	produce := func(n int) {
		t.Helper()
		lines := wordCountLines(produced, n)
		if err := produceLines(ctx, cl, input, produced, lines, nil); err != nil {
			t.Fatal(err)
		}
		countWords(want, lines)
		produced += n
	}
	startApp := func() *javaProc {
		t.Helper()
		return startJava(t, "WordCount", nil, "chronik.streams.WordCount",
			strings.Join(c.Addrs(), ","), app, input, output, t.TempDir())
	}
	waitCounts := func(what string, a *javaProc) {
		t.Helper()
		harness.WaitFor(t, "the word count to process every line "+what, 90*time.Second, func() error {
			if err := a.alive(); err != nil {
				t.Fatal(err)
			}
			return caughtUp(ctx, adm, app, input, repartition)
		})
		var got map[string]int64
		harness.WaitFor(t, "a read of "+output, time.Minute, func() error {
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			var err error
			got, err = latestCounts(rctx, runningAddrs(c), output)
			return err
		})
		extra, n := reprocessedWords(a, input, repartition)
		if n > 0 {
			t.Logf("%s: the application reported %d records processed twice: %v", what, n, extra)
		}
		checkCounts(t, got, want, extra)
	}

	produce(300)
	a := startApp()
	waitCounts("produced before it started", a)

	// The internal topics: the repartition topic behind groupBy and the
	// store's changelog, compacted, both with the application's
	// replication factor and the input's partition count.
	topics, err := adm.ListTopics(ctx, repartition, changelog)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{repartition, changelog} {
		td, ok := topics[name]
		if !ok || td.Err != nil {
			t.Fatalf("internal topic %s: missing (%v)", name, td.Err)
		}
		if len(td.Partitions) != 3 || td.Partitions.NumReplicas() != 3 {
			t.Errorf("%s: %d partitions with %d replicas, want 3 with 3", name, len(td.Partitions), td.Partitions.NumReplicas())
		}
	}
	// Streams deletes the repartition records it has committed past.
	harness.WaitFor(t, "the application to delete the repartition records it consumed", time.Minute, func() error {
		return purged(ctx, adm, repartition)
	})
	configs, err := adm.DescribeTopicConfigs(ctx, repartition, changelog)
	if err != nil {
		t.Fatal(err)
	}
	wantConfigs := map[string]map[string]string{
		changelog:   {"cleanup.policy": "compact"},
		repartition: {"cleanup.policy": "delete", "retention.ms": "-1"},
	}
	for name, kvs := range wantConfigs {
		rc, err := configs.On(name, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("configs of %s: %v %v", name, err, rc.Err)
		}
		for k, v := range kvs {
			if got := configValue(rc, k); got != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
	}

	// A clean stop commits everything; a new instance with an empty state
	// directory restores the counts from the changelog and goes on from
	// them: counting from zero would leave the first lines' words short.
	if err := a.stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if len(a.events("CLOSED")) != 1 {
		t.Fatalf("the application did not close cleanly: %q", a.output())
	}
	produce(200)
	a = startApp()
	waitCounts("after a restart with an empty state directory", a)
	var restored int64
	for _, f := range a.events("RESTORED") {
		if f[0] == changelog {
			n, _ := strconv.ParseInt(f[2], 10, 64)
			restored += n
		}
	}
	// Every word's latest count had to be read back.
	if restored < int64(len(want)) {
		t.Errorf("restored %d changelog records, want at least one per word (%d)", restored, len(want))
	}

	// Kill a node while lines are produced and the application runs: the
	// application's group coordinator (the leader of the group's partition
	// of __consumer_offsets, where it commits), so commits and heartbeats
	// fail over, with whatever partitions of its topics it leads.
	victim := coordinatorOf(t, ctx, adm, app)
	led := leadership(t, ctx, adm, input, output, repartition, changelog)[victim]
	var done atomic.Int64
	errc := make(chan error, 1)
	go func() {
		errc <- produceLines(ctx, cl, input, produced, wordCountLines(produced, 300), &done)
	}()
	harness.WaitFor(t, "a third of the lines produced", time.Minute, func() error {
		if done.Load() < 100 {
			return fmt.Errorf("%d produced", done.Load())
		}
		return nil
	})
	t.Logf("killing node %d, the group coordinator and leader of %s", victim, strings.Join(led, ", "))
	c.Node(int(victim)).Kill()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	countWords(want, wordCountLines(produced, 300))
	produced += 300
	waitCounts("with a node killed", a)

	// The node comes back. While it was down the application could not
	// delete repartition records on the partitions it had led: Kafka 4.1's
	// admin client caches partition leaders and waits for a cached leader
	// that has left the cluster's metadata to come back instead of looking
	// the leader up again (it does so against Kafka too; later clients
	// look up again). The pending deletion also held up the client's
	// close until its timeout.
	c.Node(int(victim)).Start()
	harness.WaitFor(t, "the application to delete the repartition records it consumed", time.Minute, func() error {
		return purged(ctx, adm, repartition)
	})

	if err := a.stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if len(a.events("CLOSED")) != 1 {
		t.Fatalf("the application did not close cleanly: %q", a.output())
	}
}

// coordinatorOf returns the node coordinating group.
func coordinatorOf(t *testing.T, ctx context.Context, adm *kadm.Client, group string) int32 {
	t.Helper()
	for _, r := range adm.FindGroupCoordinators(ctx, group) {
		if r.Err != nil {
			t.Fatalf("coordinator of %s: %v", group, r.Err)
		}
		return r.NodeID
	}
	t.Fatalf("no coordinator for %s", group)
	return -1
}

// leadership returns, for each node, the partitions of topics it leads.
func leadership(t *testing.T, ctx context.Context, adm *kadm.Client, topics ...string) map[int32][]string {
	t.Helper()
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32][]string{}
	for _, topic := range topics {
		td := md.Topics[topic]
		if td.Err != nil {
			t.Fatalf("metadata of %s: %v", topic, td.Err)
		}
		for _, p := range td.Partitions.Sorted() {
			out[p.Leader] = append(out[p.Leader], fmt.Sprintf("%s/%d", topic, p.Partition))
		}
	}
	return out
}

// runningAddrs lists the Kafka addresses of the nodes that are up.
func runningAddrs(c *harness.Cluster) []string {
	var out []string
	for _, n := range c.Running() {
		out = append(out, n.Addr())
	}
	return out
}

// configValue returns a topic config's value, or "" when it is absent.
func configValue(rc kadm.ResourceConfig, key string) string {
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue()
		}
	}
	return ""
}
