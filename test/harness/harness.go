// Package harness runs real chronik-server processes for tests: it builds
// the binary once, starts nodes on free loopback ports with their own data
// directories, and stops, kills, pauses and restarts them.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds chronik-server (once per test process) and returns its path.
// CHRONIK_BINARY overrides it with a prebuilt binary.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("CHRONIK_BINARY"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "chronik-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "chronik-server")
		root := repoRoot()
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/chronik-server")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// RepoRoot returns the repository root.
func RepoRoot() string { return repoRoot() }

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// FreePort returns a TCP port free on loopback now, never the same one
// twice in a test process (a port handed out is not listened on until its
// node starts).
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// Raft ports default to the Kafka port + 100: keep those clear too.
		if !given[p] && !given[p+100] && !given[p-100] {
			given[p] = true
			return p
		}
	}
}

// Node is one chronik-server process.
type Node struct {
	t        testing.TB
	ID       int
	Port     int
	HTTP     int
	RaftPort int
	DataDir  string
	Args     []string // extra arguments after the global flags
	Env      []string

	created time.Time // when NewNode made it; its saved log is newer

	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	exit error
}

// NodeOptions configures a node.
type NodeOptions struct {
	ID      int
	DataDir string   // default: a new temp dir
	Args    []string // subcommand and its flags; default "standalone"
	Env     []string // extra environment (KEY=VALUE)
}

// NewNode prepares (but does not start) a node on free ports.
func NewNode(t testing.TB, o NodeOptions) *Node {
	t.Helper()
	if o.ID == 0 {
		o.ID = 1
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Args == nil {
		o.Args = []string{"standalone"}
	}
	n := &Node{t: t, ID: o.ID, Port: FreePort(t), HTTP: FreePort(t), DataDir: o.DataDir, Args: o.Args, Env: o.Env, created: time.Now()}
	t.Cleanup(func() {
		n.Kill()
		n.saveLogIfFailed()
	})
	return n
}

// Addr is the node's Kafka address.
func (n *Node) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }

// HTTPAddr is the node's metrics/health address.
func (n *Node) HTTPAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.HTTP) }

// Start launches the process and waits until /ready answers.
func (n *Node) Start() {
	n.t.Helper()
	n.StartNoWait()
	n.WaitReady(30 * time.Second)
}

// StartNoWait launches the process.
func (n *Node) StartNoWait() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	args := []string{
		"--node-id", strconv.Itoa(n.ID),
		"--advertised-addr", n.Addr(),
		"--data-dir", n.DataDir,
		"--metrics-addr", n.HTTPAddr(),
	}
	args = append(args, n.Args...)
	cmd := exec.Command(Binary(n.t), args...)
	cmd.Env = append(os.Environ(), "CHRONIK_LOG_LEVEL=debug", "CHRONIK_KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=0")
	cmd.Env = append(cmd.Env, n.Env...)
	n.log = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start node %d: %v", n.ID, err)
	}
	n.cmd = cmd
	n.done = make(chan struct{})
	done := n.done
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exit = err
		n.mu.Unlock()
		close(done)
	}()
}

// WaitReady polls /ready until it answers 200 or d passes.
func (n *Node) WaitReady(d time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-n.done:
			n.t.Fatalf("node %d exited before becoming ready: %v\n%s", n.ID, n.exit, n.Log())
		default:
		}
		resp, err := http.Get("http://" + n.HTTPAddr() + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("node %d not ready after %v\n%s", n.ID, d, n.Log())
}

// Running reports whether the process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

func (n *Node) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Signal(sig)
	}
}

// Kill sends SIGKILL and waits for the process to go.
func (n *Node) Kill() {
	if !n.Running() {
		return
	}
	n.signal(syscall.SIGKILL)
	<-n.done
}

// Stop sends SIGTERM and waits (up to d) for a clean exit; it returns the
// exit error (nil for exit status 0).
func (n *Node) Stop(d time.Duration) error {
	n.t.Helper()
	if !n.Running() {
		return errors.New("not running")
	}
	n.signal(syscall.SIGTERM)
	select {
	case <-n.done:
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.exit
	case <-time.After(d):
		n.Kill()
		return fmt.Errorf("node %d did not stop within %v", n.ID, d)
	}
}

// WaitExit waits up to d for the process to exit by itself and returns its
// exit error; ok is false if it is still running.
func (n *Node) WaitExit(d time.Duration) (exit error, ok bool) {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return nil, false
	}
	select {
	case <-done:
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.exit, true
	case <-time.After(d):
		return nil, false
	}
}

// PID returns the process id, 0 if the node was never started.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (n *Node) Pause()  { n.signal(syscall.SIGSTOP) }
func (n *Node) Resume() { n.signal(syscall.SIGCONT) }

// Log returns what the process printed.
func (n *Node) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.log == nil {
		return ""
	}
	return n.log.String()
}

// Metrics fetches /metrics.
func (n *Node) Metrics() (string, error) {
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// WaitFor polls cond every 10 ms until it returns nil or d passes, then
// fails naming what it waited for and the last error.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", d, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Context returns a context ending with the test or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// saveLogIfFailed writes the node's output under test/logs (or
// $CHRONIK_TEST_LOGS) when its test failed, and says where.
func (n *Node) saveLogIfFailed() {
	if !n.t.Failed() {
		return
	}
	dir := os.Getenv("CHRONIK_TEST_LOGS")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "test", "logs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(n.t.Name())
	// A test may run two nodes of one id (a standalone node, then a
	// cluster node on its data): a file written since this test began is
	// the other node's, so this one takes the next free suffix.
	for i := 1; i < 100; i++ {
		path := filepath.Join(dir, fmt.Sprintf("%s-node-%d.log", name, n.ID))
		if i > 1 {
			path = filepath.Join(dir, fmt.Sprintf("%s-node-%d-%d.log", name, n.ID, i))
		}
		if st, err := os.Stat(path); err == nil && !st.ModTime().Before(n.created) {
			continue
		}
		if err := os.WriteFile(path, []byte(n.Log()), 0o644); err == nil {
			n.t.Logf("node %d log: %s", n.ID, path)
		}
		return
	}
}

// Contains reports whether the log holds s.
func (n *Node) LogContains(s string) bool { return strings.Contains(n.Log(), s) }

// WaitLogContains polls the log until it holds s or d passes, and reports
// whether it does. A running process's output reaches Log through a pipe,
// a moment after the process wrote it: a line the node printed before
// answering a request may not be in Log yet when the answer arrives.
func (n *Node) WaitLogContains(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !n.LogContains(s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// Cluster is a set of nodes configured as one Raft cluster on loopback.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
	// Config is the TOML file every node reads (node 1's when each node
	// has its own, see ClusterOptions.PeerRaftAddr).
	Config string
	// Configs holds each node's TOML file, by node index.
	Configs []string
	opts    ClusterOptions
}

// ClusterOptions configures NewCluster.
type ClusterOptions struct {
	Nodes             int
	ReplicationFactor int      // default min(3, Nodes)
	MinInsyncReplicas int      // default min(2, ReplicationFactor)
	ExtraConfig       string   // appended to the generated TOML
	Env               []string // extra environment for every node
	// RaftAddr, if set, gives the raft address other nodes use to reach
	// node id (e.g. a proxy); the node still listens on its own port.
	RaftAddr func(id int, listen string) string
	// PeerRaftAddr, if set, gives the raft address node from uses to reach
	// node to (e.g. a proxy for that one ordered link); every node then
	// reads its own TOML file. It overrides RaftAddr.
	PeerRaftAddr func(from, to int, listen string) string
}

// NewCluster prepares (does not start) n nodes with a shared config file.
func NewCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = min(3, o.Nodes)
	}
	if o.MinInsyncReplicas == 0 {
		o.MinInsyncReplicas = min(2, o.ReplicationFactor)
	}
	c := &Cluster{t: t, opts: o}
	var listens []string
	for i := 1; i <= o.Nodes; i++ {
		n := NewNode(t, NodeOptions{ID: i, Env: o.Env})
		n.RaftPort = FreePort(t)
		listens = append(listens, fmt.Sprintf("127.0.0.1:%d", n.RaftPort))
		c.Nodes = append(c.Nodes, n)
	}
	// peersFor writes the member list as node from sees it (from = 0: the
	// shared view).
	peersFor := func(from int) string {
		var peers strings.Builder
		for i, n := range c.Nodes {
			id, addr := i+1, listens[i]
			switch {
			case o.PeerRaftAddr != nil && from != 0 && id != from:
				addr = o.PeerRaftAddr(from, id, listens[i])
			case o.PeerRaftAddr == nil && o.RaftAddr != nil:
				addr = o.RaftAddr(id, listens[i])
			}
			fmt.Fprintf(&peers, "[[cluster.peers.nodes]]\nid = %d\naddr = %q\nraft_addr = %q\n\n", id, n.Addr(), addr)
		}
		return peers.String()
	}
	dir := t.TempDir()
	for i := range c.Nodes {
		from, name := 0, "cluster.toml"
		if o.PeerRaftAddr != nil {
			from, name = i+1, fmt.Sprintf("cluster-%d.toml", i+1)
		}
		if o.PeerRaftAddr == nil && i > 0 {
			c.Configs = append(c.Configs, c.Configs[0])
			continue
		}
		cfg := fmt.Sprintf("[cluster]\nenabled = true\nreplication_factor = %d\nmin_insync_replicas = %d\n\n%s\n%s\n",
			o.ReplicationFactor, o.MinInsyncReplicas, peersFor(from), o.ExtraConfig)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		c.Configs = append(c.Configs, path)
	}
	c.Config = c.Configs[0]
	for i, n := range c.Nodes {
		n.Args = []string{"--config", c.Configs[i], "standalone", "--raft"}
		n.Env = append(n.Env, fmt.Sprintf("CHRONIK_RAFT_LISTEN_ADDR=127.0.0.1:%d", n.RaftPort))
	}
	return c
}

// NewJoiningNode prepares (does not start) one more node, which joins the
// running cluster: its own configuration lists every member and itself,
// while the members' files stay as they are (they learn of it from the
// cluster). It is added to Nodes with the next id.
func (c *Cluster) NewJoiningNode() *Node {
	c.t.Helper()
	n := NewNode(c.t, NodeOptions{ID: len(c.Nodes) + 1, Env: c.opts.Env})
	n.RaftPort = FreePort(c.t)
	c.Nodes = append(c.Nodes, n)
	var peers strings.Builder
	for _, m := range c.Nodes {
		fmt.Fprintf(&peers, "[[cluster.peers.nodes]]\nid = %d\naddr = %q\nraft_addr = \"127.0.0.1:%d\"\n\n", m.ID, m.Addr(), m.RaftPort)
	}
	cfg := fmt.Sprintf("[cluster]\nenabled = true\nreplication_factor = %d\nmin_insync_replicas = %d\n\n%s\n%s\n",
		c.opts.ReplicationFactor, c.opts.MinInsyncReplicas, peers.String(), c.opts.ExtraConfig)
	path := filepath.Join(c.t.TempDir(), fmt.Sprintf("join-%d.toml", n.ID))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.Configs = append(c.Configs, path)
	n.Args = []string{"--config", path, "standalone", "--raft"}
	n.Env = append(n.Env, fmt.Sprintf("CHRONIK_RAFT_LISTEN_ADDR=127.0.0.1:%d", n.RaftPort))
	return n
}

// Start starts every node and waits until all are ready.
func (c *Cluster) Start() {
	c.t.Helper()
	for _, n := range c.Nodes {
		n.StartNoWait()
	}
	for _, n := range c.Nodes {
		n.WaitReady(60 * time.Second)
	}
}

// Addrs lists the nodes' Kafka addresses.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// Node returns the node with id.
func (c *Cluster) Node(id int) *Node { return c.Nodes[id-1] }

// Running returns the nodes that are up.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// PartitionLog returns the name of the log of topic/partition in the
// (closed) store st, failing the test unless exactly one topic id has one.
func PartitionLog(t testing.TB, st *storage.Store, topic string, partition int32) storage.LogName {
	t.Helper()
	names, err := st.LogNames()
	if err != nil {
		t.Fatal(err)
	}
	var found []storage.LogName
	for _, n := range names {
		if ref, ok := n.Partition(); ok && ref.Topic == topic && ref.Partition == partition {
			found = append(found, n)
		}
	}
	if len(found) != 1 {
		t.Fatalf("store %s holds %d logs of %s-%d (%v), want 1", st.Dir(), len(found), topic, partition, found)
	}
	return found[0]
}

// PartitionDir returns the directory of the log of topic/partition in the
// data directory of a stopped node.
func PartitionDir(t testing.TB, dataDir, topic string, partition int32) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dataDir, "kafka", topic, fmt.Sprintf("%d_*", partition)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 {
		t.Fatalf("%s holds %d logs of %s-%d (%v), want 1", dataDir, len(m), topic, partition, m)
	}
	return m[0]
}
