package test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/bench"
	"github.com/chronik-stream/chronik/test/harness"
)

// The sustained-load command against a real node: a short run at a low
// rate must read back every acknowledged message exactly once and report
// the server's resident memory at start and end.
func TestBenchSustainedZeroLoss(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	ctx := harness.Context(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, harness.Binary(t), "bench", "sustained",
		"--bootstrap", n.Addr(), "--metrics-addrs", n.HTTPAddr(),
		"--duration", "5s", "--rate", "2000", "--interval", "1s", "--partitions", "2", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench sustained: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var r bench.SustainedResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decode result: %v\n%s", err, stdout.String())
	}
	d := r.Delivery
	// 5 s at 2000 msgs/s: 10001 messages at most (message 0 goes at t=0).
	if d.Acknowledged < 9000 || !d.OK() || d.Consumed < d.Acknowledged {
		t.Fatalf("delivery: %+v (produce %+v)", d, r.Produce)
	}
	if len(r.Intervals) < 3 {
		t.Fatalf("want an interval line a second, got %d: %+v", len(r.Intervals), r.Intervals)
	}
	if len(r.RSS) != 1 || r.RSS[0].Error != "" || r.RSS[0].StartBytes <= 0 || r.RSS[0].EndBytes <= 0 {
		t.Fatalf("rss: %+v", r.RSS)
	}
	if !bytes.Contains(stderr.Bytes(), []byte("msgs/s (target 2000)")) {
		t.Fatalf("no interval lines on stderr:\n%s", stderr.String())
	}
}
