package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronik-stream/chronik/test/harness"
)

// TestKafkaLeaderElection runs Kafka's kafka-leader-election tool against a
// 3-node cluster whose automatic moves back to preferred leaders are off:
// after node 1 restarts, a preferred election gives it back the
// leadership of the partition it prefers; an unclean election is never
// needed while a partition has a leader.
func TestKafkaLeaderElection(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3,
		Env: []string{"CHRONIK_RAFT_ADVANCED_ENABLE_LEADERSHIP_TRANSFER=false"}})
	c.Start()
	boot := strings.Join(c.Addrs(), ",")
	cl := clusterClient(t, c)
	adm := kadm.NewClient(cl)
	createTopic(t, cl, "elect", 3, 3)
	preferred := partitionReplicas(t, adm, "elect", 0)[0]
	waitLeaderIs(t, c, "elect", 0, preferred)

	c.Node(int(preferred)).Kill()
	moved := waitLeader(t, c, "elect", 0, preferred)
	c.Node(int(preferred)).Start()
	harness.WaitFor(t, "the restarted node back in the ISR of elect/0", time.Minute, func() error {
		ctx := harness.Context(t, 5*time.Second)
		md, err := adm.Metadata(ctx, "elect")
		if err != nil {
			return err
		}
		p := md.Topics["elect"].Partitions[0]
		if len(p.ISR) != 3 {
			return fmt.Errorf("ISR %v", p.ISR)
		}
		return nil
	})
	if l, _ := partitionLeader(t, c, "elect", 0); l != moved {
		t.Fatalf("elect/0 moved from %d to %d by itself: the test needs it to stay", moved, l)
	}

	out := kafkaTool(t, "", kafkaLeaderElection, "--bootstrap-server", boot, "--election-type", "preferred",
		"--topic", "elect", "--partition", "0")
	if !strings.Contains(out, "Successfully completed leader election (PREFERRED) for partitions elect-0") {
		t.Fatalf("preferred election:\n%s", out)
	}
	if l, _ := partitionLeader(t, c, "elect", 0); l != preferred {
		t.Fatalf("after the preferred election elect/0 is led by %d, want %d", l, preferred)
	}
	out = kafkaTool(t, "", kafkaLeaderElection, "--bootstrap-server", boot, "--election-type", "preferred", "--all-topic-partitions")
	if strings.Contains(out, "Successfully completed") {
		t.Fatalf("a second preferred election over every partition elected again:\n%s", out)
	}
	out = kafkaTool(t, "", kafkaLeaderElection, "--bootstrap-server", boot, "--election-type", "unclean",
		"--topic", "elect", "--partition", "1")
	if !strings.Contains(out, "Valid replica already elected for partitions elect-1") {
		t.Fatalf("unclean election of a led partition:\n%s", out)
	}
}
