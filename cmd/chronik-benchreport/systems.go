package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A system under test: one or more server processes on loopback.
type system struct {
	name      string
	bootstrap []string
	// replication is the replication factor of its bench topics.
	replication int16
	procs       []*proc
	// metrics are the nodes' metrics addresses (none for kfake and Kafka).
	metrics []string
	// topicConfigs are set on its bench topics beside retention and
	// segment size.
	topicConfigs map[string]string
}

// proc is one server process; its output goes to a log file in the run's
// temp dir (printed when it fails to start).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	// If this program dies without cleaning up (SIGKILL), the kernel kills
	// the servers too, so none is left running on the benchmark's ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop asks the process to exit (SIGTERM) and kills it after a grace period.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	return tailOf(b)
}

func tailOf(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop stops every process at once: a node stopped after the others may
// otherwise wait out its grace period for a quorum that is gone.
func (s *system) stop() {
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop()
		}()
	}
	wg.Wait()
}

// freePort returns a loopback TCP port that is free now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func freePorts(n int) ([]int, error) {
	// Hold every listener until all are chosen, so no port repeats.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitUntil polls cond every 50 ms until it returns nil, p exits, or the
// timeout passes.
func waitUntil(ctx context.Context, what string, timeout time.Duration, procs []*proc, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		for _, p := range procs {
			if p.exited() {
				return fmt.Errorf("%s exited while waiting for %s; its log ends:\n%s", p.name, what, p.tail())
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %w", timeout, what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func httpReady(addr string) func() error {
	return func() error {
		resp, err := http.Get("http://" + addr + "/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
}

func tcpReady(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
}

func startKfake(ctx context.Context, bins binaries, dir string) (*system, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc("kfake", filepath.Join(dir, "kfake.log"), nil, bins.kfake, "--port", strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	s := &system{name: "kfake", bootstrap: []string{fmt.Sprintf("127.0.0.1:%d", port)}, replication: 1, procs: []*proc{p}}
	if err := waitUntil(ctx, "kfake to listen", 30*time.Second, s.procs, tcpReady(s.bootstrap[0])); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// chronikEnv shortens retention checks so that a benchmark topic's
// retention.bytes takes effect within seconds, not the default 30 s.
var chronikEnv = []string{"CHRONIK_KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS=2000", "CHRONIK_LOG_LEVEL=warn"}

func startStandalone(ctx context.Context, bins binaries, dir string) (*system, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	kafka, metrics := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	p, err := startProc("standalone", filepath.Join(dir, "standalone.log"), chronikEnv, bins.server,
		"--node-id", "1", "--advertised-addr", kafka, "--data-dir", filepath.Join(dir, "standalone"),
		"--metrics-addr", metrics, "standalone")
	if err != nil {
		return nil, err
	}
	s := &system{name: "standalone", bootstrap: []string{kafka}, replication: 1, procs: []*proc{p}, metrics: []string{metrics}}
	if err := waitUntil(ctx, "standalone to be ready", 60*time.Second, s.procs, httpReady(metrics)); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startCluster starts three nodes, replication factor 3 and
// min_insync_replicas 2 (the defaults of a 3-node cluster).
func startCluster(ctx context.Context, bins binaries, dir string) (*system, error) {
	const nodes = 3
	ports, err := freePorts(3 * nodes)
	if err != nil {
		return nil, err
	}
	kafka := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[3*i]) }
	raft := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]) }
	metrics := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]) }
	var cfg strings.Builder
	cfg.WriteString("[cluster]\nenabled = true\nreplication_factor = 3\nmin_insync_replicas = 2\n\n")
	for i := range nodes {
		fmt.Fprintf(&cfg, "[[cluster.peers.nodes]]\nid = %d\naddr = %q\nraft_addr = %q\n\n", i+1, kafka(i), raft(i))
	}
	cfgPath := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		return nil, fmt.Errorf("write cluster config: %w", err)
	}
	s := &system{name: "cluster", replication: 3}
	for i := range nodes {
		env := append([]string{"CHRONIK_RAFT_LISTEN_ADDR=" + raft(i)}, chronikEnv...)
		p, err := startProc(fmt.Sprintf("cluster node %d", i+1), filepath.Join(dir, fmt.Sprintf("cluster-%d.log", i+1)), env, bins.server,
			"--node-id", strconv.Itoa(i+1), "--advertised-addr", kafka(i), "--data-dir", filepath.Join(dir, fmt.Sprintf("cluster-%d", i+1)),
			"--metrics-addr", metrics(i), "--config", cfgPath, "standalone", "--raft")
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
		s.bootstrap = append(s.bootstrap, kafka(i))
		s.metrics = append(s.metrics, metrics(i))
	}
	for i := range nodes {
		if err := waitUntil(ctx, fmt.Sprintf("cluster node %d to be ready", i+1), 60*time.Second, s.procs, httpReady(metrics(i))); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}
