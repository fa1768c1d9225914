package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Apache Kafka configurations measured as the reference. "-flush"
// systems create their topics with flush.messages=1: every appended batch
// is fsynced before it counts as written, on the leader and on each
// follower, which is the durability Chronik gives every acknowledged
// batch. Without it Kafka acknowledges from the page cache and leaves the
// writeback to the kernel (its default).
var kafkaSystems = map[string]struct {
	nodes int
	flush bool
}{
	"kafka":               {1, false},
	"kafka-flush":         {1, true},
	"kafka-cluster":       {3, false},
	"kafka-cluster-flush": {3, true},
}

func isKafkaSystem(name string) bool {
	_, ok := kafkaSystems[name]
	return ok
}

// kafkaDist is a Kafka broker runnable from Maven's jars.
type kafkaDist struct {
	// classpath is the jars' directory with a wildcard, as java expands it.
	classpath string
	version   string
	java      string
	heap      string
}

var kafkaJar = regexp.MustCompile(`^kafka_[0-9.]+-([0-9][0-9A-Za-z.-]*)\.jar$`)

// findKafka checks that the broker's jars (kafka_<scala>-<version>.jar and
// its dependencies, which `make deps-java` copies into libDir) and a java
// command are there, before anything is measured.
func findKafka(ctx context.Context, libDir, heap string) (kafkaDist, error) {
	jars, _ := filepath.Glob(filepath.Join(libDir, "kafka_*.jar"))
	var version string
	for _, j := range jars {
		if m := kafkaJar.FindStringSubmatch(filepath.Base(j)); m != nil {
			version = m[1]
		}
	}
	if version == "" {
		return kafkaDist{}, fmt.Errorf("no Kafka broker jar (kafka_2.13-*.jar) in %s: run `make deps` (or `make deps-java`) first, or leave the kafka systems out of --systems", libDir)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return kafkaDist{}, fmt.Errorf("the Kafka reference needs java (JDK 17 or later, which `make deps` also needs): %w", err)
	}
	// `java -version` prints on stderr; its first line names the version.
	out, err := exec.CommandContext(ctx, "java", "-version").CombinedOutput()
	if err != nil {
		return kafkaDist{}, fmt.Errorf("java -version: %w\n%s", err, out)
	}
	javaVersion, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return kafkaDist{classpath: filepath.Join(libDir, "*"), version: version, java: javaVersion, heap: heap}, nil
}

// jvmArgs are the JVM options of kafka-server-start.sh (its heap) and
// kafka-run-class.sh (its performance options), with the heap we give
// each node.
func (d kafkaDist) jvmArgs() []string {
	return []string{"-Xmx" + d.heap, "-Xms" + d.heap,
		"-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
		"-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
		"-cp", d.classpath}
}

// kafkaClusterID is a random cluster id in Kafka's form (a base64url UUID).
func kafkaClusterID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// kafkaProperties is one node's server.properties: KRaft, broker and
// controller in one process, on loopback. Everything not set here is
// Kafka's default (threads, socket buffers, flushing); the exceptions only
// keep the disk in check between points (retention checked every 2 s,
// deleted files removed at once, as chronikEnv does for Chronik) and size
// the internal topics and min.insync.replicas to the node count.
func kafkaProperties(id int, kafkaPorts, controllerPorts []int, logDir string) string {
	nodes := len(kafkaPorts)
	var voters []string
	for i, p := range controllerPorts {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, p))
	}
	minISR := min(2, nodes)
	lines := []string{
		"process.roles=broker,controller",
		fmt.Sprintf("node.id=%d", id),
		"controller.quorum.voters=" + strings.Join(voters, ","),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", kafkaPorts[id-1], controllerPorts[id-1]),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", kafkaPorts[id-1]),
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + logDir,
		fmt.Sprintf("default.replication.factor=%d", nodes),
		fmt.Sprintf("min.insync.replicas=%d", minISR),
		fmt.Sprintf("offsets.topic.replication.factor=%d", nodes),
		fmt.Sprintf("transaction.state.log.replication.factor=%d", nodes),
		fmt.Sprintf("transaction.state.log.min.isr=%d", minISR),
		"group.initial.rebalance.delay.ms=0",
		"log.retention.check.interval.ms=2000",
		"log.segment.delete.delay.ms=0",
	}
	return strings.Join(lines, "\n") + "\n"
}

// startKafka formats each node's storage and starts the nodes, then waits
// until every broker is registered and unfenced.
func startKafka(ctx context.Context, dist kafkaDist, dir, name string) (*system, error) {
	cfg, ok := kafkaSystems[name]
	if !ok {
		return nil, fmt.Errorf("unknown Kafka system %q", name)
	}
	ports, err := freePorts(2 * cfg.nodes)
	if err != nil {
		return nil, err
	}
	kafkaPorts, controllerPorts := ports[:cfg.nodes], ports[cfg.nodes:]
	clusterID, err := kafkaClusterID()
	if err != nil {
		return nil, fmt.Errorf("cluster id: %w", err)
	}
	s := &system{name: name, replication: int16(cfg.nodes)}
	if cfg.flush {
		s.topicConfigs = map[string]string{"flush.messages": "1"}
	}
	for i := range cfg.nodes {
		id := i + 1
		nodeDir := filepath.Join(dir, fmt.Sprintf("node-%d", id))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return nil, err
		}
		props := filepath.Join(nodeDir, "server.properties")
		if err := os.WriteFile(props, []byte(kafkaProperties(id, kafkaPorts, controllerPorts, filepath.Join(nodeDir, "data"))), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", props, err)
		}
		fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		format := exec.CommandContext(fctx, "java", "-cp", dist.classpath, "kafka.tools.StorageTool", "format", "-t", clusterID, "-c", props)
		out, err := format.CombinedOutput()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("format the storage of Kafka node %d: %w\n%s", id, err, tailOf(out))
		}
	}
	for i := range cfg.nodes {
		id := i + 1
		nodeDir := filepath.Join(dir, fmt.Sprintf("node-%d", id))
		args := append(dist.jvmArgs(), "kafka.Kafka", filepath.Join(nodeDir, "server.properties"))
		p, err := startProc(fmt.Sprintf("%s node %d", name, id), filepath.Join(dir, fmt.Sprintf("node-%d.log", id)), nil, "java", args...)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
		s.bootstrap = append(s.bootstrap, fmt.Sprintf("127.0.0.1:%d", kafkaPorts[i]))
	}
	if err := waitUntil(ctx, fmt.Sprintf("%d Kafka broker(s) to be registered", cfg.nodes), 3*time.Minute, s.procs, brokersReady(ctx, s.bootstrap)); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// brokersReady succeeds once the metadata lists every broker of
// bootstrap: a KRaft broker appears there once it is unfenced.
func brokersReady(ctx context.Context, bootstrap []string) func() error {
	return func() error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
		if err != nil {
			return err
		}
		defer cl.Close()
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		brokers, err := kadm.NewClient(cl).ListBrokers(mctx)
		if err != nil {
			return err
		}
		if len(brokers) < len(bootstrap) {
			return fmt.Errorf("%d of %d brokers registered", len(brokers), len(bootstrap))
		}
		return nil
	}
}
