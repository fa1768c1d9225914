package test

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/harness"
)

// javaScenario runs the Java client's scenario (test/clients/java:
// chronik.clients.ClientScenario) and calls onMark for each "MARK" line it
// prints while it runs. It fails the test with the scenario's own message
// when a step does not hold.
func javaScenario(t *testing.T, bootstrap string, replication, brokers int, onMark func(mark string)) {
	t.Helper()
	cmd := javaCmd(t, "chronik.clients.ClientScenario", "--bootstrap", bootstrap, "--prefix", "java",
		"--replication", strconv.Itoa(replication), "--brokers", strconv.Itoa(brokers))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(5*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if mark, ok := strings.CutPrefix(line, "MARK "); ok && onMark != nil {
			onMark(mark)
		}
		if strings.HasPrefix(line, "OK ") {
			t.Log(line)
		}
	}
	err = cmd.Wait()
	out := strings.Join(lines, "\n")
	if err != nil || !strings.Contains(out, "\nDONE") {
		t.Fatalf("Java client scenario: %v\nstdout:\n%s\nstderr (last 8 KiB):\n%s", err, out, tail(stderr.String(), 8<<10))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// TestJavaClientStandalone runs Kafka's Java client (kafka-clients 4.1.1)
// against one node: the idempotent producer with acks=all and each codec, a
// cooperative-sticky group with static members that join, restart and
// leave, and the AdminClient.
func TestJavaClientStandalone(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	javaScenario(t, n.Addr(), 1, 1, nil)
}

// TestJavaClientCluster runs the same scenario against three nodes with
// replication factor 3; the leader of the produce topic's partition 0 is
// SIGKILLed when half the records are acknowledged, and the rest of the
// scenario runs on the two that remain.
func TestJavaClientCluster(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	killed := int32(-1)
	// The admin step runs after the kill: the cluster describes its two
	// live brokers.
	javaScenario(t, strings.Join(c.Addrs(), ","), 3, 2, func(mark string) {
		if mark != "produced-half" {
			return
		}
		killed = waitLeader(t, c, "java-produce", 0, -1)
		c.Node(int(killed)).Kill()
		t.Logf("killed node %d, the leader of java-produce/0", killed)
	})
	if killed < 0 {
		t.Fatal("the scenario never reached the point where the leader is killed")
	}
}
