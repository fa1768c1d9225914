package test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// metadataVoters asks node n which nodes vote in the metadata group.
func metadataVoters(n *harness.Node) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := adminClient(n).Cluster(ctx)
	if err != nil {
		return nil, err
	}
	var voters []uint64
	for _, ns := range st.Nodes {
		if ns.MetadataVoter {
			voters = append(voters, ns.ID)
		}
	}
	return voters, nil
}

// TestNodesJoinARunningCluster starts a one-node cluster with a topic, and
// two more nodes whose configurations name it: they join (the first
// node's configuration never names them), the metadata group grows to
// three voters, the topic's replication factor goes from one to three by
// reassignment, and the cluster then survives the first node's death: the
// catalog keeps its quorum and the partition a leader with every record.
func TestNodesJoinARunningCluster(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 1})
	c.Start()
	const topic = "grow"
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, topic, 1, 1)
	produceN(t, cl, topic, 0, "before", 100)

	for range 2 {
		n := c.NewJoiningNode()
		n.Start()
		if !n.LogContains("joining the running cluster") {
			t.Fatalf("node %d started without joining the running cluster", n.ID)
		}
	}
	if !c.Node(1).LogContains("added a member to the metadata group as a learner") {
		t.Fatal("node 1 never added a member to the metadata group")
	}
	harness.WaitFor(t, "three metadata voters", 30*time.Second, func() error {
		for _, n := range c.Nodes {
			v, err := metadataVoters(n)
			if err != nil {
				return err
			}
			if !slices.Equal(v, []uint64{1, 2, 3}) {
				return fmt.Errorf("node %d: voters %v", n.ID, v)
			}
		}
		return nil
	})

	adm := kadm.NewClient(clusterClient(t, c))
	reassign(t, adm, topic, []int32{1, 2, 3})
	waitReassigned(t, c, adm, topic, []int32{1, 2, 3})
	produceN(t, cl, topic, 0, "grown", 100)

	c.Node(1).Kill()
	// The catalog changes without node 1: two of its three voters remain.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	survivors := kadm.NewClient(franzClient(t, c.Node(2).Addr(), kgo.RetryTimeout(30*time.Second)))
	harness.WaitFor(t, "a topic created without node 1", time.Minute, func() error {
		res, err := survivors.CreateTopic(ctx, 1, 2, nil, "after")
		if err == nil && res.Err != nil && !errors.Is(res.Err, kerr.TopicAlreadyExists) {
			err = res.Err
		}
		return err
	})
	got := readFromStart(t, []string{c.Node(2).Addr(), c.Node(3).Addr()}, topic)
	if len(got) != 200 || *got[0].Value != "before-0" || *got[199].Value != "grown-99" {
		t.Fatalf("after node 1 died the partition serves %d records", len(got))
	}

	// A joined node restarts as a member (its catalog is on its disk).
	if err := c.Node(2).Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.Node(1).Start()
	c.Node(2).Start()
	if c.Node(2).LogContains("joining the running cluster") {
		t.Fatal("node 2 joined again after a restart")
	}
}
