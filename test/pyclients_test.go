package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/harness"
)

// python is Debian's interpreter, the one that sees python3-kafka and
// python3-confluent-kafka.
const python = "/usr/bin/python3"

func needPythonModule(t *testing.T, module string) {
	t.Helper()
	if err := exec.Command(python, "-c", "import "+module).Run(); err != nil {
		t.Fatalf("%s cannot import %s (install python3-kafka and python3-confluent-kafka: make deps): %v", python, module, err)
	}
}

func pythonCmd(script string, args ...string) *exec.Cmd {
	return exec.Command(python, append([]string{filepath.Join(harness.RepoRoot(), "test", "clients", script)}, args...)...)
}

func httpStatus(url string) (int, error) {
	resp, err := http.Get("http://" + url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// runPhase runs one phase of a Python scenario script and returns the
// records it printed.
func runPhase(t *testing.T, script string, args ...string) []received {
	t.Helper()
	cmd := pythonCmd(script, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %v: %v\nstderr:\n%s", script, args, err, stderr.String())
		}
	case <-time.After(4 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("%s %v did not finish\nstderr:\n%s", script, args, stderr.String())
	}
	var out []received
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r received
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s printed %q: %v", script, sc.Text(), err)
		}
		if r.Topic != "" {
			out = append(out, r)
		}
	}
	return out
}

// pythonScenario runs the client scenario with one of the Python scripts.
func pythonScenario(t *testing.T, script, module, topic string) {
	needPythonModule(t, module)
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	group := topic + "-group"
	base := func(phase string, count int) []string {
		return []string{phase, "--bootstrap", n.Addr(), "--topic", topic, "--group", group, "--count", strconv.Itoa(count)}
	}
	runPhase(t, script, base("produce", scenarioMessages)...)
	first := runPhase(t, script, append(base("group", scenarioFirst), "--commit")...)

	n.Kill()
	n.Start()

	resumed := runPhase(t, script, append(base("group", scenarioMessages-scenarioFirst), "--commit")...)
	fresh := runPhase(t, script, "group", "--bootstrap", n.Addr(), "--topic", topic, "--group", topic+"-fresh", "--count", strconv.Itoa(scenarioMessages))
	checkScenario(t, first, resumed, fresh)
	runPhase(t, script, base("admin", scenarioMessages)...)
	if os.Getenv("CHRONIK_TEST_VERBOSE") != "" {
		t.Log(n.Log())
	}
}

func TestKafkaPythonScenario(t *testing.T) {
	pythonScenario(t, "kafka_python_scenario.py", "kafka", "kafka-python-e2e")
}

func TestConfluentKafkaScenario(t *testing.T) {
	pythonScenario(t, "confluent_scenario.py", "confluent_kafka", "confluent-e2e")
}
