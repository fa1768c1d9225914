package test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// TestFollowerBehindLogStartInstallsSnapshot stops a follower, writes, and
// removes records the follower never fetched (DeleteRecords, or retention
// deleting the segments that held them on the other replicas), then
// restarts it: the leader sends a snapshot of its log's start, the
// follower restarts its log there, catches up, takes the leader's log
// start, and, made leader, serves every record from there.
func TestFollowerBehindLogStartInstallsSnapshot(t *testing.T) {
	for _, how := range []string{"delete records", "retention"} {
		t.Run(how, func(t *testing.T) { followerBehindLogStart(t, how == "retention") })
	}
}

func followerBehindLogStart(t *testing.T, retention bool) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3, ExtraConfig: noPreferredLeaders,
		Env: []string{"CHRONIK_KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS=200"}})
	c.Start()
	// franz-go reports data loss when a partition refuses a producer's next
	// sequence with OUT_OF_ORDER_SEQUENCE_NUMBER (and then starts over).
	var lost atomic.Bool
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), smallBatches,
		kgo.ProducerOnDataLossDetected(func(string, int32) { lost.Store(true) }))
	const topic = "behind"
	ctx := harness.Context(t, 3*time.Minute)
	s := func(v string) *string { return &v }
	configs := map[string]*string{"segment.bytes": s("2048")}
	if retention {
		configs["retention.ms"] = s("600000")
	}
	if res, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, configs, topic); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	lead := waitAdminFullISR(t, c, topic, 0)
	leader := c.Node(int(lead))
	follower := c.Node(int(lead%3) + 1)
	if err := follower.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop node %d: %v", follower.ID, err)
	}
	// Records an hour old: past retention.ms when retention applies. The
	// first producer's batches are all in segments that go: only the
	// snapshot's producer table can tell the follower where its sequence
	// stands.
	old := time.Now().Add(-time.Hour)
	produceAt(t, cl, topic, "before", 2000, old)
	other := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), smallBatches)
	produceAt(t, other, topic, "mid", 500, old)
	var start int64
	if retention {
		harness.WaitFor(t, "retention to delete the old segments", time.Minute, func() error {
			if start = metricValue(leader, fmt.Sprintf(`chronik_log_start_offset{partition="0",topic="%s"}`, topic)); start < 2100 {
				return fmt.Errorf("log start %d", start)
			}
			return nil
		})
	} else {
		start = 2300
		dr, err := kadm.NewClient(cl).DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: start}}})
		if err != nil || dr.Error() != nil {
			t.Fatalf("delete records: %v %v", err, dr.Error())
		}
	}
	produceAt(t, other, topic, "after", 500, time.Now())

	follower.Start()
	waitCaughtUp(t, leader, follower, topic)
	if !leader.LogContains("sending a snapshot of the log's start") || !follower.LogContains("restarted the log from the leader's snapshot") {
		t.Fatal("the follower caught up without a snapshot: the test did not put it behind the leader's log start")
	}
	if v := metricValue(follower, "chronik_raft_snapshot_count"); v < 1 {
		t.Fatalf("chronik_raft_snapshot_count on the follower = %d after installing one", v)
	}
	harness.WaitFor(t, fmt.Sprintf("node %d to take the leader's log start %d", follower.ID, start), 30*time.Second, func() error {
		if v := metricValue(follower, fmt.Sprintf(`chronik_log_start_offset{partition="0",topic="%s"}`, topic)); v != start {
			return fmt.Errorf("log start %d", v)
		}
		return nil
	})
	if _, err := adminClient(leader).TransferLeader(ctx, topic, 0, uint64(follower.ID)); err != nil {
		t.Fatalf("move the leadership to node %d: %v", follower.ID, err)
	}
	waitLeaderIs(t, c, topic, 0, int32(follower.ID))
	// The first producer goes on with its sequence on the new leader.
	produceAt(t, cl, topic, "late", 10, time.Now())
	if lost.Load() {
		t.Fatal("the new leader refused the first producer's next sequence: the snapshot did not bring its state")
	}
	got := readFromStart(t, c.Addrs(), topic)
	if n := len(got); n < 10 || got[n-1].Value == nil || *got[n-1].Value != "late-9" {
		t.Fatalf("the first producer's writes after the snapshot are not there: %d records", n)
	}
	got = got[:len(got)-10]
	if int64(len(got)) != 3000-start || got[0].Offset != start {
		t.Fatalf("node %d serves %d records from offset %d, want %d from %d", follower.ID, len(got), got[0].Offset, 3000-start, start)
	}
	for i, r := range got {
		off := start + int64(i)
		want := fmt.Sprintf("before-%d", off)
		switch {
		case off >= 2500:
			want = fmt.Sprintf("after-%d", off-2500)
		case off >= 2000:
			want = fmt.Sprintf("mid-%d", off-2000)
		}
		if r.Value == nil || *r.Value != want || r.Offset != off {
			t.Fatalf("record %d: %v, want %s at offset %d", i, r, want, off)
		}
	}
}

// produceAt writes n records prefix-0 .. prefix-<n-1> to partition 0 of
// topic, in order, with timestamp ts.
func produceAt(t *testing.T, cl *kgo.Client, topic, prefix string, n int, ts time.Time) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%s-%d", prefix, i), Timestamp: ts})
	}
	if err := cl.ProduceSync(harness.Context(t, time.Minute), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}
