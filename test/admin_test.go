package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/admin"
	"github.com/chronik-stream/chronik/test/harness"
)

// noPreferredLeaders keeps leaderships where the operator puts them:
// preferred-leader balancing would otherwise move a transferred or
// stepped-down leadership back to its preferred replica after a few
// seconds.
const noPreferredLeaders = "[raft.advanced]\nenable_leadership_transfer = false\n"

func adminClient(n *harness.Node) *admin.Client { return admin.NewClient(n.HTTPAddr(), 10*time.Second) }

// cliResult is what one run of the chronik-server binary printed.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs chronik-server with args and returns its output and exit code.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Binary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run chronik-server %v: %v", args, err)
	}
	return res
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != 0 {
		t.Fatalf("chronik-server %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not the expected JSON (%v):\n%s", err, s)
	}
}

// partitionOn returns node n's view of topic/partition from its admin API.
func partitionOn(n *harness.Node, topic string, p int32) (admin.PartitionStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := adminClient(n).Partitions(ctx)
	if err != nil {
		return admin.PartitionStatus{}, err
	}
	for _, ps := range st.Partitions {
		if ps.Topic == topic && ps.Partition == p {
			return ps, nil
		}
	}
	return admin.PartitionStatus{}, fmt.Errorf("node %d hosts no %s/%d", n.ID, topic, p)
}

// waitAdminFullISR waits until the leader of topic/p reports every replica in
// sync, and returns the leader's id.
func waitAdminFullISR(t *testing.T, c *harness.Cluster, topic string, p int32) uint64 {
	t.Helper()
	var lead uint64
	harness.WaitFor(t, fmt.Sprintf("%s/%d led with all 3 replicas in sync and its followers' lag known", topic, p), 30*time.Second, func() error {
		l, err := partitionLeader(t, c, topic, p)
		if err != nil {
			return err
		}
		ps, err := partitionOn(c.Node(int(l)), topic, p)
		if err != nil {
			return err
		}
		if ps.Role != "Leader" || len(ps.ISR) != 3 || len(ps.Followers) != 2 {
			return fmt.Errorf("node %d: role %s, ISR %v", l, ps.Role, ps.ISR)
		}
		lead = uint64(l)
		return nil
	})
	return lead
}

// TestAdminAPIAndCLI runs the admin API and the operator CLI against a
// real three-node cluster: cluster and partition status, leadership
// transfer (Metadata follows), step-down, the topic and group commands,
// table and JSON output, and errors that name the node.
func TestAdminAPIAndCLI(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3, ExtraConfig: noPreferredLeaders})
	c.Start()
	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "ops", 3, 3)
	for p := range int32(3) {
		waitLeader(t, c, "ops", p, -1)
	}
	produceN(t, cl, "ops", 0, "m", 50)
	n1 := c.Node(1)

	// Cluster status: every node, as node 1 sees it.
	var cs admin.ClusterStatus
	harness.WaitFor(t, "node 1 to see all three nodes alive with a metadata leader", 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if cs, err = adminClient(n1).Cluster(ctx); err != nil {
			return err
		}
		if len(cs.Nodes) != 3 || cs.MetadataLeader == 0 {
			return fmt.Errorf("%+v", cs)
		}
		for i, ns := range cs.Nodes {
			want := c.Nodes[i]
			if ns.ID != uint64(want.ID) || ns.State != admin.StateAlive || ns.AdminAddr != want.HTTPAddr() || ns.KafkaAddr != want.Addr() {
				return fmt.Errorf("node %d: %+v", want.ID, ns)
			}
		}
		return nil
	})
	if cs.ClusterID == "" || cs.Mode != "cluster" || cs.NodeID != 1 {
		t.Fatalf("cluster status: %+v", cs)
	}
	leaders := 0
	for _, ns := range cs.Nodes {
		if ns.MetadataLeader {
			leaders++
			if ns.ID != cs.MetadataLeader {
				t.Fatalf("node %d flagged metadata leader, but the leader is %d", ns.ID, cs.MetadataLeader)
			}
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes flagged metadata leader: %+v", leaders, cs.Nodes)
	}

	// Partitions: the leader and a follower of ops/0 agree.
	lead := waitAdminFullISR(t, c, "ops", 0)
	onLeader, err := partitionOn(c.Node(int(lead)), "ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	if onLeader.Leader != lead || onLeader.Term == 0 || onLeader.Commit == 0 || onLeader.HighWatermark != 50 ||
		len(onLeader.Followers) != 2 || !slices.Equal(onLeader.Replicas, []uint64{1, 2, 3}) {
		t.Fatalf("ops/0 on its leader %d: %+v", lead, onLeader)
	}
	var target uint64
	for _, f := range onLeader.Followers {
		if !f.InSync {
			t.Fatalf("follower %d of ops/0 out of sync with a full ISR: %+v", f.ID, onLeader)
		}
		target = f.ID
	}
	onFollower, err := partitionOn(c.Node(int(target)), "ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	if onFollower.Role != "Follower" || onFollower.Leader != lead || len(onFollower.Followers) != 0 {
		t.Fatalf("ops/0 on follower %d: %+v", target, onFollower)
	}

	// Leadership transfer: refused where it must be, then done.
	ctx := harness.Context(t, 2*time.Minute)
	_, err = adminClient(c.Node(int(target))).TransferLeader(ctx, "ops", 0, target)
	var ne *admin.NodeError
	if !errors.As(err, &ne) || ne.Status != http.StatusConflict || ne.API == nil || ne.API.Leader != lead ||
		ne.API.LeaderAdminAddr != c.Node(int(lead)).HTTPAddr() {
		t.Fatalf("transfer asked of a follower: want 409 naming leader %d, got %v (%+v)", lead, err, ne)
	}
	if _, err = adminClient(c.Node(int(lead))).TransferLeader(ctx, "ops", 0, 9); !errors.As(err, &ne) ||
		ne.Status != http.StatusBadRequest || !strings.Contains(err.Error(), "not a replica") {
		t.Fatalf("transfer to a non-replica: %v", err)
	}
	if _, err = adminClient(n1).TransferLeader(ctx, "nosuchtopic", 0, 2); !errors.As(err, &ne) || ne.Status != http.StatusNotFound {
		t.Fatalf("transfer of an unknown partition: %v", err)
	}
	res, err := adminClient(c.Node(int(lead))).TransferLeader(ctx, "ops", 0, target)
	if err != nil {
		t.Fatal(err)
	}
	if res.Leader != target || res.From != lead || res.Term <= onLeader.Term {
		t.Fatalf("transfer result: %+v", res)
	}
	harness.WaitFor(t, fmt.Sprintf("Metadata to name node %d leader of ops/0", target), 30*time.Second, func() error {
		l, err := partitionLeader(t, c, "ops", 0)
		if err != nil {
			return err
		}
		if uint64(l) != target {
			return fmt.Errorf("Metadata names %d", l)
		}
		return nil
	})

	// The CLI, tables and JSON.
	addr1 := []string{"--admin-addr", n1.HTTPAddr()}
	out := mustCLI(t, append([]string{"cluster", "status"}, addr1...)...)
	if !strings.Contains(out, fmt.Sprintf("metadata leader: node %d", cs.MetadataLeader)) || !strings.Contains(out, "NODE") {
		t.Fatalf("cluster status table:\n%s", out)
	}
	for _, n := range c.Nodes {
		if !strings.Contains(out, n.HTTPAddr()) {
			t.Fatalf("cluster status table lacks node %d (%s):\n%s", n.ID, n.HTTPAddr(), out)
		}
	}
	var csJSON admin.ClusterStatus
	mustJSON(t, mustCLI(t, append([]string{"cluster", "status", "-o", "json"}, addr1...)...), &csJSON)
	if len(csJSON.Nodes) != 3 || csJSON.ClusterID != cs.ClusterID {
		t.Fatalf("cluster status JSON: %+v", csJSON)
	}

	// raft status of another node, found through node 1.
	var rs admin.PartitionsStatus
	mustJSON(t, mustCLI(t, append([]string{"raft", "status", "--node-id", fmt.Sprint(target), "--output", "json"}, addr1...)...), &rs)
	if rs.NodeID != target {
		t.Fatalf("raft status --node-id %d answered by node %d", target, rs.NodeID)
	}
	var sawOps0 bool
	for _, p := range rs.Partitions {
		if p.Topic == "ops" && p.Partition == 0 {
			sawOps0 = p.Role == "Leader" && p.Leader == target
		}
	}
	if !sawOps0 {
		t.Fatalf("raft status of node %d does not show it leading ops/0: %+v", target, rs)
	}
	out = mustCLI(t, append([]string{"raft", "status", "--node-id", fmt.Sprint(target), "--topic", "ops"}, addr1...)...)
	if !strings.Contains(out, "COMMIT") || !strings.Contains(out, "1,2,3") || strings.Count(out, "\nops ") != 3 {
		t.Fatalf("raft status table:\n%s", out)
	}

	// transfer-leader through the CLI, asked of a node that is not the
	// leader: it follows the leader's address.
	out = mustCLI(t, "raft", "transfer-leader", "--admin-addr", c.Node(int(lead)).HTTPAddr(),
		"--topic", "ops", "--partition", "0", "--to", fmt.Sprint(lead))
	if !strings.Contains(out, fmt.Sprintf("moved from node %d to node %d", target, lead)) {
		t.Fatalf("raft transfer-leader:\n%s", out)
	}

	// Topics and groups over Kafka.
	boot := []string{"--bootstrap", strings.Join(c.Addrs(), ",")}
	out = mustCLI(t, append([]string{"topic", "create", "cli-topic", "--partitions", "2", "--replication-factor", "3", "--config", "retention.ms=3600000"}, boot...)...)
	if !strings.Contains(out, "created topic cli-topic (2 partitions, replication factor 3)") {
		t.Fatalf("topic create:\n%s", out)
	}
	var topics []struct {
		Topic      string
		Partitions int
	}
	mustJSON(t, mustCLI(t, append([]string{"topic", "list", "-o", "json"}, boot...)...), &topics)
	if !slices.ContainsFunc(topics, func(x struct {
		Topic      string
		Partitions int
	}) bool {
		return x.Topic == "cli-topic" && x.Partitions == 2
	}) {
		t.Fatalf("topic list: %+v", topics)
	}
	harness.WaitFor(t, "topic describe to show ops/0 with 50 records and a full ISR", 30*time.Second, func() error {
		out := runCLI(t, append([]string{"topic", "describe", "ops", "-o", "json"}, boot...)...)
		if out.code != 0 {
			return fmt.Errorf("exit %d: %s", out.code, out.stderr)
		}
		var rows []struct {
			Partition int32
			Leader    int32
			ISR       []int32
			EndOffset int64 `json:"end_offset"`
		}
		if err := json.Unmarshal([]byte(out.stdout), &rows); err != nil {
			return err
		}
		if len(rows) != 3 || rows[0].Leader != int32(lead) || len(rows[0].ISR) != 3 || rows[0].EndOffset != 50 {
			return fmt.Errorf("%+v", rows)
		}
		return nil
	})
	out = mustCLI(t, append([]string{"topic", "describe", "ops"}, boot...)...)
	if !strings.Contains(out, "LEADER") || strings.Count(out, "\nops ") != 3 {
		t.Fatalf("topic describe table:\n%s", out)
	}

	// A group with committed offsets: 50 records on ops/0, 20 consumed.
	gcl := clusterClient(t, c, kgo.ConsumerGroup("cli-group"), kgo.ConsumeTopics("ops"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < 50 {
		fs := gcl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	var commitErr error
	gcl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"ops": {0: {Epoch: -1, Offset: 20}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			if err == nil {
				for _, tr := range resp.Topics {
					for _, pr := range tr.Partitions {
						if e := kerr.ErrorForCode(pr.ErrorCode); e != nil {
							commitErr = e
						}
					}
				}
			}
		})
	if commitErr != nil {
		t.Fatalf("commit offset 20 of ops/0: %v", commitErr)
	}
	out = mustCLI(t, append([]string{"group", "list"}, boot...)...)
	if !strings.Contains(out, "cli-group") {
		t.Fatalf("group list:\n%s", out)
	}
	var groups []struct {
		Group    string
		TotalLag int64 `json:"total_lag"`
		Offsets  []struct {
			Topic     string
			Partition int32
			Committed int64
			Lag       int64
		}
	}
	mustJSON(t, mustCLI(t, append([]string{"group", "describe", "cli-group", "-o", "json"}, boot...)...), &groups)
	if len(groups) != 1 || groups[0].TotalLag != 30 || !slices.ContainsFunc(groups[0].Offsets, func(o struct {
		Topic     string
		Partition int32
		Committed int64
		Lag       int64
	}) bool {
		return o.Topic == "ops" && o.Partition == 0 && o.Committed == 20 && o.Lag == 30
	}) {
		t.Fatalf("group describe: %+v", groups)
	}
	out = mustCLI(t, append([]string{"group", "describe", "cli-group"}, boot...)...)
	if !strings.Contains(out, "total lag 30") {
		t.Fatalf("group describe table:\n%s", out)
	}
	gcl.Close()
	mustCLI(t, append([]string{"topic", "delete", "cli-topic"}, boot...)...)
	harness.WaitFor(t, "cli-topic gone from topic list", 30*time.Second, func() error {
		if out := mustCLI(t, append([]string{"topic", "list"}, boot...)...); strings.Contains(out, "cli-topic") {
			return errors.New("still listed")
		}
		return nil
	})

	// Step-down: the node leading ops/0 hands over everything it leads. It
	// moves what it leads when asked; a group still electing its first
	// leader (the offsets topic's partitions start with the first group
	// above) could elect it afterwards, so wait until every group settled.
	stepper := c.Node(int(lead))
	harness.WaitFor(t, fmt.Sprintf("every partition on node %d to know its leader", lead), 30*time.Second, func() error {
		md, err := kadm.NewClient(cl).Metadata(ctx, "__consumer_offsets")
		if err != nil {
			return err
		}
		want := len(md.Topics["__consumer_offsets"].Partitions)
		st, err := adminClient(stepper).Partitions(ctx)
		if err != nil {
			return err
		}
		offsets := 0
		for _, p := range st.Partitions {
			if p.Leader == 0 {
				return fmt.Errorf("%s/%d has no leader", p.Topic, p.Partition)
			}
			if p.Topic == "__consumer_offsets" {
				offsets++
			}
		}
		if want == 0 || offsets != want {
			return fmt.Errorf("node %d hosts %d of %d offsets partitions", lead, offsets, want)
		}
		return nil
	})
	var sd admin.StepDownResult
	mustJSON(t, mustCLI(t, "raft", "step-down", "--admin-addr", stepper.HTTPAddr(), "-o", "json"), &sd)
	if sd.NodeID != lead || len(sd.Remaining) != 0 || !slices.ContainsFunc(sd.Moved, func(m admin.TransferResult) bool {
		return m.Topic == "ops" && m.Partition == 0 && m.Leader != lead && m.Leader != 0
	}) {
		t.Fatalf("step-down of node %d: %+v", lead, sd)
	}
	st, err := adminClient(stepper).Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Partitions {
		if p.Role == "Leader" {
			t.Fatalf("node %d still leads %s/%d after stepping down", lead, p.Topic, p.Partition)
		}
	}
	harness.WaitFor(t, fmt.Sprintf("Metadata to name no partition of ops led by node %d", lead), 30*time.Second, func() error {
		for p := range int32(3) {
			l, err := partitionLeader(t, c, "ops", p)
			if err != nil {
				return err
			}
			if uint64(l) == lead {
				return fmt.Errorf("ops/%d still led by %d", p, l)
			}
		}
		return nil
	})
	out = mustCLI(t, "raft", "step-down", "--admin-addr", stepper.HTTPAddr())
	if !strings.Contains(out, fmt.Sprintf("Node %d leads nothing", lead)) {
		t.Fatalf("second step-down:\n%s", out)
	}

	// Errors: bad arguments, and a node that cannot be reached.
	if r := runCLI(t, "raft", "step-down", "--topic", "ops"); r.code != 2 || !strings.Contains(r.stderr, "--topic and --partition go together") {
		t.Fatalf("step-down with --topic alone: exit %d, %s", r.code, r.stderr)
	}
	if r := runCLI(t, append([]string{"cluster", "status", "--output", "yaml"}, addr1...)...); r.code != 2 || !strings.Contains(r.stderr, "want table or json") {
		t.Fatalf("--output yaml: exit %d, %s", r.code, r.stderr)
	}
	down := c.Node(3)
	down.Kill()
	r := runCLI(t, append([]string{"raft", "status", "--node-id", "3"}, addr1...)...)
	if want := fmt.Sprintf("node %s: connection refused", down.HTTPAddr()); r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("raft status of a killed node: exit %d, stderr %q, want it to contain %q", r.code, r.stderr, want)
	}
	free := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r = runCLI(t, "cluster", "status", "--admin-addr", free)
	if want := "node " + free + ": connection refused"; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("cluster status of nothing: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	harness.WaitFor(t, "node 1 to see node 3 unreachable", 30*time.Second, func() error {
		var cs admin.ClusterStatus
		mustJSON(t, mustCLI(t, append([]string{"cluster", "status", "-o", "json"}, addr1...)...), &cs)
		if cs.Nodes[2].State != admin.StateUnreachable {
			return fmt.Errorf("node 3: %+v", cs.Nodes[2])
		}
		return nil
	})
}

// TestAdminAPIStandalone: a single node answers the admin API as a
// cluster of one, and refuses a step-down it cannot do.
func TestAdminAPIStandalone(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	cl := franzClient(t, n.Addr(), kgo.DefaultProduceTopic("solo"))
	defer cl.Close()
	ctx := harness.Context(t, 30*time.Second)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cs, err := adminClient(n).Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Mode != "standalone" || cs.MetadataLeader != 1 || len(cs.Nodes) != 1 || cs.Nodes[0].State != admin.StateAlive ||
		cs.Nodes[0].AdminAddr != n.HTTPAddr() {
		t.Fatalf("cluster status: %+v", cs)
	}
	ps, err := partitionOn(n, "solo", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ps.Role != "Leader" || ps.HighWatermark != 1 || !slices.Equal(ps.ISR, []uint64{1}) {
		t.Fatalf("solo/0: %+v", ps)
	}
	var ne *admin.NodeError
	if _, err := adminClient(n).StepDown(ctx); !errors.As(err, &ne) || ne.Status != http.StatusConflict || !strings.Contains(err.Error(), "standalone") {
		t.Fatalf("step-down of a standalone node: %v", err)
	}
	out := mustCLI(t, "raft", "status", "--admin-addr", n.HTTPAddr())
	if !strings.Contains(out, "__cluster_metadata") || !strings.Contains(out, "solo") {
		t.Fatalf("raft status:\n%s", out)
	}
	resp, err := http.Post("http://"+n.HTTPAddr()+"/admin/nothing", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var e admin.Error
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(e.Message, "no admin endpoint POST /admin/nothing") {
		t.Fatalf("unknown endpoint: %d %+v", resp.StatusCode, e)
	}
}
