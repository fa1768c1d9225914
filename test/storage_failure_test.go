package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/admin"
	"github.com/chronik-stream/chronik/test/harness"
)

// immutable sets or clears the immutable attribute of a directory and the
// files in it: the file system then refuses every write to them (EPERM),
// also through descriptors already open, which is a storage failure the
// process cannot tell from a failing disk. It needs root and a file system
// with attributes (ext4, xfs); CI has both.
func immutable(t *testing.T, dir string, on bool) {
	t.Helper()
	flag := "-i"
	if on {
		flag = "+i"
	}
	if out, err := exec.Command("chattr", "-R", flag, dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr %s %s: %v\n%s (this test needs root and a file system with attributes)", flag, dir, err, out)
	}
}

func readyBody(t *testing.T, n *harness.Node) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPartitionStorageFailure: the leader of a partition can no longer
// write its log. Its replica must not sit dead while it claims to lead:
// it answers KAFKA_STORAGE_ERROR at once, hands its leadership over, shows
// the failure in a metric, in /ready, in the admin API and in raft status,
// logs it at ERROR, and, once the disk takes writes again, reopens by
// itself and catches up. The producer loses nothing acknowledged.
func TestPartitionStorageFailure(t *testing.T) {
	const topic = "sf"
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	cl := clusterClient(t, c)
	createTopic(t, cl, topic, 1, 3)
	lead := int(waitAdminFullISR(t, c, topic, 0))
	w := startWorkload(t, c, topic, "s", 2*time.Millisecond, kgo.RecordRetries(1000))
	w.waitAcked(500, 60*time.Second)

	victim := c.Node(lead)
	dir := harness.PartitionDir(t, victim.DataDir, topic, 0)
	immutable(t, dir, true)
	t.Cleanup(func() { exec.Command("chattr", "-R", "-i", dir).Run() })
	failedAt := time.Now()

	harness.WaitFor(t, fmt.Sprintf("node %d to report %s/0 failed", lead, topic), 30*time.Second, func() error {
		ps, err := partitionOn(victim, topic, 0)
		if err != nil {
			return err
		}
		if ps.Role != admin.RoleFailed || ps.Error == "" {
			return fmt.Errorf("role %s", ps.Role)
		}
		return nil
	})
	newLead := waitLeader(t, c, topic, 0, int32(lead))
	t.Logf("FIGURE %s: node %d's log refused writes; node %d leads %v later", t.Name(), lead, newLead, time.Since(failedAt))

	// Every surface says so.
	if v := metricValue(victim, part(topic, 0, "chronik_partition_storage_failed")); v != 1 {
		t.Errorf("chronik_partition_storage_failed = %d, want 1", v)
	}
	if code, body := readyBody(t, victim); code != 200 || !strings.Contains(body, topic+"/0 failed") {
		t.Errorf("/ready answered %d %q", code, body)
	}
	if out := mustCLI(t, "raft", "status", "--admin-addr", victim.HTTPAddr()); !strings.Contains(out, "Failed") || !strings.Contains(out, topic+"/0 failed:") {
		t.Errorf("raft status does not show the failure:\n%s", out)
	}
	if !victim.WaitLogContains("raft group failed", 10*time.Second) || !victim.LogContains("level=ERROR") {
		t.Error("the failure was not logged at ERROR")
	}

	// The failed replica answers at once, with the storage error.
	direct := franzClient(t, victim.Addr())
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 30000
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: oneRecordBatch()}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	broker := direct.Broker(lead)
	resp, err := broker.Request(ctx, prod)
	if err != nil {
		t.Fatalf("produce to the failed replica: %v (it must answer, not time out)", err)
	}
	wantCode(t, "produce to the failed replica", resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode, kerr.KafkaStorageError)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MaxBytes = 5000, 1<<20
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
	fr, err := broker.Request(ctx, fetch)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "fetch from the failed replica", fr.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode, kerr.KafkaStorageError)

	// Production goes on through the new leader.
	w.waitAcked(w.acked()+500, 60*time.Second)

	// The disk takes writes again: the replica reopens by itself.
	immutable(t, dir, false)
	healed := time.Now()
	harness.WaitFor(t, fmt.Sprintf("node %d to reopen %s/0", lead, topic), 60*time.Second, func() error {
		ps, err := partitionOn(victim, topic, 0)
		if err != nil {
			return err
		}
		if ps.Role == admin.RoleFailed {
			return fmt.Errorf("still failed: %s", ps.Error)
		}
		return nil
	})
	rejoin := waitRejoined(t, c, topic, lead)
	t.Logf("FIGURE %s: after the disk healed node %d reopened and was back in the ISR in %v", t.Name(), lead, time.Since(healed)+rejoin)
	if v := metricValue(victim, part(topic, 0, "chronik_partition_storage_failed")); v != 0 {
		t.Errorf("chronik_partition_storage_failed = %d after recovery, want 0", v)
	}
	w.waitAcked(w.acked()+300, 60*time.Second)
	w.Stop()
	checkExactlyOnce(t, c, topic, w)
	identicalReplicas(t, c, topic, 1)
}
