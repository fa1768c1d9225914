package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/harness"
)

// python is Debian's interpreter, the one that sees python3-kafka and
// python3-confluent-kafka.
const python = "/usr/bin/python3"

// venvPython is the interpreter of the venv `make deps` creates with PyPI's
// confluent-kafka and kafka-python (test/clients/requirements.txt).
func venvPython(t *testing.T) string {
	t.Helper()
	p := filepath.Join(harness.RepoRoot(), "test", "clients", ".venv", "bin", "python")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no venv with PyPI's Kafka clients (make deps creates test/clients/.venv): %v", err)
	}
	return p
}

func needPythonModule(t *testing.T, module string) {
	t.Helper()
	needModule(t, python, module)
}

func needModule(t *testing.T, py, module string) {
	t.Helper()
	if err := exec.Command(py, "-c", "import "+module).Run(); err != nil {
		t.Fatalf("%s cannot import %s (make deps installs python3-kafka and python3-confluent-kafka, and PyPI's clients in test/clients/.venv): %v", py, module, err)
	}
}

func pythonCmd(script string, args ...string) *exec.Cmd {
	return scriptCmd(python, script, args...)
}

func scriptCmd(py, script string, args ...string) *exec.Cmd {
	return exec.Command(py, append([]string{filepath.Join(harness.RepoRoot(), "test", "clients", script)}, args...)...)
}

func httpStatus(url string) (int, error) {
	resp, err := http.Get("http://" + url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// pyClient is a Python client library running the scenario script.
type pyClient struct {
	python string // interpreter
	script string // in test/clients
	module string // what the script imports
	// idempotent says the producer is idempotent: the cluster run kills the
	// leader with records in flight (scenarioTarget.killAt).
	idempotent  bool
	codec       uint8    // the producer's compression
	produceArgs []string // extra arguments of the produce phase
}

func kafkaPython(py string, idempotent bool) pyClient {
	c := pyClient{python: py, script: "kafka_python_scenario.py", module: "kafka", idempotent: idempotent, codec: codecGzip}
	if idempotent {
		c.produceArgs = []string{"--idempotent"}
	}
	return c
}

// confluentKafka: the script's producer is always idempotent.
func confluentKafka(py string) pyClient {
	return pyClient{python: py, script: "confluent_scenario.py", module: "confluent_kafka", idempotent: true, codec: codecZstd}
}

// runPhase runs one phase of the scenario script and returns the records it
// printed. A phase run with kill answers the script's {"kill": n} line by
// calling kill and then telling the script "killed" on its stdin
// (scenario_steps.produce_in_steps).
func (c pyClient) runPhase(t *testing.T, kill func(), args ...string) []received {
	t.Helper()
	cmd := scriptCmd(c.python, c.script, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // the test failed before the script ended
	lines := make(chan []byte)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case lines <- bytes.Clone(sc.Bytes()):
			case <-stop:
				return
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	var out []received
	deadline := time.After(4 * time.Minute)
	for reading := true; reading; {
		select {
		case l, ok := <-lines:
			if !ok {
				reading = false
				break
			}
			var line struct {
				received
				Kill        int  `json:"kill"`
				AckedAtKill *int `json:"acked_at_kill"`
				Handed      int  `json:"handed"`
			}
			if err := json.Unmarshal(l, &line); err != nil {
				t.Fatalf("%s printed %q: %v", c.script, l, err)
			}
			switch {
			case line.Kill > 0 && kill == nil:
				t.Fatalf("%s %v asked for a kill in a phase without one", c.script, args)
			case line.Kill > 0:
				kill()
				if _, err := io.WriteString(stdin, "killed\n"); err != nil {
					t.Fatalf("tell %s the leader is killed: %v", c.script, err)
				}
			case line.AckedAtKill != nil:
				t.Logf("%s had %d of the %d records handed over acknowledged when it was told of the kill", c.script, *line.AckedAtKill, line.Handed)
			case line.Topic != "":
				out = append(out, line.received)
			}
		case <-deadline:
			t.Fatalf("%s %v did not finish\nstderr:\n%s", c.script, args, stderr.String())
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s %v: %v\nstderr:\n%s", c.script, args, err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "retrying after") {
			t.Logf("%s %s: %s", c.script, args[0], l)
		}
	}
	return out
}

// run runs the client scenario in mode.
func (c pyClient) run(t *testing.T, mode scenarioMode, topic string) {
	needModule(t, c.python, c.module)
	s := newScenarioTarget(t, mode, topic)
	group := topic + "-group"
	base := func(phase string, count int) []string {
		return []string{phase, "--bootstrap", s.bootstrap(), "--topic", topic, "--group", group, "--count", strconv.Itoa(count)}
	}
	produce := append(base("produce", scenarioMessages), "--replication", strconv.Itoa(int(s.replication())))
	produce = append(produce, c.produceArgs...)
	var kill func()
	if k := s.killAt(c.idempotent); k > 0 {
		produce = append(produce, "--kill-at", strconv.Itoa(k))
		kill = s.killLeader
	}
	c.runPhase(t, kill, produce...)
	s.afterProduce()
	s.checkCodec(c.codec)
	first := c.runPhase(t, nil, append(base("group", scenarioFirst), "--commit")...)
	s.betweenPasses(group)
	resumed := c.runPhase(t, nil, append(base("group", scenarioMessages-scenarioFirst), "--commit")...)
	fresh := c.runPhase(t, nil, "group", "--bootstrap", s.bootstrap(), "--topic", topic, "--group", topic+"-fresh", "--count", strconv.Itoa(scenarioMessages))
	checkScenario(t, first, resumed, fresh)
	c.runPhase(t, nil, base("admin", scenarioMessages)...)
	s.checkOffsets(group)
}

// TestKafkaPythonScenario: Debian's kafka-python 2.0.2, which has no
// idempotent producer.
func TestKafkaPythonScenario(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode scenarioMode) {
		kafkaPython(python, false).run(t, mode, "kafka-python-e2e")
	})
}

// TestConfluentKafkaScenario: Debian's confluent-kafka 1.7 on librdkafka
// 2.0.2.
func TestConfluentKafkaScenario(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode scenarioMode) {
		confluentKafka(python).run(t, mode, "confluent-e2e")
	})
}

// TestKafkaPythonPyPIScenario: PyPI's kafka-python 2.3.3, idempotent.
func TestKafkaPythonPyPIScenario(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode scenarioMode) {
		kafkaPython(venvPython(t), true).run(t, mode, "kafka-python-pypi-e2e")
	})
}

// TestConfluentKafkaPyPIScenario: PyPI's confluent-kafka 2.16.1 with the
// librdkafka it bundles.
func TestConfluentKafkaPyPIScenario(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode scenarioMode) {
		confluentKafka(venvPython(t)).run(t, mode, "confluent-pypi-e2e")
	})
}
