package test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// TestFailoverFigures measures, over CHRONIK_FIGURES_RUNS runs (default 10),
// the time from SIGKILL of a partition leader to the first acks=all produce
// acknowledged on that partition. It only runs with CHRONIK_FIGURES=1
// (make figures); it reports figures, it asserts only that failover happens.
func TestFailoverFigures(t *testing.T) {
	if os.Getenv("CHRONIK_FIGURES") == "" {
		t.Skip("figures run only with CHRONIK_FIGURES=1")
	}
	runs := 10
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	admin := clusterClient(t, c)
	createTopic(t, admin, "failover", 1, 3)
	var took []time.Duration
	for run := range runs {
		// Kill only a settled leader: every node in the ISR, the catalog
		// agreeing with the node that leads, for longer than a move back to
		// the preferred replica takes.
		var lead int32
		stableSince := time.Now()
		harness.WaitFor(t, "a settled leader with a full ISR", 60*time.Second, func() error {
			l, err := partitionLeader(t, c, "failover", 0)
			if err != nil || fullISR(c.Node(int(l)), "failover") != nil {
				stableSince = time.Now()
				return errNotYet
			}
			if l != lead {
				lead, stableSince = l, time.Now()
			}
			if time.Since(stableSince) < 4*time.Second {
				return errNotYet
			}
			return nil
		})
		cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("failover"),
			kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }), kgo.MetadataMinAge(10*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		c.Node(int(lead)).Kill()
		for {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte("after")}).FirstErr()
			pcancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("run %d: no produce acknowledged within a minute: %v", run, err)
			}
		}
		d := time.Since(killed)
		took = append(took, d)
		t.Logf("run %d: leader %d killed, first acks=all produce after %v", run, lead, d)
		cancel()
		cl.Close()
		c.Node(int(lead)).Start()
	}
	slices.Sort(took)
	t.Logf("FIGURE failover over %d runs: median %v, max %v, min %v", runs, took[len(took)/2], took[len(took)-1], took[0])
}

// fullISR checks that node n leads partition 0 of topic with all three
// replicas in sync (only a leader reports the ISR size).
func fullISR(n *harness.Node, topic string) error {
	m, err := n.Metrics()
	if err != nil {
		return err
	}
	if contains(m, `chronik_raft_isr_size{partition="0",topic="`+topic+`"} 3`) {
		return nil
	}
	return errNotYet
}
