package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLivenessSteadyOverSlowLinks: with slow raft links (every message
// 200 ms late, as on a loaded machine) every node stays live in Metadata
// and every partition keeps its leader there. The metadata leader once
// judged liveness from raft's recently-active flags, which check-quorum
// clears every election timeout: sampled before the late answers came
// back, brokers flapped out of Metadata and clients lost their leaders.
func TestLivenessSteadyOverSlowLinks(t *testing.T) {
	const topic = "steady"
	c := newChaos(t, "", topic, 3, nil)
	for id := 1; id <= 3; id++ {
		c.Slow(id, 100*time.Millisecond)
	}
	slowed := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	checks := 0
	for time.Since(slowed) < 8*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		md, err := adm.Metadata(ctx, topic)
		cancel()
		if err != nil {
			t.Fatalf("metadata: %v", err)
		}
		if len(md.Brokers) != 3 {
			t.Fatalf("%v after the links slowed, Metadata lists brokers %v", time.Since(slowed), md.Brokers.NodeIDs())
		}
		for p, pd := range md.Topics[topic].Partitions {
			if pd.Leader < 0 {
				t.Fatalf("%v after the links slowed, partition %d has no leader in Metadata (%v)", time.Since(slowed), p, pd.Err)
			}
		}
		checks++
		time.Sleep(100 * time.Millisecond) // the pace of the checks, not a wait for a condition
	}
	for _, n := range c.Nodes {
		for _, line := range strings.Split(n.Log(), "\n") {
			if strings.Contains(line, "live brokers changed") && lineTime(line).After(slowed) {
				t.Errorf("node %d: %s", n.ID, line)
			}
		}
	}
	t.Logf("FIGURE %s: %d Metadata checks over 8 s of 200 ms raft links, every broker live and every partition led", t.Name(), checks)
}

// lineTime parses the time= field of a log line (zero if none).
func lineTime(line string) time.Time {
	i := strings.Index(line, "time=")
	if i < 0 {
		return time.Time{}
	}
	f := strings.Fields(line[i+5:])
	if len(f) == 0 {
		return time.Time{}
	}
	at, _ := time.Parse(time.RFC3339Nano, f[0])
	return at
}
