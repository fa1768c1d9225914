package test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronik-stream/chronik/test/harness"
)

// Kafka's command-line tools, as their scripts in Kafka's bin/ run them.
const (
	kafkaTopics          = "org.apache.kafka.tools.TopicCommand"
	kafkaConsoleProducer = "org.apache.kafka.tools.ConsoleProducer"
	kafkaConsoleConsumer = "org.apache.kafka.tools.consumer.ConsoleConsumer"
	kafkaConsumerGroups  = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
	kafkaConfigs         = "kafka.admin.ConfigCommand"
	kafkaGetOffsets      = "org.apache.kafka.tools.GetOffsetShell"
	kafkaDeleteRecords   = "org.apache.kafka.tools.DeleteRecordsCommand"
	kafkaProducerPerf    = "org.apache.kafka.tools.ProducerPerformance"
	kafkaConsumerPerf    = "org.apache.kafka.tools.ConsumerPerformance"
	kafkaReassign        = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
	kafkaLeaderElection  = "org.apache.kafka.tools.LeaderElectionCommand"
)

// kafkaTool runs one of Kafka's tools to completion and returns its
// standard output; a failure fails the test with what it printed.
func kafkaTool(t *testing.T, stdin string, class string, args ...string) string {
	t.Helper()
	cmd := javaCmd(t, class, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", class, strings.Join(args, " "), err, out.String(), tail(errb.String(), 8<<10))
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("%s %s did not finish\nstdout:\n%s\nstderr:\n%s", class, strings.Join(args, " "), out.String(), tail(errb.String(), 8<<10))
	}
	return out.String()
}

// TestKafkaTools runs Kafka's own command-line tools (4.1.1, from the
// Kafka jars, as bin/kafka-*.sh would) against a 3-node cluster and checks
// that each does what it does against Kafka.
func TestKafkaTools(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	boot := strings.Join(c.Addrs(), ",")
	adm := kadm.NewClient(clusterClient(t, c))

	t.Run("kafka-topics", func(t *testing.T) {
		kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--create", "--topic", "tools",
			"--partitions", "3", "--replication-factor", "3", "--config", "retention.ms=86400000")
		list := kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--list")
		if !slicesContainsLine(list, "tools") {
			t.Fatalf("--list:\n%s", list)
		}
		desc := kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--describe", "--topic", "tools")
		t.Logf("--describe:\n%s", desc)
		if !strings.Contains(desc, "PartitionCount: 3") || !strings.Contains(desc, "ReplicationFactor: 3") ||
			!strings.Contains(desc, "retention.ms=86400000") {
			t.Fatalf("--describe of the topic:\n%s", desc)
		}
		parts := regexp.MustCompile(`Partition: (\d+)\s+Leader: (\d+)\s+Replicas: ([\d,]+)\s+Isr: ([\d,]+)`).FindAllStringSubmatch(desc, -1)
		if len(parts) != 3 {
			t.Fatalf("--describe lists %d partitions:\n%s", len(parts), desc)
		}
		for _, p := range parts {
			if len(strings.Split(p[3], ",")) != 3 || len(strings.Split(p[4], ",")) != 3 {
				t.Fatalf("partition %s: replicas %s, isr %s", p[1], p[3], p[4])
			}
		}
		kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--alter", "--topic", "tools", "--partitions", "4")
		desc = kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--describe", "--topic", "tools")
		if !strings.Contains(desc, "PartitionCount: 4") {
			t.Fatalf("after --alter --partitions 4:\n%s", desc)
		}
		// One partition per answer: the tool pages through
		// DescribeTopicPartitions.
		paged := kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--describe", "--topic", "tools",
			"--partition-size-limit-per-response", "1")
		if n := strings.Count(paged, "\tPartition: "); n != 4 {
			t.Fatalf("--describe one partition per response lists %d partitions:\n%s", n, paged)
		}
		kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--create", "--topic", "doomed", "--partitions", "1", "--replication-factor", "3")
		kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--delete", "--topic", "doomed")
		harness.WaitFor(t, "the deleted topic to leave --list", 30*time.Second, func() error {
			if list := kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--list"); slicesContainsLine(list, "doomed") {
				return fmt.Errorf("still listed:\n%s", list)
			}
			return nil
		})
		// A second create of the same topic fails as against Kafka.
		_, errOut, err := runJavaErr(t, time.Minute, kafkaTopics, "--bootstrap-server", boot, "--create", "--topic", "tools", "--partitions", "1")
		if err == nil || !strings.Contains(errOut+"", "already exists") {
			t.Fatalf("creating an existing topic: %v\n%s", err, errOut)
		}
	})

	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf("key-%d:value-%d", i%10, i))
	}
	t.Run("console-producer-and-consumer", func(t *testing.T) {
		kafkaTool(t, strings.Join(lines, "\n")+"\n", kafkaConsoleProducer, "--bootstrap-server", boot, "--topic", "tools",
			"--property", "parse.key=true", "--property", "key.separator=:",
			"--producer-property", "acks=all", "--producer-property", "enable.idempotence=true",
			"--compression-codec", "zstd")
		out := kafkaTool(t, "", kafkaConsoleConsumer, "--bootstrap-server", boot, "--topic", "tools", "--from-beginning",
			"--max-messages", "200", "--timeout-ms", "60000", "--group", "tools-console",
			"--property", "print.key=true", "--property", "key.separator=:", "--property", "print.partition=true")
		got := map[string]bool{}
		keyPartition := map[string]string{}
		line := regexp.MustCompile(`^Partition:(\d+):((key-\d+):.*)$`)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := line.FindStringSubmatch(l)
			if f == nil {
				t.Fatalf("console consumer printed %q", l)
			}
			got[f[2]] = true
			if p, ok := keyPartition[f[3]]; ok && p != f[1] {
				t.Fatalf("key %s in partitions %s and %s", f[3], p, f[1])
			}
			keyPartition[f[3]] = f[1]
		}
		for _, l := range lines {
			if !got[l] {
				t.Fatalf("the console consumer did not print %q (%d distinct lines)", l, len(got))
			}
		}
	})

	t.Run("kafka-consumer-groups", func(t *testing.T) {
		list := kafkaTool(t, "", kafkaConsumerGroups, "--bootstrap-server", boot, "--list")
		if !slicesContainsLine(list, "tools-console") {
			t.Fatalf("--list:\n%s", list)
		}
		desc := kafkaTool(t, "", kafkaConsumerGroups, "--bootstrap-server", boot, "--describe", "--group", "tools-console")
		t.Logf("--describe:\n%s", desc)
		committed, lag := groupOffsets(t, desc, "tools")
		if committed != 200 || lag != 0 {
			t.Fatalf("--describe: %d committed with lag %d, want 200 and 0:\n%s", committed, lag, desc)
		}
		// Reset to the earliest offsets: a dry run changes nothing, --execute does.
		reset := []string{"--bootstrap-server", boot, "--group", "tools-console", "--reset-offsets", "--to-earliest", "--topic", "tools"}
		kafkaTool(t, "", kafkaConsumerGroups, append(reset, "--dry-run")...)
		if c, _ := groupOffsets(t, kafkaTool(t, "", kafkaConsumerGroups, "--bootstrap-server", boot, "--describe", "--group", "tools-console"), "tools"); c != 200 {
			t.Fatalf("a dry run changed the offsets: %d committed", c)
		}
		kafkaTool(t, "", kafkaConsumerGroups, append(reset, "--execute")...)
		desc = kafkaTool(t, "", kafkaConsumerGroups, "--bootstrap-server", boot, "--describe", "--group", "tools-console")
		if c, l := groupOffsets(t, desc, "tools"); c != 0 || l != 200 {
			t.Fatalf("after --reset-offsets --to-earliest: %d committed, lag %d:\n%s", c, l, desc)
		}
		kafkaTool(t, "", kafkaConsumerGroups, "--bootstrap-server", boot, "--group", "tools-console", "--reset-offsets",
			"--shift-by", "5", "--topic", "tools:0", "--execute")
		desc = kafkaTool(t, "", kafkaConsumerGroups, "--bootstrap-server", boot, "--describe", "--group", "tools-console")
		if c, _ := groupOffsets(t, desc, "tools"); c != 5 {
			t.Fatalf("after --shift-by 5 on partition 0: %d committed:\n%s", c, desc)
		}
		kafkaTool(t, "", kafkaConsumerGroups, "--bootstrap-server", boot, "--delete", "--group", "tools-console")
		if list := kafkaTool(t, "", kafkaConsumerGroups, "--bootstrap-server", boot, "--list"); slicesContainsLine(list, "tools-console") {
			t.Fatalf("a deleted group is listed:\n%s", list)
		}
	})

	t.Run("kafka-configs", func(t *testing.T) {
		kafkaTool(t, "", kafkaConfigs, "--bootstrap-server", boot, "--alter", "--entity-type", "topics", "--entity-name", "tools",
			"--add-config", "retention.ms=3600000,max.message.bytes=2000000")
		desc := kafkaTool(t, "", kafkaConfigs, "--bootstrap-server", boot, "--describe", "--entity-type", "topics", "--entity-name", "tools")
		if !strings.Contains(desc, "retention.ms=3600000") || !strings.Contains(desc, "max.message.bytes=2000000") {
			t.Fatalf("--describe after --add-config:\n%s", desc)
		}
		kafkaTool(t, "", kafkaConfigs, "--bootstrap-server", boot, "--alter", "--entity-type", "topics", "--entity-name", "tools",
			"--delete-config", "max.message.bytes")
		desc = kafkaTool(t, "", kafkaConfigs, "--bootstrap-server", boot, "--describe", "--entity-type", "topics", "--entity-name", "tools")
		if strings.Contains(desc, "max.message.bytes=2000000") || !strings.Contains(desc, "retention.ms=3600000") {
			t.Fatalf("--describe after --delete-config:\n%s", desc)
		}
		broker := kafkaTool(t, "", kafkaConfigs, "--bootstrap-server", boot, "--describe", "--entity-type", "brokers", "--entity-name", "1", "--all")
		if !strings.Contains(broker, "All configs for broker 1") || !strings.Contains(broker, "min.insync.replicas=2") {
			t.Fatalf("--describe --all of broker 1:\n%s", tail(broker, 4096))
		}
		// A config Kafka does not know is refused, naming it.
		_, errOut, err := runJavaErr(t, time.Minute, kafkaConfigs, "--bootstrap-server", boot, "--alter", "--entity-type", "topics",
			"--entity-name", "tools", "--add-config", "no.such.config=1")
		if err == nil || !strings.Contains(errOut, "no.such.config") {
			t.Fatalf("an unknown config: %v\n%s", err, errOut)
		}
	})

	t.Run("kafka-get-offsets", func(t *testing.T) {
		latest := parseTopicOffsets(t, kafkaTool(t, "", kafkaGetOffsets, "--bootstrap-server", boot, "--topic", "tools"))
		var total int64
		for _, o := range latest {
			total += o
		}
		if len(latest) != 4 || total != 200 {
			t.Fatalf("latest offsets %v, want 4 partitions holding 200", latest)
		}
		earliest := parseTopicOffsets(t, kafkaTool(t, "", kafkaGetOffsets, "--bootstrap-server", boot, "--topic", "tools", "--time", "earliest"))
		for p, o := range earliest {
			if o != 0 {
				t.Fatalf("earliest offset of partition %d: %d", p, o)
			}
		}
		maxTS := parseTopicOffsets(t, kafkaTool(t, "", kafkaGetOffsets, "--bootstrap-server", boot, "--topic", "tools", "--time", "max-timestamp"))
		for p, o := range maxTS {
			if latest[p] > 0 && (o < 0 || o >= latest[p]) {
				t.Fatalf("max-timestamp offset of partition %d: %d (latest %d)", p, o, latest[p])
			}
		}
	})

	t.Run("kafka-delete-records", func(t *testing.T) {
		latest := parseTopicOffsets(t, kafkaTool(t, "", kafkaGetOffsets, "--bootstrap-server", boot, "--topic", "tools", "--partitions", "0"))
		cut := latest[0] / 2
		if cut == 0 {
			t.Fatalf("partition 0 holds %d records", latest[0])
		}
		js := fmt.Sprintf(`{"version":1,"partitions":[{"topic":"tools","partition":0,"offset":%d}]}`, cut)
		f := filepath.Join(t.TempDir(), "delete.json")
		if err := os.WriteFile(f, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		out := kafkaTool(t, "", kafkaDeleteRecords, "--bootstrap-server", boot, "--offset-json-file", f)
		if !strings.Contains(out, fmt.Sprintf("low_watermark: %d", cut)) {
			t.Fatalf("kafka-delete-records:\n%s", out)
		}
		earliest := parseTopicOffsets(t, kafkaTool(t, "", kafkaGetOffsets, "--bootstrap-server", boot, "--topic", "tools", "--partitions", "0", "--time", "earliest"))
		if earliest[0] != cut {
			t.Fatalf("earliest offset after deleting records: %d, want %d", earliest[0], cut)
		}
	})

	t.Run("perf-tests", func(t *testing.T) {
		kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--create", "--topic", "perf", "--partitions", "3", "--replication-factor", "3")
		out := kafkaTool(t, "", kafkaProducerPerf, "--topic", "perf", "--num-records", "50000", "--record-size", "100",
			"--throughput", "-1", "--producer-props", "bootstrap.servers="+boot, "acks=all")
		t.Logf("kafka-producer-perf-test: %s", lastLine(out))
		if !regexp.MustCompile(`50000 records sent, [\d.]+ records/sec`).MatchString(out) {
			t.Fatalf("kafka-producer-perf-test:\n%s", out)
		}
		out = kafkaTool(t, "", kafkaConsumerPerf, "--bootstrap-server", boot, "--topic", "perf", "--messages", "50000", "--timeout", "60000")
		t.Logf("kafka-consumer-perf-test:\n%s", out)
		// start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, ...
		f := strings.Split(lastLine(out), ",")
		if len(f) < 5 || strings.TrimSpace(f[4]) != "50000" {
			t.Fatalf("kafka-consumer-perf-test consumed %v:\n%s", f, out)
		}
	})

	t.Run("kafka-reassign-partitions", func(t *testing.T) {
		kafkaTool(t, "", kafkaTopics, "--bootstrap-server", boot, "--create", "--topic", "moving", "--replica-assignment", "1,2")
		dir := t.TempDir()
		plan := filepath.Join(dir, "plan.json")
		js := `{"version":1,"partitions":[{"topic":"moving","partition":0,"replicas":[3,2],"log_dirs":["any","any"]}]}`
		if err := os.WriteFile(plan, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		out := kafkaTool(t, "", kafkaReassign, "--bootstrap-server", boot, "--reassignment-json-file", plan, "--execute")
		if !strings.Contains(out, "Successfully started partition reassignment") {
			t.Fatalf("--execute:\n%s", out)
		}
		harness.WaitFor(t, "kafka-reassign-partitions --verify to report it complete", 2*time.Minute, func() error {
			out := kafkaTool(t, "", kafkaReassign, "--bootstrap-server", boot, "--reassignment-json-file", plan, "--verify")
			if !strings.Contains(out, "Reassignment of partition moving-0 is completed") {
				return fmt.Errorf("--verify:\n%s", out)
			}
			return nil
		})
		if got := partitionReplicas(t, adm, "moving", 0); fmt.Sprint(got) != "[3 2]" {
			t.Fatalf("replicas after the reassignment: %v, want [3 2]", got)
		}
		topics := filepath.Join(dir, "topics.json")
		if err := os.WriteFile(topics, []byte(`{"version":1,"topics":[{"topic":"tools"}]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		out = kafkaTool(t, "", kafkaReassign, "--bootstrap-server", boot, "--topics-to-move-json-file", topics,
			"--broker-list", "1,2,3", "--generate")
		if !strings.Contains(out, "Current partition replica assignment") || !strings.Contains(out, "Proposed partition reassignment configuration") {
			t.Fatalf("--generate:\n%s", out)
		}
	})
}

// groupOffsets sums the CURRENT-OFFSET and LAG columns of
// kafka-consumer-groups --describe for a topic.
func groupOffsets(t *testing.T, describe, topic string) (committed, lag int64) {
	t.Helper()
	for _, l := range strings.Split(describe, "\n") {
		f := strings.Fields(l)
		// GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
		if len(f) < 6 || f[1] != topic {
			continue
		}
		c, err1 := strconv.ParseInt(f[3], 10, 64)
		g, err2 := strconv.ParseInt(f[5], 10, 64)
		if err1 != nil || err2 != nil {
			continue // "-": nothing committed
		}
		committed += c
		lag += g
	}
	return committed, lag
}

// parseTopicOffsets reads kafka-get-offsets' "topic:partition:offset" lines.
func parseTopicOffsets(t *testing.T, out string) map[int32]int64 {
	t.Helper()
	m := map[int32]int64{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, ":")
		if len(f) != 3 {
			t.Fatalf("kafka-get-offsets printed %q", l)
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("kafka-get-offsets printed %q", l)
		}
		m[int32(p)] = o
	}
	return m
}

func slicesContainsLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return ls[len(ls)-1]
}
