package test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/test/harness"
)

// TestBadInputKeepsTheServerServing sends malformed and invalid requests;
// each gets its Kafka error code or, for framing errors, a closed
// connection, and a well-behaved client on another connection is served
// throughout and loses nothing.
func TestBadInputKeepsTheServerServing(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{Env: []string{"CHRONIK_KAFKA_MESSAGE_MAX_BYTES=2048"}})
	n.Start()
	ctx := harness.Context(t, time.Minute)
	good := franzClient(t, n.Addr(), kgo.DefaultProduceTopic("steady"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer good.Close()
	produced := 0
	produce := func() {
		t.Helper()
		if err := good.ProduceSync(ctx, &kgo.Record{Value: []byte("ok")}).FirstErr(); err != nil {
			t.Fatalf("the well-behaved client failed: %v", err)
		}
		produced++
	}
	produce()

	closed := func(what string, frame []byte) {
		t.Helper()
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(frame)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("%s: connection not closed (%v)", what, err)
		}
		produce()
	}
	closed("a frame above socket.request.max.bytes", []byte{0x7f, 0xff, 0xff, 0xff})
	closed("a negative frame size", []byte{0xff, 0xff, 0xff, 0xfe})
	closed("an unknown API key", []byte{0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0, 0})
	closed("an unsupported Metadata version", []byte{0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0, 0})
	closed("a header cut short", []byte{0, 0, 0, 3, 0, 3, 0})
	closed("a body that does not decode", []byte{0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff})

	rc := dialRaw(t, n.Addr())
	produceRaw := func(topic string, records []byte) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: records}}}}
		return rc.do(req, 9).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	good1 := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: 1, Value: []byte("v")}}})
	corrupt := bytes.Clone(good1)
	corrupt[len(corrupt)-1] ^= 1
	big := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: 1, Value: bytes.Repeat([]byte("x"), 4096)}}})
	cases := []struct {
		what  string
		topic string
		recs  []byte
		want  *kerr.Error
	}{
		{"a batch with a bad CRC", "steady", corrupt, kerr.CorruptMessage},
		{"a truncated batch", "steady", good1[:len(good1)-3], kerr.CorruptMessage},
		{"two batches in one partition", "steady", append(bytes.Clone(good1), good1...), kerr.CorruptMessage},
		{"a batch above max.message.bytes", "steady", big, kerr.MessageTooLarge},
		{"an unknown topic", "no-such-topic", good1, kerr.UnknownTopicOrPartition},
		{"the internal offsets topic", "__consumer_offsets", good1, kerr.InvalidTopicException},
	}
	for _, c := range cases {
		if got := produceRaw(c.topic, c.recs); got != c.want.Code {
			t.Fatalf("%s: %v, want %v", c.what, kerr.ErrorForCode(got), c.want)
		}
		produce()
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("bad topic name!")}}
	if r := rc.do(md, 12).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("metadata for an invalid name: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	acks := kmsg.NewPtrProduceRequest()
	acks.Acks = 2
	acks.Topics = []kmsg.ProduceRequestTopic{{Topic: "steady", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: good1}}}}
	if r := rc.do(acks, 9).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidRequiredAcks.Code {
		t.Fatalf("acks=2: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}

	// Nothing the good client wrote was lost, and nothing else got in.
	cl := franzClient(t, n.Addr(), kgo.ConsumeTopics("steady"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	got := 0
	for got < produced && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if string(r.Value) != "ok" {
				t.Fatalf("a rejected record was stored: %q", r.Value)
			}
			got++
		})
	}
	if got != produced {
		t.Fatalf("read %d records back, produced %d", got, produced)
	}
	if !n.WaitLogContains("closing connection", 10*time.Second) {
		t.Fatal("framing errors were not logged")
	}
}

// TestGracefulShutdownAndDirectoryLock: SIGTERM exits 0 after answering
// what was in flight; a second server on a data directory in use refuses
// to start and says why.
func TestGracefulShutdownAndDirectoryLock(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	second := harness.NewNode(t, harness.NodeOptions{ID: 1, DataDir: n.DataDir})
	out, err := exec.Command(harness.Binary(t), "--data-dir", second.DataDir, "--advertised-addr", second.Addr(),
		"--metrics-addr", second.HTTPAddr(), "standalone").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another chronik-server") {
		t.Fatalf("second server on the same directory: %v\n%s", err, out)
	}
	// A long poll in flight is answered before the process exits.
	cl := franzClient(t, n.Addr(), kgo.ConsumeTopics("quiet"), kgo.FetchMaxWait(3*time.Second))
	defer cl.Close()
	cl.ProduceSync(harness.Context(t, 10*time.Second), &kgo.Record{Topic: "quiet", Value: []byte("x")})
	if err := n.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, n.Log())
	}
	if !n.LogContains("stopped cleanly") {
		t.Fatalf("no clean stop logged:\n%s", n.Log())
	}
	// It restarts on the same directory with its data.
	n.Start()
	ctx := harness.Context(t, 30*time.Second)
	c2 := franzClient(t, n.Addr(), kgo.ConsumeTopics("quiet"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer c2.Close()
	if fs := c2.PollFetches(ctx); fs.NumRecords() != 1 {
		t.Fatalf("after restart: %d records, errors %v", fs.NumRecords(), fs.Errors())
	}
}

// TestBadConfigurationIsRefused: bad flags, environment and files stop the
// server at start with a message naming the key, and exit status 2.
func TestBadConfigurationIsRefused(t *testing.T) {
	bin := harness.Binary(t)
	cases := []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--node-id", "0", "standalone"}, "", "node_id"},
		{[]string{"--advertised-addr", "nohostport", "standalone"}, "", "advertised_addr"},
		{[]string{"standalone"}, "CHRONIK_RAFT_ELECTION_TIMEOUT_MS=abc", "CHRONIK_RAFT_ELECTION_TIMEOUT_MS"},
		{[]string{"standalone"}, "CHRONIK_RAFT_HEARTBEAT_INTERVAL_MS=5000", "heartbeat_interval_ms"},
		{[]string{"--log-level", "loud", "standalone"}, "", "log_level"},
		{[]string{"--config", "/does/not/exist.toml", "standalone"}, "", "exist.toml"},
		{[]string{"standalone", "--no-such-flag"}, "", "unknown flag"},
		{[]string{"no-such-command"}, "", "unknown command"},
	}
	for _, c := range cases {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = []string{"HOME=/tmp"}
		if c.env != "" {
			cmd.Env = append(cmd.Env, c.env)
		}
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("%v %s: started (%v)\n%s", c.args, c.env, err, out)
		}
		if !strings.Contains(string(out), c.want) {
			t.Fatalf("%v %s: message does not name %q:\n%s", c.args, c.env, c.want, out)
		}
	}
	out, _ := exec.Command(bin, "standalone", "--help").CombinedOutput()
	for _, flag := range []string{"--raft", "--node-id", "--advertised-addr", "--data-dir", "--metrics-addr", "--config", "--listen"} {
		if !strings.Contains(string(out), flag) {
			t.Fatalf("--help does not list %s:\n%s", flag, out)
		}
	}
}

// TestMetricsAndHealth scrapes /metrics after some traffic.
func TestMetricsAndHealth(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	ctx := harness.Context(t, 30*time.Second)
	cl := franzClient(t, n.Addr(), kgo.DefaultProduceTopic("metered"))
	defer cl.Close()
	for range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get("http://" + n.HTTPAddr() + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %v %v", err, resp)
	}
	resp.Body.Close()
	m, err := n.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`chronik_kafka_requests_total{api="Produce"} 10`,
		"chronik_storage_fsync_latency_ms_count",
		"chronik_raft_leader_count 1",
		"chronik_raft_follower_count 0",
		`chronik_raft_isr_size{partition="0",topic="metered"} 1`,
		`chronik_log_high_watermark{partition="0",topic="metered"} 10`,
		`chronik_raft_election_count{partition="0",topic="metered"} 1`,
		"chronik_raft_commit_latency_ms_count 10",
		"chronik_kafka_connections ",
	} {
		if !strings.Contains(m, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, m)
		}
	}
}

// mountTmpfs mounts a tmpfs of size on dir for the test. It needs root,
// which CI has: a test that cannot run fails rather than skips.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("mounting a small tmpfs needs root (CI runs the tests as root)")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("cannot mount tmpfs on %s: %v %s", dir, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// TestDiskFullStandalone fills a real (tmpfs) data directory: produces fail
// with an error instead of an acknowledgement, nothing acknowledged is
// lost, and once space is freed the partition takes writes again without
// a restart.
func TestDiskFullStandalone(t *testing.T) {
	dir := t.TempDir()
	mountTmpfs(t, dir, "48m")
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	n := harness.NewNode(t, harness.NodeOptions{DataDir: filepath.Join(dir, "data")})
	n.Start()
	cl := franzClient(t, n.Addr(), kgo.DefaultProduceTopic("full"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(3*time.Second), kgo.ProduceRequestTimeout(2*time.Second),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		// An idempotent franz-go producer never gives up on a record it may
		// have written; this test wants the error.
		kgo.DisableIdempotentWrite())
	defer cl.Close()
	value := bytes.Repeat([]byte("f"), 64<<10)
	acked := 0
	var failure error
	for range 2000 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr()
		cancel()
		if err != nil {
			failure = err
			break
		}
		acked++
	}
	if failure == nil {
		t.Fatal("48 MiB filled without an error")
	}
	t.Logf("disk full after %d acknowledged records: %v", acked, failure)
	if !n.WaitLogContains("disk full", 10*time.Second) {
		t.Fatal("the server did not log the full disk")
	}
	os.Remove(ballast)
	harness.WaitFor(t, "writes to succeed again after space was freed", 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr()
	})
	// Everything acknowledged is there.
	c2 := franzClient(t, n.Addr(), kgo.ConsumeTopics("full"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := 0
	for got < acked && ctx.Err() == nil {
		c2.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if len(r.Value) == len(value) {
				got++
			}
		})
	}
	if got < acked {
		t.Fatalf("read %d of %d acknowledged records", got, acked)
	}
}
