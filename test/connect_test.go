package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// connectWorker is a Kafka Connect worker in distributed mode, run with
// Kafka's own ConnectDistributed.
type connectWorker struct {
	*javaProc
	rest string // http://127.0.0.1:port
}

// Names the worker is configured with.
const (
	connectGroup         = "chronik-connect"
	connectConfigsTopic  = "connect-configs"
	connectOffsetsTopic  = "connect-offsets"
	connectStatusesTopic = "connect-status"
)

// startConnectWorker writes a worker configuration for the cluster at
// bootstrap and starts the worker. Its internal topics are replicated
// three times, as a production worker's would be; the file connectors
// are on the classpath, found through their service manifests.
func startConnectWorker(t *testing.T, bootstrap []string) *connectWorker {
	t.Helper()
	port := harness.FreePort(t)
	props := fmt.Sprintf(`bootstrap.servers=%s
group.id=%s
config.storage.topic=%s
offset.storage.topic=%s
status.storage.topic=%s
config.storage.replication.factor=3
offset.storage.replication.factor=3
status.storage.replication.factor=3
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.flush.interval.ms=500
listeners=http://127.0.0.1:%d
rest.advertised.host.name=127.0.0.1
rest.advertised.port=%d
plugin.discovery=service_load
`, strings.Join(bootstrap, ","), connectGroup, connectConfigsTopic, connectOffsetsTopic, connectStatusesTopic, port, port)
	path := filepath.Join(t.TempDir(), "worker.properties")
	if err := os.WriteFile(path, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	// Connect's own lifecycle lines (started, stopping, stopped) are INFO.
	p := startJava(t, "ConnectDistributed", []string{"-Dorg.slf4j.simpleLogger.log.org.apache.kafka.connect.runtime.Connect=info"},
		"org.apache.kafka.connect.cli.ConnectDistributed", path)
	return &connectWorker{javaProc: p, rest: fmt.Sprintf("http://127.0.0.1:%d", port)}
}

// call sends a request to the worker's REST API and decodes a JSON answer
// into out (if not nil); any status but 2xx is an error.
func (w *connectWorker) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.rest+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w: %s", method, path, err, b)
		}
	}
	return nil
}

// connectorStatus is the answer of GET /connectors/{name}/status.
type connectorStatus struct {
	Connector struct {
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"connector"`
	Tasks []struct {
		ID    int    `json:"id"`
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"tasks"`
}

// running returns nil once the connector and all its tasks (at least one)
// are RUNNING.
func (w *connectWorker) running(name string) error {
	var st connectorStatus
	if err := w.call("GET", "/connectors/"+name+"/status", nil, &st); err != nil {
		return err
	}
	if st.Connector.State != "RUNNING" || len(st.Tasks) == 0 {
		return fmt.Errorf("connector %s is %s with %d tasks %s", name, st.Connector.State, len(st.Tasks), st.Connector.Trace)
	}
	for _, task := range st.Tasks {
		if task.State != "RUNNING" {
			return fmt.Errorf("task %s-%d is %s: %s", name, task.ID, task.State, task.Trace)
		}
	}
	return nil
}

// committed returns nil once the offsets the REST API reports for
// connector (one source partition or one topic partition) have field at
// want.
func (w *connectWorker) committed(connector, field string, want int64) error {
	var got struct {
		Offsets []struct {
			Partition map[string]any `json:"partition"`
			Offset    map[string]any `json:"offset"`
		} `json:"offsets"`
	}
	if err := w.call("GET", "/connectors/"+connector+"/offsets", nil, &got); err != nil {
		return err
	}
	if len(got.Offsets) != 1 {
		return fmt.Errorf("%s has offsets %+v, want one", connector, got.Offsets)
	}
	v, ok := got.Offsets[0].Offset[field].(float64)
	if !ok || int64(v) != want {
		return fmt.Errorf("%s offset %v, want %s %d", connector, got.Offsets[0].Offset, field, want)
	}
	return nil
}

// sourcePosition returns nil once the latest offset the source connector
// committed to the offsets topic is position want. Connect keys it by
// ["connector", {"filename": ...}] and stores {"position": n}.
func sourcePosition(ctx context.Context, addrs []string, connector string, want int64) error {
	latest, err := latestByKey(ctx, addrs, connectOffsetsTopic)
	if err != nil {
		return err
	}
	for k, v := range latest {
		var key []json.RawMessage
		var name string
		if json.Unmarshal([]byte(k), &key) != nil || len(key) != 2 || json.Unmarshal(key[0], &name) != nil || name != connector {
			continue
		}
		var off struct {
			Position int64 `json:"position"`
		}
		if err := json.Unmarshal(v, &off); err != nil {
			return fmt.Errorf("offset %s of %s: %w", v, k, err)
		}
		if off.Position != want {
			return fmt.Errorf("%s committed position %d, want %d", connector, off.Position, want)
		}
		return nil
	}
	return fmt.Errorf("no offset committed by %s in %s", connector, connectOffsetsTopic)
}

// appendLines appends lines to the file at path, each whole in one write.
func appendLines(t *testing.T, path string, lines []string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// readLines returns the complete lines of the file at path (none if it
// does not exist yet).
func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := string(b)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	} else {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

// checkDelivered compares what the sink wrote with what was appended to
// the source. At least once, a line may be written more than once (a task
// re-sending or re-reading from its last committed offset), but every line
// must be there, nothing else, and the first copies in order. It returns
// the number of duplicates, or an error while lines are missing.
func checkDelivered(got, want []string) (dups int, err error) {
	seen := map[string]bool{}
	var firsts []string
	for _, l := range got {
		if seen[l] {
			dups++
			continue
		}
		seen[l] = true
		firsts = append(firsts, l)
	}
	wanted := map[string]bool{}
	for _, l := range want {
		wanted[l] = true
	}
	for _, l := range firsts {
		if !wanted[l] {
			return dups, fmt.Errorf("the sink wrote %q, which was never appended", l)
		}
	}
	if len(firsts) < len(want) {
		return dups, fmt.Errorf("%d of %d lines delivered", len(firsts), len(want))
	}
	if !slices.Equal(firsts, want) {
		for i := range want {
			if firsts[i] != want[i] {
				return dups, fmt.Errorf("out of order: line %d delivered is %q, want %q", i, firsts[i], want[i])
			}
		}
	}
	return dups, nil
}

func connectLines(first, n int) []string {
	var out []string
	for i := first; i < first+n; i++ {
		out = append(out, fmt.Sprintf("line %04d of the file source", i))
	}
	return out
}

// TestKafkaConnectDistributed runs a Kafka Connect 4.1.1 worker in
// distributed mode against a three-node cluster: its config, offset and
// status topics created compacted, a file source and a file sink
// connector created through the REST API copying a file through a topic
// in order, and still copying every line when a node is killed; the
// worker stops on SIGTERM.
func TestKafkaConnectDistributed(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	cl := clusterClient(t, c)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	adm := kadm.NewClient(admCl)
	ctx := harness.Context(t, 3*time.Minute)

	// One partition, so the sink sees the lines in the order the source
	// read them.
	const topic = "connect-lines"
	createTopic(t, cl, topic, 1, 3)

	w := startConnectWorker(t, c.Addrs())
	// GET /health answers 200 once the worker has read its internal
	// topics and joined its group.
	harness.WaitFor(t, "the Connect worker to be healthy", 90*time.Second, func() error {
		if err := w.alive(); err != nil {
			t.Fatal(err)
		}
		return w.call("GET", "/health", nil, nil)
	})

	// The worker created its internal topics compacted (it refuses to run
	// on others) with the replication factor it was given.
	internal := []string{connectConfigsTopic, connectOffsetsTopic, connectStatusesTopic}
	topics, err := adm.ListTopics(ctx, internal...)
	if err != nil {
		t.Fatal(err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, internal...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range internal {
		td, ok := topics[name]
		if !ok || td.Err != nil {
			t.Fatalf("internal topic %s: missing (%v)", name, td.Err)
		}
		if rf := td.Partitions.NumReplicas(); rf != 3 {
			t.Errorf("%s has %d replicas, want 3", name, rf)
		}
		rc, err := configs.On(name, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("configs of %s: %v %v", name, err, rc.Err)
		}
		if p := configValue(rc, "cleanup.policy"); p != "compact" {
			t.Errorf("%s: cleanup.policy = %q, want compact", name, p)
		}
	}
	// The config topic must have one partition: Connect checks it too.
	if n := len(topics[connectConfigsTopic].Partitions); n != 1 {
		t.Errorf("%s has %d partitions, want 1", connectConfigsTopic, n)
	}

	dir := t.TempDir()
	source, sink := filepath.Join(dir, "source.txt"), filepath.Join(dir, "sink.txt")
	var want []string
	appendMore := func(n int) {
		lines := connectLines(len(want), n)
		appendLines(t, source, lines)
		want = append(want, lines...)
	}
	appendMore(100) // before the source connector exists: it reads from the start
	connectors := map[string]map[string]string{
		"file-source": {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
			"tasks.max": "1", "file": source, "topic": topic},
		"file-sink": {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
			"tasks.max": "1", "file": sink, "topics": topic},
	}
	for _, name := range []string{"file-source", "file-sink"} {
		body := map[string]any{"name": name, "config": connectors[name]}
		// A worker still joining its group answers 409 for a while.
		harness.WaitFor(t, "the worker to create connector "+name, time.Minute, func() error {
			if err := w.alive(); err != nil {
				t.Fatal(err)
			}
			return w.call("POST", "/connectors", body, nil)
		})
	}
	appendMore(100)
	waitDelivered := func(what string, exact bool) {
		t.Helper()
		var got []string
		harness.WaitFor(t, "the sink file to have every line "+what, 90*time.Second, func() error {
			if err := w.alive(); err != nil {
				t.Fatal(err)
			}
			var err error
			if got, err = readLines(sink); err != nil {
				return err
			}
			_, err = checkDelivered(got, want)
			return err
		})
		dups, _ := checkDelivered(got, want)
		if exact && dups > 0 {
			t.Errorf("%s: %d lines written twice to the sink with no failure to explain them", what, dups)
		}
		if dups > 0 {
			t.Logf("%s: %d of %d lines written more than once (at least once)", what, dups, len(want))
		}
	}
	waitDelivered("appended with the cluster whole", true)
	for _, name := range []string{"file-source", "file-sink"} {
		harness.WaitFor(t, name+" and its task RUNNING", 30*time.Second, func() error { return w.running(name) })
	}

	// Kill the leader of the lines' partition, which both connectors' tasks
	// use, and append while it is down.
	victim := waitLeader(t, c, topic, 0, -1)
	led := leadership(t, ctx, adm, append([]string{topic}, internal...)...)[victim]
	roles := strings.Join(led, ", ")
	if coordinatorOf(t, ctx, adm, connectGroup) == victim {
		roles += " and the worker group's coordinator"
	}
	t.Logf("killing node %d, leader of %s", victim, roles)
	c.Node(int(victim)).Kill()
	appendMore(100)
	waitDelivered("appended with a node killed", false)
	for _, name := range []string{"file-source", "file-sink"} {
		harness.WaitFor(t, name+" and its task RUNNING after the kill", 30*time.Second, func() error { return w.running(name) })
	}
	// Both connectors go on committing where they are, with the node
	// down: the source its position in the file (to connect-offsets), the
	// sink its consumer offset (to its group's coordinator). Read from
	// the cluster directly, see below for why.
	info, err := os.Stat(source)
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	harness.WaitFor(t, "the end offset of "+topic, time.Minute, func() error {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		o, _ := ends.Lookup(topic, 0)
		end = o.Offset
		return o.Err
	})
	harness.WaitFor(t, "the source's position at the end of the file in "+connectOffsetsTopic, time.Minute, func() error {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return sourcePosition(rctx, runningAddrs(c), "file-source", info.Size())
	})
	harness.WaitFor(t, "the sink's committed offset at the end of the topic", time.Minute, func() error {
		offs, err := adm.FetchOffsets(ctx, "connect-file-sink")
		if err != nil {
			return err
		}
		if o, ok := offs.Lookup(topic, 0); !ok || o.Err != nil || o.At != end {
			return fmt.Errorf("the sink committed %+v, want %d", o, end)
		}
		return nil
	})

	// The worker's own view of those offsets, through its REST API, once
	// the node is back. While it is down the worker's reads of
	// connect-offsets can hang: Kafka 4.1's admin client caches partition
	// leaders and waits for a cached leader that has left the cluster's
	// metadata to come back instead of looking the leader up again (it
	// does so against Kafka too; later clients look up again).
	c.Node(int(victim)).Start()
	harness.WaitFor(t, "the worker to report the source's position at the end of the file", time.Minute, func() error {
		return w.committed("file-source", "position", info.Size())
	})
	harness.WaitFor(t, "the worker to report the sink's offset at the end of the topic", time.Minute, func() error {
		return w.committed("file-sink", "kafka_offset", end)
	})

	if err := w.stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The JVM exits with 128+SIGTERM once its shutdown hooks have run.
	if !strings.Contains(w.stderr.String(), "Kafka Connect stopped") {
		t.Errorf("the worker exited (%v) without saying Kafka Connect stopped", w.exit)
	}
	var exit *exec.ExitError
	if w.exit != nil && !(errors.As(w.exit, &exit) && exit.ExitCode() == 143) {
		t.Errorf("the worker exited with %v, want 0 or 143 (SIGTERM)", w.exit)
	}
}
