package test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// TestFollowerBehindLogStartInstallsSnapshot stops a follower, writes, and
// deletes records the follower never fetched (DeleteRecords removes the
// segments that held them on the other replicas), then restarts it: the
// leader sends a snapshot of its log's start, the follower restarts its
// log there, catches up, takes the leader's log start, and, made leader,
// serves every record from there.
func TestFollowerBehindLogStartInstallsSnapshot(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3, ExtraConfig: noPreferredLeaders})
	c.Start()
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), smallBatches)
	const topic = "behind"
	ctx := harness.Context(t, 3*time.Minute)
	segment := "16384"
	if res, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, map[string]*string{"segment.bytes": &segment}, topic); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	lead := waitAdminFullISR(t, c, topic, 0)
	leader := c.Node(int(lead))
	follower := c.Node(int(lead%3) + 1)
	if err := follower.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop node %d: %v", follower.ID, err)
	}
	produceN(t, cl, topic, 0, "before", 2000)
	dr, err := kadm.NewClient(cl).DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 1500}}})
	if err != nil || dr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, dr.Error())
	}
	produceN(t, cl, topic, 0, "after", 500)
	lp, err := partitionOn(leader, topic, 0)
	if err != nil {
		t.Fatal(err)
	}

	follower.Start()
	harness.WaitFor(t, fmt.Sprintf("node %d to catch up past the leader's log start", follower.ID), time.Minute, func() error {
		fp, err := partitionOn(follower, topic, 0)
		if err != nil {
			return err
		}
		lp, err = partitionOn(leader, topic, 0)
		if err != nil {
			return err
		}
		if fp.LogEnd != lp.LogEnd || fp.HighWatermark != lp.HighWatermark || !slices.Contains(lp.ISR, uint64(follower.ID)) {
			return fmt.Errorf("follower at %d/%d, leader at %d/%d, ISR %v", fp.HighWatermark, fp.LogEnd, lp.HighWatermark, lp.LogEnd, lp.ISR)
		}
		return nil
	})
	if !leader.LogContains("sending a snapshot of the log's start") || !follower.LogContains("restarted the log from the leader's snapshot") {
		t.Fatal("the follower caught up without a snapshot: the test did not put it behind the leader's log start")
	}
	harness.WaitFor(t, fmt.Sprintf("node %d to take the leader's log start", follower.ID), 30*time.Second, func() error {
		if v := metricValue(follower, fmt.Sprintf(`chronik_log_start_offset{partition="0",topic="%s"}`, topic)); v != 1500 {
			return fmt.Errorf("log start %d", v)
		}
		return nil
	})
	if _, err := adminClient(leader).TransferLeader(ctx, topic, 0, uint64(follower.ID)); err != nil {
		t.Fatalf("move the leadership to node %d: %v", follower.ID, err)
	}
	waitLeaderIs(t, c, topic, 0, int32(follower.ID))
	got := readCompacted(t, c.Addrs(), topic)
	if len(got) != 1000 || got[0].Offset != 1500 {
		t.Fatalf("node %d serves %d records from offset %d, want 1000 from 1500", follower.ID, len(got), got[0].Offset)
	}
	for i, r := range got {
		want := fmt.Sprintf("before-%d", 1500+i)
		if i >= 500 {
			want = fmt.Sprintf("after-%d", i-500)
		}
		if r.Value == nil || *r.Value != want || r.Offset != int64(1500+i) {
			t.Fatalf("record %d: %v, want %s at offset %d", i, r, want, 1500+i)
		}
	}
}
