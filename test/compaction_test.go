package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/bench"
	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/test/harness"
)

// compactedRecord is one record of a compacted topic as a reader sees it.
type compactedRecord struct {
	Offset int64   `json:"offset"`
	Key    string  `json:"key"`
	Value  *string `json:"value"` // nil for a tombstone
}

func (r compactedRecord) String() string {
	v := "<tombstone>"
	if r.Value != nil {
		v = *r.Value
	}
	return fmt.Sprintf("%d %s=%s", r.Offset, r.Key, v)
}

// compactedWrites is what a test produced to a compacted topic.
type compactedWrites struct {
	at     map[int64]compactedRecord // every record, by offset
	latest map[string]int64          // key -> offset of its latest record
}

// fastCleaner makes the cleaner pass every 100 ms.
var fastCleaner = []string{"CHRONIK_KAFKA_LOG_CLEANER_BACKOFF_MS=100"}

// smallBatches keeps batches far below the segment size: a segment holds
// whole batches, and only sealed segments are cleaned.
var smallBatches = kgo.ProducerBatchMaxBytes(4 << 10)

// compactedTopicConfigs makes a compacted topic with small segments that is
// cleaned as soon as anything is dirty.
func compactedTopicConfigs(segmentBytes int) map[string]*string {
	s := func(v string) *string { return &v }
	return map[string]*string{
		"cleanup.policy":            s("compact"),
		"segment.bytes":             s(fmt.Sprint(segmentBytes)),
		"min.cleanable.dirty.ratio": s("0.01"),
		"delete.retention.ms":       s("3600000"),
	}
}

// produceCompacted writes rounds of one record per key, then a tombstone
// for each of the first tombstones keys, acks=all, and returns what was
// written at which offset.
func produceCompacted(t *testing.T, cl *kgo.Client, topic string, keys, rounds, tombstones, valueSize int, w *compactedWrites) {
	t.Helper()
	if w.at == nil {
		w.at, w.latest = map[int64]compactedRecord{}, map[string]int64{}
	}
	ctx := harness.Context(t, 2*time.Minute)
	pad := strings.Repeat("x", valueSize)
	var recs []*kgo.Record
	for round := range rounds {
		for k := range keys {
			recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "key-%04d", k), Value: fmt.Appendf(nil, "r%d-%s", round, pad)})
		}
	}
	for k := range tombstones {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "key-%04d", k)})
	}
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatalf("produce: %v", r.Err)
		}
		rec := compactedRecord{Offset: r.Record.Offset, Key: string(r.Record.Key)}
		if r.Record.Value != nil {
			v := string(r.Record.Value)
			rec.Value = &v
		}
		w.at[rec.Offset] = rec
		if prev, ok := w.latest[rec.Key]; !ok || rec.Offset > prev {
			w.latest[rec.Key] = rec.Offset
		}
	}
}

// readFromStart reads partition 0 of topic from its start to its high
// watermark with franz-go, retrying while the partition has no leader (a
// node stopped, a leadership moved). The last record written is never
// cleaned away (it is in the active segment), so the read ends with it.
func readFromStart(t *testing.T, addrs []string, topic string) []compactedRecord {
	t.Helper()
	var out []compactedRecord
	harness.WaitFor(t, "a read of "+topic+" from start to end", time.Minute, func() error {
		var err error
		out, err = tryReadFromStart(addrs, topic)
		return err
	})
	return out
}

func tryReadFromStart(addrs []string, topic string) ([]compactedRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	end, ok := ends.Lookup(topic, 0)
	if !ok || end.Err != nil {
		return nil, fmt.Errorf("end offset of %s: %v", topic, end.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []compactedRecord
	next := int64(0)
	for next < end.Offset {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: at offset %d of %d: %w", topic, next, end.Offset, err)
		}
		for _, e := range fs.Errors() {
			return nil, fmt.Errorf("fetch %s: %w", topic, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			rec := compactedRecord{Offset: r.Offset, Key: string(r.Key)}
			if r.Value != nil {
				v := string(r.Value)
				rec.Value = &v
			}
			out = append(out, rec)
			next = r.Offset + 1
		})
	}
	return out, nil
}

// checkCompacted checks what a reader got against what was written: every
// record is one that was written at that offset, offsets grow, and the
// latest record of every key is there (tombstones too: delete.retention.ms
// is an hour).
func checkCompacted(t *testing.T, who string, got []compactedRecord, w *compactedWrites) {
	t.Helper()
	seen := map[int64]bool{}
	last := int64(-1)
	for _, r := range got {
		want, ok := w.at[r.Offset]
		if !ok || want.String() != r.String() {
			t.Fatalf("%s read %v, but %v was written at offset %d", who, r, want, r.Offset)
		}
		if r.Offset <= last {
			t.Fatalf("%s read offset %d after %d", who, r.Offset, last)
		}
		last = r.Offset
		seen[r.Offset] = true
	}
	for key, off := range w.latest {
		if !seen[off] {
			t.Fatalf("%s did not read the latest record of %s (offset %d)", who, key, off)
		}
	}
}

// waitCompacted waits until a reader of topic gets at most limit records.
func waitCompacted(t *testing.T, addrs []string, topic string, limit int) []compactedRecord {
	t.Helper()
	var got []compactedRecord
	harness.WaitFor(t, fmt.Sprintf("%s compacted to at most %d records", topic, limit), 2*time.Minute, func() error {
		var err error
		if got, err = tryReadFromStart(addrs, topic); err != nil {
			return err
		}
		if len(got) > limit {
			return fmt.Errorf("%d records", len(got))
		}
		return nil
	})
	return got
}

// TestCompactedTopicReadByEveryClient compacts a topic on a standalone node
// and reads it with franz-go, kcat and confluent-kafka: each sees the
// latest record of every key at its original offset, tombstones included,
// and nothing that was replaced in the cleaned part. A record without a key
// is refused with INVALID_RECORD.
func TestCompactedTopicReadByEveryClient(t *testing.T) {
	needPythonModule(t, "confluent_kafka")
	n := harness.NewNode(t, harness.NodeOptions{Env: fastCleaner})
	n.Start()
	cl := franzClient(t, n.Addr(), kgo.RequiredAcks(kgo.AllISRAcks()), smallBatches)
	defer cl.Close()
	const topic = "compacted"
	ctx := harness.Context(t, time.Minute)
	if res, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, compactedTopicConfigs(16<<10), topic); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	var w compactedWrites
	const keys, rounds = 100, 30
	produceCompacted(t, cl, topic, keys, rounds, 10, 100, &w)

	got := waitCompacted(t, []string{n.Addr()}, topic, keys*rounds/4)
	checkCompacted(t, "franz-go", got, &w)
	if v := metricValue(n, "chronik_log_cleaner_segments_cleaned_total"); v <= 0 {
		t.Fatalf("chronik_log_cleaner_segments_cleaned_total = %d after compaction", v)
	}

	out := kcat(t, "", "-b", n.Addr(), "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-Z", "-f", "%o|%k|%s\n")
	var kc []compactedRecord
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r compactedRecord
		f := strings.SplitN(line, "|", 3)
		if len(f) != 3 {
			t.Fatalf("kcat printed %q", line)
		}
		fmt.Sscan(f[0], &r.Offset)
		r.Key = f[1]
		if f[2] != "NULL" {
			r.Value = &f[2]
		}
		kc = append(kc, r)
	}
	checkCompacted(t, "kcat", kc, &w)

	py, err := pythonCmd("read_topic.py", n.Addr(), topic).Output()
	if err != nil {
		t.Fatalf("read_topic.py: %v", err)
	}
	var ck []compactedRecord
	for _, line := range strings.Split(strings.TrimSpace(string(py)), "\n") {
		var r compactedRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("read_topic.py printed %q: %v", line, err)
		}
		ck = append(ck, r)
	}
	checkCompacted(t, "confluent-kafka", ck, &w)

	// Every reader got the latest of every key; the compacted log reads the
	// same for all of them once compaction is done.
	if len(kc) < len(w.latest) || len(ck) < len(w.latest) {
		t.Fatalf("kcat read %d and confluent-kafka %d records; %d keys", len(kc), len(ck), len(w.latest))
	}

	res := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("no key")})
	if err := res.FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("a record without a key on a compacted topic: %v, want INVALID_RECORD", err)
	}
}

// TestFollowerCatchesUpFromCompactedLeader stops a follower, writes and
// compacts on the leader, then restarts the follower: it catches up from
// the compacted log (whose raft entries kept their indexes and terms),
// and, made leader, serves the latest record of every key at the same
// offsets as the old leader.
func TestFollowerCatchesUpFromCompactedLeader(t *testing.T) {
	// The leader's raft entry cache (1 MiB here) holds the newest entries
	// as they were appended; the rest is read from its compacted segments.
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3, Env: fastCleaner,
		ExtraConfig: noPreferredLeaders + "entry_cache_bytes = 1048576\n"})
	c.Start()
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), smallBatches, kgo.ProducerBatchCompression(kgo.NoCompression()))
	const topic = "compacted-replicas"
	ctx := harness.Context(t, 3*time.Minute)
	if res, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, compactedTopicConfigs(64<<10), topic); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	lead := waitAdminFullISR(t, c, topic, 0)
	follower := c.Node(int(lead%3) + 1)
	if err := follower.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop node %d: %v", follower.ID, err)
	}
	var w compactedWrites
	const keys, rounds = 100, 30
	produceCompacted(t, cl, topic, keys, rounds, 10, 1000, &w)
	leader := c.Node(int(lead))
	before := waitCompacted(t, []string{leader.Addr()}, topic, keys*rounds/4)
	checkCompacted(t, fmt.Sprintf("node %d (leader)", lead), before, &w)

	// Without a cleaner of its own, whatever the follower serves compacted
	// came compacted from the leader.
	follower.Env = append(follower.Env, "CHRONIK_KAFKA_LOG_CLEANER_ENABLE=false")
	follower.Start()
	waitCaughtUp(t, leader, follower, topic)
	if _, err := adminClient(leader).TransferLeader(ctx, topic, 0, uint64(follower.ID)); err != nil {
		t.Fatalf("move the leadership to node %d: %v", follower.ID, err)
	}
	waitLeaderIs(t, c, topic, 0, int32(follower.ID))
	after := readFromStart(t, c.Addrs(), topic)
	checkCompacted(t, fmt.Sprintf("node %d (caught-up follower, now leader)", follower.ID), after, &w)
	if len(after) > len(w.at)/2 {
		t.Fatalf("node %d serves %d of the %d records written: it did not get the compacted log", follower.ID, len(after), len(w.at))
	}
	t.Logf("the caught-up follower serves %d of the %d records written; the old leader served %d", len(after), len(w.at), len(before))
}

// TestKilledWhileCleaning SIGKILLs a standalone node at random points of a
// slow (I/O-bounded) compaction, three times: every restart finds a
// consistent log (no leftover of the interrupted rewrite, every key's
// latest record readable), and compaction then completes.
func TestKilledWhileCleaning(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{Env: append(slices.Clone(fastCleaner),
		"CHRONIK_KAFKA_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND=2000000")})
	n.Start()
	const topic = "compacted-kill"
	// Uncompressed, so that the cleaner has megabytes to work through.
	uncompressed := kgo.ProducerBatchCompression(kgo.NoCompression())
	cl := franzClient(t, n.Addr(), kgo.RequiredAcks(kgo.AllISRAcks()), smallBatches, uncompressed)
	ctx := harness.Context(t, time.Minute)
	if res, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, compactedTopicConfigs(64<<10), topic); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	var w compactedWrites
	const keys = 200
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range 3 {
		produceCompacted(t, cl, topic, keys, 10, 5, 1000, &w)
		cl.Close()
		// Kill once the cleaner has read a random amount: at a random point
		// of mapping, rewriting or swapping.
		start := metricValue(n, "chronik_log_cleaner_read_bytes_total")
		at := start + 1 + rng.Int64N(3_000_000)
		harness.WaitFor(t, fmt.Sprintf("the cleaner to read %d bytes", at-start), time.Minute, func() error {
			if v := metricValue(n, "chronik_log_cleaner_read_bytes_total"); v < at {
				return fmt.Errorf("read %d", v)
			}
			return nil
		})
		n.Kill()
		n.Start()
		dir := harness.PartitionDir(t, n.DataDir, topic, 0)
		leftovers, _ := filepath.Glob(filepath.Join(dir, "*.cleaned"))
		if len(leftovers) > 0 {
			t.Fatalf("round %d: leftovers of the interrupted compaction after the restart: %v", round, leftovers)
		}
		checkCompacted(t, fmt.Sprintf("round %d, after the kill", round), readFromStart(t, []string{n.Addr()}, topic), &w)
		cl = franzClient(t, n.Addr(), kgo.RequiredAcks(kgo.AllISRAcks()), smallBatches, uncompressed)
	}
	cl.Close()
	got := waitCompacted(t, []string{n.Addr()}, topic, keys*3)
	checkCompacted(t, "after compaction completed", got, &w)
}

// TestAdminCreateTopicsWithConfigs creates topics with configs through
// librdkafka's admin API as librdkafka's own admin test does: the configs
// it sets are accepted and described back as topic configs, an unknown one
// is refused with INVALID_CONFIG.
func TestAdminCreateTopicsWithConfigs(t *testing.T) {
	needPythonModule(t, "confluent_kafka")
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	raw, err := pythonCmd("admin_configs.py", n.Addr(), "rdadmin").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("admin_configs.py: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var out struct {
		Created map[string]*string
		Configs map[string]map[string][2]any
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("admin_configs.py printed %s: %v", raw, err)
	}
	for topic, want := range map[string]string{"rdadmin-configs": "", "rdadmin-compact": "", "rdadmin-invalid": "INVALID_CONFIG"} {
		got := out.Created[topic]
		if (want == "") != (got == nil) || (got != nil && *got != want) {
			t.Fatalf("create %s: %v, want %q", topic, got, want)
		}
	}
	const topicSource, defaultSource = 1, 5
	for topic, want := range map[string]map[string][2]any{
		"rdadmin-configs": {"compression.type": {"lz4", topicSource}, "delete.retention.ms": {"900", topicSource},
			"cleanup.policy": {"delete", defaultSource}},
		"rdadmin-compact": {"cleanup.policy": {"compact", topicSource}, "min.cleanable.dirty.ratio": {"0.1", topicSource},
			"preallocate": {"true", topicSource}, "max.compaction.lag.ms": {"9223372036854775807", defaultSource}},
	} {
		for name, w := range want {
			got, ok := out.Configs[topic][name]
			if !ok || got[0] != w[0] || got[1] != float64(w[1].(int)) {
				t.Errorf("%s %s described as %v, want %v", topic, name, got, w)
			}
		}
	}
}

// TestTopicCompressionType: a topic whose compression.type names a codec
// stores every batch with it, whatever the producer sent.
func TestTopicCompressionType(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	cl := franzClient(t, n.Addr(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	defer cl.Close()
	ctx := harness.Context(t, time.Minute)
	zstd := "zstd"
	const topic = "stored-zstd"
	if res, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": &zstd}, topic); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	var recs []*kgo.Record
	for i := range 500 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(msgKey(i)), Value: []byte(msgValue(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	kcat(t, "k:v\n", "-b", n.Addr(), "-P", "-t", topic, "-K", ":", "-z", "gzip")
	got := readFromStart(t, []string{n.Addr()}, topic)
	if len(got) != 501 {
		t.Fatalf("read %d records, want 501", len(got))
	}
	rd := franzClient(t, n.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	defer rd.Close()
	seen := 0
	for seen < 501 && ctx.Err() == nil {
		rd.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			seen++
			if c := r.Attrs.CompressionType(); c != 4 {
				t.Fatalf("record %d stored with codec %d, want zstd (4)", r.Offset, c)
			}
		})
	}
}

// TestBenchProducesToCompactedTopic: the load tool's --keys gives every
// message a key, which a compacted topic requires; without it every
// message is refused.
func TestBenchProducesToCompactedTopic(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	run := func(topic string, keys string) bench.Result {
		ctx := harness.Context(t, time.Minute)
		cmd := exec.CommandContext(ctx, harness.Binary(t), "bench", "produce", "--bootstrap", n.Addr(), "--topic", topic,
			"--topic-config", "cleanup.policy=compact", "--partitions", "1", "--count", "2000", "--size", "100",
			"--keys", keys, "--json")
		out, err := cmd.Output()
		var r []bench.Result
		if jerr := json.Unmarshal(out, &r); jerr != nil || len(r) != 1 {
			t.Fatalf("bench produce --keys %s: %v (%v)\n%s", keys, jerr, err, out)
		}
		return r[0]
	}
	if r := run("bench-keyed", "100"); r.Errors != 0 || r.Messages != 2000 {
		t.Fatalf("with --keys 100: %d messages, %d errors (%s)", r.Messages, r.Errors, r.FirstError)
	}
	if r := run("bench-keyless", "0"); r.Errors == 0 || !strings.Contains(r.FirstError, "INVALID_RECORD") {
		t.Fatalf("without keys: %d errors, first %q; want INVALID_RECORD", r.Errors, r.FirstError)
	}
}

// TestTopicTimestampConfigs: message.timestamp.type=LogAppendTime stamps
// batches with the leader's clock (the produce response carries it, readers
// see it); message.timestamp.before.max.ms and after.max.ms refuse records
// too far from the leader's clock with INVALID_TIMESTAMP.
func TestTopicTimestampConfigs(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	cl := franzClient(t, n.Addr())
	defer cl.Close()
	ctx := harness.Context(t, time.Minute)
	s := func(v string) *string { return &v }
	adm := kadm.NewClient(cl)
	for topic, cfg := range map[string]map[string]*string{
		"append-time":  {"message.timestamp.type": s("LogAppendTime")},
		"bounded-time": {"message.timestamp.before.max.ms": s("3600000"), "message.timestamp.after.max.ms": s("60000")},
	} {
		if res, err := adm.CreateTopic(ctx, 1, 1, cfg, topic); err != nil || res.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, res.Err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	before := time.Now()
	// franz-go does not surface the produce response's log append time:
	// ask with a raw request.
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 8, -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "append-time"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: old.UnixMilli(), Value: []byte("v")}}})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	pr := resp.Topics[0].Partitions[0]
	if pr.ErrorCode != 0 || pr.LogAppendTime < before.UnixMilli() {
		t.Fatalf("produce to a LogAppendTime topic: error %d, log append time %d, want at least %d", pr.ErrorCode, pr.LogAppendTime, before.UnixMilli())
	}
	rd := franzClient(t, n.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"append-time": {0: kgo.NewOffset().AtStart()}}))
	defer rd.Close()
	var got *kgo.Record
	for got == nil && ctx.Err() == nil {
		rd.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = r })
	}
	if got == nil || got.Attrs.TimestampType() != 1 || got.Timestamp.Before(before.Add(-time.Second)) {
		t.Fatalf("read %+v: want the leader's append time (timestamp type 1), not %v", got, old)
	}

	for _, c := range []struct {
		ts   time.Time
		want error
	}{
		{time.Now(), nil},
		{time.Now().Add(-2 * time.Hour), kerr.InvalidTimestamp},
		{time.Now().Add(10 * time.Minute), kerr.InvalidTimestamp},
		{time.Now().Add(-30 * time.Minute), nil},
	} {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "bounded-time", Value: []byte("v"), Timestamp: c.ts}).FirstErr()
		if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Fatalf("record at %v on a topic bounded 1 h before and 1 min after: %v, want %v", c.ts, err, c.want)
		}
	}
}

// waitCaughtUp waits until follower's replica of topic/0 has the leader's
// log end and high watermark and is in the leader's ISR.
func waitCaughtUp(t *testing.T, leader, follower *harness.Node, topic string) {
	t.Helper()
	harness.WaitFor(t, fmt.Sprintf("node %d to catch up with node %d", follower.ID, leader.ID), time.Minute, func() error {
		lp, err := partitionOn(leader, topic, 0)
		if err != nil {
			return err
		}
		fp, err := partitionOn(follower, topic, 0)
		if err != nil {
			return err
		}
		if fp.LogEnd != lp.LogEnd || fp.HighWatermark != lp.HighWatermark || !slices.Contains(lp.ISR, uint64(follower.ID)) {
			return fmt.Errorf("follower at %d/%d, leader at %d/%d, ISR %v", fp.HighWatermark, fp.LogEnd, lp.HighWatermark, lp.LogEnd, lp.ISR)
		}
		return nil
	})
}
