package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chronik-stream/chronik/internal/admin"
)

func TestTableWrite(t *testing.T) {
	tb := newTable("TOPIC", "PARTITION", "REPLICAS", "ISR", "LEADER", "OK")
	tb.add("orders", int32(0), []uint64{1, 2, 3}, []int32{1, 3}, "", true)
	tb.add("a-much-longer-topic", int32(12), []uint64(nil), []int32{}, "2", false)
	var b bytes.Buffer
	if err := tb.write(&b); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"TOPIC                PARTITION  REPLICAS  ISR  LEADER  OK\n" +
		"orders               0          1,2,3     1,3  -       yes\n" +
		"a-much-longer-topic  12         -         -    2       no\n"
	if b.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestParseOutputFormat(t *testing.T) {
	for in, want := range map[string]outputFormat{"table": outputTable, "JSON": outputJSON, " json ": outputJSON} {
		if got, err := parseOutputFormat(in); err != nil || got != want {
			t.Errorf("parseOutputFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yaml", "tables"} {
		if _, err := parseOutputFormat(in); err == nil {
			t.Errorf("parseOutputFormat(%q) accepted", in)
		}
	}
}

func TestNormalizeAdminAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"localhost:8080", "localhost:8080"},
		{":8081", "localhost:8081"},
		{"http://node2:8081/", "node2:8081"},
		{"[::1]:8080", "[::1]:8080"},
	} {
		if got, err := normalizeAdminAddr(tc.in); err != nil || got != tc.want {
			t.Errorf("normalizeAdminAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"localhost", "host:port", "host:0", "host:70000", ""} {
		if _, err := normalizeAdminAddr(in); err == nil {
			t.Errorf("normalizeAdminAddr(%q) accepted", in)
		}
	}
}

func TestFollowerLag(t *testing.T) {
	got := followerLag([]admin.FollowerStatus{{ID: 2, LagEntries: 0, InSync: true}, {ID: 3, LagEntries: 15}})
	if got != "2:0 3:15!" {
		t.Fatalf("followerLag = %q", got)
	}
	if got := followerLag(nil); got != "-" {
		t.Fatalf("followerLag(nil) = %q", got)
	}
}

func TestParseConfigs(t *testing.T) {
	got, err := parseConfigs("config", []string{"retention.ms=1000", "cleanup.policy=compact", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || *got["retention.ms"] != "1000" || *got["empty"] != "" {
		t.Fatalf("parseConfigs: %v", got)
	}
	for _, bad := range []string{"novalue", "=x"} {
		if _, err := parseConfigs("config", []string{bad}); err == nil {
			t.Errorf("parseConfigs(%q) accepted", bad)
		}
	}
}

// execute runs the root command with args and returns stdout, the error
// and the exit code main would use.
func execute(args ...string) (string, error, int) {
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	code := 0
	if err != nil {
		code = exitCode(err)
	}
	return out.String(), err, code
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"raft", "step-down", "--topic", "x"}, "--topic and --partition go together"},
		{[]string{"raft", "step-down", "--partition", "1"}, "--topic and --partition go together"},
		{[]string{"raft", "transfer-leader", "--to", "2"}, "--topic and --partition are required"},
		{[]string{"raft", "transfer-leader", "--topic", "t", "--partition", "0", "--to", "0"}, "--to must be a node id"},
		{[]string{"raft", "transfer-leader", "--topic", "t", "--partition", "-1"}, "must be 0 or more"},
		{[]string{"raft", "status", "--node-id", "0"}, "--node-id must be a node id"},
		{[]string{"raft", "status", "extra"}, "takes no arguments"},
		{[]string{"cluster", "status", "-o", "yaml"}, "want table or json"},
		{[]string{"cluster", "status", "--admin-addr", "nohost"}, "want host:port"},
		{[]string{"cluster", "status", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"topic", "create"}, "takes a topic name"},
		{[]string{"topic", "create", "a", "b"}, "takes a topic name (got 2 arguments)"},
		{[]string{"topic", "create", "t", "--partitions", "0"}, "--partitions 0"},
		{[]string{"topic", "create", "t", "--replication-factor", "0"}, "--replication-factor 0"},
		{[]string{"topic", "create", "t", "--config", "novalue"}, "want key=value"},
		{[]string{"bench", "produce", "--topic-config", "novalue"}, `--topic-config "novalue": want key=value`},
		{[]string{"bench", "sustained", "--topic-config", "=1"}, `--topic-config "=1": want key=value`},
		{[]string{"topic", "describe"}, "one or more topic names"},
		{[]string{"group", "describe"}, "one or more group names"},
		{[]string{"topic", "list", "--bootstrap", " , "}, "at least one host:port"},
		{[]string{"raft", "status", "--no-such-flag"}, "unknown flag"},
	} {
		_, err, code := execute(tc.args...)
		if err == nil || code != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: exit %d, err %v; want exit 2 and %q", tc.args, code, err, tc.want)
		}
	}
}

// fakeAdmin serves a cluster of two nodes whose node 2 is this server.
func fakeAdmin(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/cluster", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(admin.ClusterStatus{ClusterID: "c1", NodeID: 1, Mode: "cluster", MetadataLeader: 1, MetadataTerm: 4,
			Nodes: []admin.NodeStatus{
				{ID: 1, KafkaAddr: "h1:9092", AdminAddr: "127.0.0.1:1", State: "alive", Live: true, MetadataLeader: true, MetadataVoter: true, AnsweringNode: true},
				{ID: 2, KafkaAddr: "h2:9093", AdminAddr: srv.Listener.Addr().String(), State: "unreachable", MetadataVoter: true},
			}})
	})
	mux.HandleFunc("GET /admin/partitions", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(admin.PartitionsStatus{NodeID: 2, Partitions: []admin.PartitionStatus{
			{Topic: "orders", Partition: 0, Role: "Leader", Leader: 2, Term: 7, Replicas: []uint64{1, 2}, ISR: []uint64{2},
				Commit: 120, Applied: 119, Followers: []admin.FollowerStatus{{ID: 1, LagEntries: 40}}},
			{Topic: "other", Partition: 3, Role: "Follower", Term: 2, Replicas: []uint64{1, 2}, ISR: []uint64{}},
		}})
	})
	mux.HandleFunc("POST /admin/partitions/{topic}/{partition}/transfer-leader", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(admin.Error{Message: "node 2 does not lead orders/0; its leader is node 1", Leader: 1, LeaderAdminAddr: "127.0.0.1:1"})
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestClusterAndRaftStatusOutput(t *testing.T) {
	srv := fakeAdmin(t)
	addr := srv.Listener.Addr().String()

	out, err, _ := execute("cluster", "status", "--admin-addr", addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Cluster c1 (cluster), as node 1 sees it; metadata leader: node 1 (term 4)",
		"1*    h1:9092  127.0.0.1:1",
		"unreachable",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("cluster status lacks %q:\n%s", want, out)
		}
	}

	out, err, _ = execute("raft", "status", "--admin-addr", addr, "--node-id", "2", "--topic", "orders")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "orders  0          Leader  2       7     120     119      1,2       2    1:40!") || strings.Contains(out, "other") {
		t.Fatalf("raft status table:\n%s", out)
	}

	out, err, _ = execute("raft", "status", "--admin-addr", addr, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ps admin.PartitionsStatus
	if err := json.Unmarshal([]byte(out), &ps); err != nil || len(ps.Partitions) != 2 || ps.Partitions[0].Commit != 120 {
		t.Fatalf("raft status JSON (%v):\n%s", err, out)
	}

	_, err, code := execute("raft", "status", "--admin-addr", addr, "--node-id", "5")
	if code != 2 || err == nil || !strings.Contains(err.Error(), "no such node (nodes 1, 2)") {
		t.Fatalf("--node-id 5: exit %d, %v", code, err)
	}

	// The leader the node names cannot be reached: the error says which
	// node and why.
	_, err, code = execute("raft", "transfer-leader", "--admin-addr", addr, "--topic", "orders", "--partition", "0", "--to", "1")
	if code != 1 || err == nil || !strings.Contains(err.Error(), "node 127.0.0.1:1: connection refused") {
		t.Fatalf("transfer to an unreachable leader: exit %d, %v", code, err)
	}
	_, err, _ = execute("raft", "step-down", "--admin-addr", addr, "--topic", "orders", "--partition", "0")
	if err == nil || !strings.Contains(err.Error(), "node "+addr+": node 2 does not lead orders/0; its leader is node 1 (its admin address is 127.0.0.1:1)") {
		t.Fatalf("step-down of a partition led elsewhere: %v", err)
	}
}
