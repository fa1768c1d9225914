package test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/test/harness"
)

// Kafka's tools for log directories and producer state.
const (
	kafkaLogDirs      = "org.apache.kafka.tools.LogDirsCommand"
	kafkaTransactions = "org.apache.kafka.tools.TransactionsCommand"
)

// logDirsOutput is what kafka-log-dirs --describe prints as JSON.
type logDirsOutput struct {
	Brokers []struct {
		Broker  int32 `json:"broker"`
		LogDirs []struct {
			LogDir     string  `json:"logDir"`
			Error      *string `json:"error"`
			Partitions []struct {
				Partition string `json:"partition"`
				Size      int64  `json:"size"`
				OffsetLag int64  `json:"offsetLag"`
				IsFuture  bool   `json:"isFuture"`
			} `json:"partitions"`
		} `json:"logDirs"`
	} `json:"brokers"`
}

// describeLogDirs runs kafka-log-dirs --describe for topics and decodes
// its JSON line.
func describeLogDirs(t *testing.T, boot string, topics ...string) logDirsOutput {
	t.Helper()
	out := kafkaTool(t, "", kafkaLogDirs, "--bootstrap-server", boot, "--describe", "--topic-list", strings.Join(topics, ","))
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "{") {
			var res logDirsOutput
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatalf("kafka-log-dirs printed JSON that does not decode: %v\n%s", err, out)
			}
			return res
		}
	}
	t.Fatalf("kafka-log-dirs printed no JSON:\n%s", out)
	return logDirsOutput{}
}

// TestKafkaLogDirsTool runs kafka-log-dirs against a 3-node cluster: every
// broker reports its data directory, with the size on disk of each replica
// it holds, leader or follower, of the topics asked for.
func TestKafkaLogDirsTool(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	boot := strings.Join(c.Addrs(), ",")
	cl := clusterClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(10*time.Millisecond))
	createTopic(t, cl, "dirs", 2, 3)
	createTopic(t, cl, "dirs-other", 1, 3)

	// 2 MB of incompressible values into partition 0, nothing into 1.
	const records, valueSize = 2000, 1000
	payload := int64(records * valueSize)
	ctx := harness.Context(t, time.Minute)
	for i := range records {
		v := make([]byte, valueSize)
		rand.Read(v)
		cl.Produce(ctx, &kgo.Record{Topic: "dirs", Partition: 0, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %d: %v", i, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	produceN(t, cl, "dirs-other", 0, "other", 10)

	// Followers may still be catching up: wait until every replica holds
	// the payload, then check what each broker reports.
	var res logDirsOutput
	harness.WaitFor(t, "every replica of dirs-0 to hold the payload", time.Minute, func() error {
		res = describeLogDirs(t, boot, "dirs")
		if len(res.Brokers) != 3 {
			return fmt.Errorf("%d brokers answered", len(res.Brokers))
		}
		for _, b := range res.Brokers {
			for _, d := range b.LogDirs {
				for _, p := range d.Partitions {
					if p.Partition == "dirs-0" && p.Size <= payload {
						return fmt.Errorf("broker %d: dirs-0 holds %d bytes", b.Broker, p.Size)
					}
				}
			}
		}
		return nil
	})
	t.Logf("kafka-log-dirs: %+v", res)
	leader := waitLeader(t, c, "dirs", 0, -1)
	for _, b := range res.Brokers {
		if len(b.LogDirs) != 1 {
			t.Fatalf("broker %d reports %d log dirs, want its data dir", b.Broker, len(b.LogDirs))
		}
		d := b.LogDirs[0]
		want, err := filepath.Abs(c.Node(int(b.Broker)).DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if d.LogDir != want || d.Error != nil {
			t.Fatalf("broker %d: log dir %q (error %v), want %q", b.Broker, d.LogDir, d.Error, want)
		}
		var parts []string
		for _, p := range d.Partitions {
			parts = append(parts, p.Partition)
			if p.IsFuture || p.OffsetLag != 0 {
				t.Fatalf("broker %d, %s: future %v, offset lag %d", b.Broker, p.Partition, p.IsFuture, p.OffsetLag)
			}
			switch p.Partition {
			case "dirs-0":
				if p.Size <= payload || p.Size >= 2*payload {
					t.Fatalf("broker %d (leader %d): dirs-0 is %d bytes on disk for %d bytes of values", b.Broker, leader, p.Size, payload)
				}
			case "dirs-1":
				if p.Size >= valueSize {
					t.Fatalf("broker %d: the empty dirs-1 is %d bytes on disk", b.Broker, p.Size)
				}
			}
		}
		slices.Sort(parts)
		if !slices.Equal(parts, []string{"dirs-0", "dirs-1"}) {
			t.Fatalf("broker %d reports %v, want every replica of dirs (every broker holds one of each) and only those", b.Broker, parts)
		}
	}
}

// TestKafkaTransactionsDescribeProducers runs kafka-transactions
// describe-producers against a 3-node cluster after franz-go's idempotent
// producer wrote ten single-record batches: the tool shows that producer's
// id and epoch and the sequence of its tenth record. Asked of a follower,
// the tool fails with the follower's NOT_LEADER_OR_FOLLOWER.
func TestKafkaTransactionsDescribeProducers(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	boot := strings.Join(c.Addrs(), ",")
	cl := clusterClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "producers", 2, 3)
	ctx := harness.Context(t, time.Minute)
	for i := range 10 {
		// One at a time, so each record is a batch of its own.
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "producers", Partition: 0, Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	out := kafkaTool(t, "", kafkaTransactions, "--bootstrap-server", boot, "describe-producers", "--topic", "producers", "--partition", "0")
	t.Logf("describe-producers:\n%s", out)
	rows := describeProducersRows(t, out)
	if len(rows) != 1 {
		t.Fatalf("describe-producers lists %d producers, want 1:\n%s", len(rows), out)
	}
	row := rows[0]
	if row["ProducerId"] != strconv.FormatInt(id, 10) || row["ProducerEpoch"] != strconv.Itoa(int(epoch)) ||
		row["LastSequence"] != "9" || row["LatestCoordinatorEpoch"] != "-1" || row["CurrentTransactionStartOffset"] != "None" {
		t.Fatalf("describe-producers: %v, want producer %d epoch %d last sequence 9, no coordinator epoch, no transaction", row, id, epoch)
	}
	ts, err := strconv.ParseInt(row["LastTimestamp"], 10, 64)
	if err != nil || time.Since(time.UnixMilli(ts)).Abs() > 10*time.Minute {
		t.Fatalf("describe-producers: last timestamp %q is not the time of the last record", row["LastTimestamp"])
	}

	// Partition 1 had no producer.
	if rows := describeProducersRows(t, kafkaTool(t, "", kafkaTransactions, "--bootstrap-server", boot,
		"describe-producers", "--topic", "producers", "--partition", "1")); len(rows) != 0 {
		t.Fatalf("describe-producers of the unwritten partition 1: %v", rows)
	}

	// A follower refuses: the tool, told to ask it, fails.
	leader := waitLeader(t, c, "producers", 0, -1)
	follower := leader%3 + 1
	_, errOut, err := runJavaErr(t, 2*time.Minute, kafkaTransactions, "--bootstrap-server", boot,
		"describe-producers", "--topic", "producers", "--partition", "0", "--broker-id", strconv.Itoa(int(follower)))
	if err == nil || !strings.Contains(errOut, "NotLeaderOrFollowerException") {
		t.Fatalf("describe-producers on follower %d (leader %d): %v\n%s", follower, leader, err, tail(errOut, 4<<10))
	}

	// A partition the topic does not have, and a topic that does not
	// exist, asked of the leader directly.
	req := kmsg.NewPtrDescribeProducersRequest()
	req.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "producers", Partitions: []int32{0, 7}}, {Topic: "no-such-topic", Partitions: []int32{0}}}
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			got[fmt.Sprintf("%s-%d", rt.Topic, rp.Partition)] = rp.ErrorCode
		}
	}
	want := map[string]int16{"producers-0": 0, "producers-7": kerr.UnknownTopicOrPartition.Code, "no-such-topic-0": kerr.UnknownTopicOrPartition.Code}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("DescribeProducers of the leader: error codes %v, want %v", got, want)
	}
}

// describeProducersRows parses the table kafka-transactions
// describe-producers prints: a header line, then one line per producer.
func describeProducersRows(t *testing.T, out string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(strings.TrimSpace(lines[0]), "ProducerId") {
		t.Fatalf("describe-producers printed no header:\n%s", out)
	}
	header := strings.Fields(lines[0])
	var rows []map[string]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != len(header) {
			t.Fatalf("describe-producers line %q does not match its header %v", l, header)
		}
		row := map[string]string{}
		for i, h := range header {
			row[h] = f[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// describeLogDirsVersion covers DescribeLogDirs at every version on the
// standalone node of TestEveryAdvertisedVersion, whose topic has data in
// partition 0.
func describeLogDirsVersion(t *testing.T, rc *rawConn, dataDir, topic string) func(v int16) {
	return func(v int16) {
		t.Helper()
		named := kmsg.NewPtrDescribeLogDirsRequest()
		named.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: topic, Partitions: []int32{0, 1, 99}}, {Topic: "no-such-topic", Partitions: []int32{0}}}
		for _, req := range []*kmsg.DescribeLogDirsRequest{kmsg.NewPtrDescribeLogDirsRequest(), named} {
			r := rc.do(req, v).(*kmsg.DescribeLogDirsResponse)
			if r.ErrorCode != 0 || len(r.Dirs) != 1 || r.Dirs[0].ErrorCode != 0 || r.Dirs[0].Dir != dataDir {
				t.Fatalf("DescribeLogDirs v%d: %+v, want one dir %s", v, r, dataDir)
			}
			d := r.Dirs[0]
			if v >= 4 && (d.TotalBytes <= 0 || d.UsableBytes < 0 || d.UsableBytes > d.TotalBytes) {
				t.Fatalf("DescribeLogDirs v%d: total %d, usable %d bytes", v, d.TotalBytes, d.UsableBytes)
			}
			var parts []int32
			for _, dt := range d.Topics {
				if req.Topics != nil && dt.Topic != topic {
					t.Fatalf("DescribeLogDirs v%d reports topic %s, not asked for", v, dt.Topic)
				}
				if dt.Topic != topic {
					continue
				}
				for _, p := range dt.Partitions {
					parts = append(parts, p.Partition)
					if p.OffsetLag != 0 || p.IsFuture || p.Partition == 0 && p.Size <= 0 {
						t.Fatalf("DescribeLogDirs v%d: %s-%d: %+v", v, topic, p.Partition, p)
					}
				}
			}
			if req.Topics != nil && !slices.Equal(parts, []int32{0, 1}) || req.Topics == nil && len(parts) < 2 {
				t.Fatalf("DescribeLogDirs v%d of %v: partitions %v of %s", v, req.Topics, parts, topic)
			}
		}
	}
}

// describeProducersVersion covers DescribeProducers at every version on
// the standalone node of TestEveryAdvertisedVersion: a new idempotent
// producer writes three records to partition 0, and is reported with its
// last sequence, 2; unknown partitions and topics are reported as such.
func describeProducersVersion(t *testing.T, rc *rawConn, topic string) func(v int16) {
	return func(v int16) {
		t.Helper()
		ip := rc.do(kmsg.NewPtrInitProducerIDRequest(), 1).(*kmsg.InitProducerIDResponse)
		if ip.ErrorCode != 0 {
			t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(ip.ErrorCode))
		}
		ts := time.Now().UnixMilli()
		var recs []recordbatch.Record
		for i := range 3 {
			recs = append(recs, recordbatch.Record{Timestamp: ts + int64(i), Value: []byte("idempotent")})
		}
		produce := kmsg.NewPtrProduceRequest()
		produce.Acks, produce.TimeoutMillis = -1, 10000
		produce.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0,
			Records: recordbatch.Build(recordbatch.Batch{ProducerID: ip.ProducerID, ProducerEpoch: ip.ProducerEpoch, BaseSequence: 0, Records: recs})}}}}
		if p := rc.do(produce, 7).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 {
			t.Fatalf("idempotent produce: %v", kerr.ErrorForCode(p.ErrorCode))
		}

		req := kmsg.NewPtrDescribeProducersRequest()
		req.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: topic, Partitions: []int32{0, 99}}, {Topic: "no-such-topic", Partitions: []int32{0}}}
		r := rc.do(req, v).(*kmsg.DescribeProducersResponse)
		if len(r.Topics) != 2 || len(r.Topics[0].Partitions) != 2 || len(r.Topics[1].Partitions) != 1 {
			t.Fatalf("DescribeProducers v%d: %+v", v, r)
		}
		p0, p99, missing := r.Topics[0].Partitions[0], r.Topics[0].Partitions[1], r.Topics[1].Partitions[0]
		if p0.ErrorCode != 0 || p99.ErrorCode != kerr.UnknownTopicOrPartition.Code || missing.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("DescribeProducers v%d: errors %v, %v, %v", v, kerr.ErrorForCode(p0.ErrorCode), kerr.ErrorForCode(p99.ErrorCode), kerr.ErrorForCode(missing.ErrorCode))
		}
		for _, ap := range p0.ActiveProducers {
			if ap.ProducerID != ip.ProducerID {
				continue
			}
			if ap.ProducerEpoch != int32(ip.ProducerEpoch) || ap.LastSequence != 2 || ap.LastTimestamp != ts+2 ||
				ap.CoordinatorEpoch != -1 || ap.CurrentTxnStartOffset != -1 {
				t.Fatalf("DescribeProducers v%d: %+v, want epoch %d, last sequence 2, last timestamp %d", v, ap, ip.ProducerEpoch, ts+2)
			}
			return
		}
		t.Fatalf("DescribeProducers v%d does not list producer %d: %+v", v, ip.ProducerID, p0.ActiveProducers)
	}
}
