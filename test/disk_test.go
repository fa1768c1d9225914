package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/test/harness"
)

// segmentFiles lists a partition's segment files on node n, oldest first.
func segmentFiles(t *testing.T, n *harness.Node, topic string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(harness.PartitionDir(t, n.DataDir, topic, 0), "*.log"))
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
//  2. A flipped byte inside a sealed segment: the node finds it after it
//     starts (the background scrub reads every log and checks every CRC;
//     opening reads only what follows the saved producer state), reopens
//     the replica, discards the damaged entry and everything after it, and
//     refetches them from the leader, withholding its vote until it holds
//     them again. It never serves the damaged data (reads check every
//     CRC); every replica ends identical and the repaired log scrubs clean.
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
	if !c.Node(fol).WaitLogContains("truncating torn or corrupt tail of the active segment", 10*time.Second) {
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
	// The scrub finds the damage, the replica is reopened, drops the
	// damaged entry and all after it, and refetches them from the leader.
	restarted = time.Now()
	c.Node(fol).Start()
	harness.WaitFor(t, fmt.Sprintf("node %d to report the damage in %s", fol, sealed), 60*time.Second, func() error {
		if !c.Node(fol).LogContains("damaged log: repairing it from the other replicas") || !c.Node(fol).LogContains(filepath.Base(sealed)) {
			return errNotYet
		}
		return nil
	})
	rejoin = waitRejoined(t, c.Cluster, topic, fol)
	harness.WaitFor(t, fmt.Sprintf("node %d to finish its repair", fol), 60*time.Second, func() error {
		if !c.Node(fol).LogContains("log repaired from the other replicas") {
			return errNotYet
		}
		return nil
	})
	t.Logf("FIGURE %s: flipped byte at %s:%d: node %d repaired from the leader, back in a full ISR %v after it was ready (%v after the restart began)",
		t.Name(), filepath.Base(sealed), pos, fol, rejoin, time.Since(restarted))
	w.waitAcked(w.acked()+500, 60*time.Second)
	w.Stop()
	noFailedProduces(t, w)
	checkExactlyOnce(t, c.Cluster, topic, w)

	// Every replica holds the same batches, and the repaired one is clean.
	identicalReplicas(t, c.Cluster, topic, 1)
	st, err := storage.Open(c.Node(fol).DataDir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.OpenLog(harness.PartitionLog(t, st, topic, 0), storage.DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	if damage := l.Scrub(); len(damage) != 0 {
		t.Fatalf("node %d still has damage after its repair: %v", fol, damage)
	}
	if ru := l.RepairUntil(); ru != 0 {
		t.Fatalf("node %d still records a repair until index %d", fol, ru)
	}
}

// fillDisk fills the file system of dir: a ballast file takes every byte,
// and empty files every inode left, so that neither an append nor a new
// file (a checkpoint's temporary file) fits, even when a failed write gives
// a page back. It returns the function that frees it all.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	ballast := filepath.Join(dir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	// Large writes first, then ever smaller ones, until not a byte fits.
	for size := 64 << 10; size > 0; size /= 2 {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				break // ENOSPC
			}
		}
	}
	f.Close()
	fillers := filepath.Join(dir, "inodes")
	if err := os.Mkdir(fillers, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		g, err := os.Create(filepath.Join(fillers, strconv.Itoa(i)))
		if err != nil {
			break // no inode left
		}
		g.Close()
	}
	return func() {
		if err := os.RemoveAll(fillers); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(ballast); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDiskFullCluster: one node's disk fills while the cluster takes writes,
// and leadership moves meanwhile, so that node must record new raft terms
// (its hard state, in the checkpoint) and cannot. Its logs must not fail:
// they wait. The other two go on as a quorum; once space is freed the node
// catches up by itself, without a restart, and nothing acknowledged is
// lost. A failed checkpoint write used to fail every log whose term had
// changed, for good.
func TestDiskFullCluster(t *testing.T) {
	const topic = "full-cluster"
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	full := c.Node(3)
	mountTmpfs(t, full.DataDir, "96m,nr_inodes=4096")
	c.Start()
	cl := clusterClient(t, c)
	createTopic(t, cl, topic, 3, 3)
	for p := range int32(3) {
		waitAdminFullISR(t, c, topic, p)
	}
	w := startWorkload(t, c, topic, "f", 5*time.Millisecond, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	w.waitAcked(200, 60*time.Second)

	free := fillDisk(t, full.DataDir)
	harness.WaitFor(t, "node 3 to find its disk full", 60*time.Second, func() error {
		if !full.LogContains("disk full") {
			return errNotYet
		}
		return nil
	})
	// Leadership moves to nodes 1 and 2: a new term for every partition,
	// which node 3 must write down and cannot.
	ctx := harness.Context(t, time.Minute)
	for p := range int32(3) {
		lead, err := partitionLeader(t, c, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		to := uint64(1 + int(lead)%2) // 1 -> 2, 2 -> 1, 3 -> 1
		if lead == 1 {
			to = 2
		}
		if _, err := adminClient(c.Node(int(lead))).TransferLeader(ctx, topic, p, to); err != nil {
			t.Logf("moving %s/%d from node %d to %d: %v (raft may already have moved it)", topic, p, lead, to, err)
		}
	}
	w.waitAcked(w.acked()+300, 60*time.Second)
	if !full.LogContains("checkpoint failed") {
		t.Error("node 3 never failed to write its checkpoint: the test did not exercise a full disk during an election")
	}

	free()
	freed := time.Now()
	for p := range int32(3) {
		waitAdminFullISR(t, c, topic, p)
	}
	harness.WaitFor(t, "node 3 to hold every partition's records", 60*time.Second, func() error {
		for p := range int32(3) {
			lead, err := partitionLeader(t, c, topic, p)
			if err != nil {
				return err
			}
			want := metricValue(c.Node(int(lead)), part(topic, p, "chronik_log_high_watermark"))
			if got := metricValue(full, part(topic, p, "chronik_log_end_offset")); got < want {
				return fmt.Errorf("partition %d: node 3 ends at %d, the leader's high watermark is %d", p, got, want)
			}
		}
		return nil
	})
	t.Logf("FIGURE %s: node 3 caught up %v after its disk had space again", t.Name(), time.Since(freed))
	if full.LogContains("raft group failed") {
		t.Error("a raft group of node 3 failed over the full disk")
	}
	for p := range int32(3) {
		if v := metricValue(full, part(topic, p, "chronik_partition_storage_failed")); v != 0 {
			t.Errorf("partition %d failed on node 3", p)
		}
	}
	w.waitAcked(w.acked()+200, 60*time.Second)
	w.Stop()
	checkExactlyOnce(t, c, topic, w)
	identicalReplicas(t, c, topic, 3)
}
