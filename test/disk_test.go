package test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/test/harness"
)

// segmentFiles lists a partition's segment files on node n, oldest first.
func segmentFiles(t *testing.T, n *harness.Node, topic string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(n.DataDir, topic+"-0", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// TestChaosDiskFaults: a stopped follower's data is damaged and it is
// restarted.
//
//  1. Garbage appended to its active segment: on restart the torn tail is
//     truncated (the log says so), raft refills the follower from the
//     leader, and every replica ends byte-identical.
//  2. A flipped byte inside a sealed segment: the node detects it on
//     start (rebuilding the idempotent producer state reads the log and
//     checks every CRC) and exits, naming the segment, instead of serving
//     it; the other two nodes keep serving correct data; a scrub of that
//     log names the damage and a read stops before it. It is not repaired:
//     the node stays down until an operator acts (docs/fault-tolerance.md,
//     "Not yet covered").
func TestChaosDiskFaults(t *testing.T) {
	const topic = "chaos-disk"
	c := newChaos(t, "", topic, 1, map[string]*string{"segment.bytes": kmsg.StringPtr("16384")})
	lead := waitFullISR(t, c.Cluster, topic, 0, 3)
	fol := 1 + lead%3
	w := startWorkload(t, c.Cluster, topic, "d", 2*time.Millisecond)
	w.waitAcked(1500, 60*time.Second)

	// 1. Garbage tail on the active segment.
	if err := c.Node(fol).Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, c.Node(fol), topic)
	if len(segs) < 3 {
		t.Fatalf("node %d has %d segments, want several", fol, len(segs))
	}
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(strings.Repeat("\x00\x00\x01\x00garbage!", 64))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	restarted := time.Now()
	c.Node(fol).Start()
	if !c.Node(fol).LogContains("truncating torn or corrupt tail of the active segment") {
		t.Fatalf("node %d did not notice the garbage tail:\n%s", fol, c.Node(fol).Log())
	}
	rejoin := waitRejoined(t, c.Cluster, topic, fol)
	t.Logf("FIGURE %s: garbage tail truncated on restart; node %d back in a full ISR %v after it was ready (%v after the restart began)",
		t.Name(), fol, rejoin, time.Since(restarted))
	w.waitAcked(w.acked()+500, 60*time.Second)

	// 2. A flipped byte in the middle of the oldest sealed segment.
	if err := c.Node(fol).Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	sealed := segmentFiles(t, c.Node(fol), topic)[0]
	b, err := os.ReadFile(sealed)
	if err != nil {
		t.Fatal(err)
	}
	pos := len(b) / 2
	b[pos] ^= 0x40
	if err := os.WriteFile(sealed, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// The node finds the damage when it rebuilds the partition's producer
	// state from the log, and refuses to start, naming the segment.
	c.Node(fol).StartNoWait()
	exit, exited := c.Node(fol).WaitExit(30 * time.Second)
	if !exited || exit == nil {
		t.Fatalf("node %d started on a damaged sealed segment (exited %v: %v)", fol, exited, exit)
	}
	if !c.Node(fol).LogContains("corrupt log data in " + sealed) {
		t.Fatalf("node %d exited (%v) without naming the damaged segment:\n%s", fol, exit, c.Node(fol).Log())
	}
	// The other two carry on.
	w.waitAcked(w.acked()+500, 60*time.Second)
	w.Stop()
	noFailedProduces(t, w)
	// The leader serves everything, correct.
	checkExactlyOnce(t, c.Cluster, topic, w)

	for _, n := range c.Running() {
		if err := n.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	st, err := storage.Open(c.Node(fol).DataDir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.OpenLog(topic+"-0", storage.DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	damage := l.Scrub()
	if len(damage) != 1 {
		t.Fatalf("scrub of node %d found %d damaged frames, want the one flipped at byte %d of %s: %v", fol, len(damage), pos, sealed, damage)
	}
	var ce *storage.CorruptionError
	if !errors.As(damage[0], &ce) {
		t.Fatalf("scrub: %v", damage[0])
	}
	// Reading that replica from the start stops before the damage, and a
	// read starting at the damaged batch fails: it is never served.
	served := int64(0)
	for served < l.HighWatermark() {
		res, err := l.Read(served, 1<<20, l.HighWatermark(), true)
		if err != nil {
			if !errors.As(err, &ce) {
				t.Fatalf("read at %d: %v", served, err)
			}
			break
		}
		served = res.NextOffset
	}
	if served >= l.HighWatermark() {
		t.Fatalf("node %d served its whole log (%d records) despite the damage in %s", fol, served, sealed)
	}
	t.Logf("FIGURE %s: flipped byte at %s:%d: node %d refused to start (%v); scrub found %v; its reads stop at offset %d of %d; not repaired",
		t.Name(), filepath.Base(sealed), pos, fol, exit, damage[0], served, l.HighWatermark())
}
