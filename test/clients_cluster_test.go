package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// scenarioMode is what a client scenario runs against.
type scenarioMode string

const (
	// standaloneMode: one node, SIGKILLed and restarted between the two
	// passes of the group.
	standaloneMode scenarioMode = "standalone"
	// clusterMode: three nodes, replication factor 3. The leader of the
	// topic's partition 0 is SIGKILLed while the client produces (it is
	// restarted once the produce phase is over), and the group's coordinator
	// is SIGKILLed between the two passes of the group (it stays down).
	clusterMode scenarioMode = "cluster"
)

// forEachMode runs a client scenario as one subtest per mode.
func forEachMode(t *testing.T, run func(t *testing.T, mode scenarioMode)) {
	for _, m := range []scenarioMode{standaloneMode, clusterMode} {
		t.Run(string(m), func(t *testing.T) { run(t, m) })
	}
}

// scenarioTarget is the server a client scenario runs against, and the
// faults it meets at each step.
type scenarioTarget struct {
	t       *testing.T
	topic   string
	node    *harness.Node    // standalone
	cluster *harness.Cluster // cluster
	// killed is the node killed while the client produced (cluster), 0
	// until then.
	killed int
}

func newScenarioTarget(t *testing.T, mode scenarioMode, topic string) *scenarioTarget {
	t.Helper()
	s := &scenarioTarget{t: t, topic: topic}
	switch mode {
	case standaloneMode:
		s.node = harness.NewNode(t, harness.NodeOptions{})
		s.node.Start()
	case clusterMode:
		s.cluster = harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
		s.cluster.Start()
	default:
		t.Fatalf("unknown scenario mode %q", mode)
	}
	return s
}

// addrs lists every node, running or not, as a client's bootstrap list
// would.
func (s *scenarioTarget) addrs() []string {
	if s.cluster != nil {
		return s.cluster.Addrs()
	}
	return []string{s.node.Addr()}
}

func (s *scenarioTarget) bootstrap() string { return strings.Join(s.addrs(), ",") }

// replication is the scenario topic's replication factor.
func (s *scenarioTarget) replication() int16 {
	if s.cluster != nil {
		return 3
	}
	return 1
}

// killAt is how many records the producer has had acknowledged when the
// leader is killed, 0 for no kill. An idempotent producer loses its leader
// with a quarter acknowledged and the next quarter in its hands (in flight
// or queued), and produces the rest after the kill. A producer that is not
// idempotent may write a record twice when it resends one whose
// acknowledgement was lost with the leader (as with Kafka): it loses its
// leader once every record is acknowledged, still open, so the failover
// falls between the produce and the group.
func (s *scenarioTarget) killAt(idempotent bool) int {
	switch {
	case s.cluster == nil:
		return 0
	case idempotent:
		return scenarioMessages / 4
	default:
		return scenarioMessages
	}
}

// running is a client of the nodes that are up.
func (s *scenarioTarget) running(opts ...kgo.Opt) *kgo.Client {
	s.t.Helper()
	var addrs []string
	if s.cluster == nil {
		addrs = []string{s.node.Addr()}
	} else {
		for _, n := range s.cluster.Running() {
			addrs = append(addrs, n.Addr())
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	return cl
}

// killLeader SIGKILLs the leader of the topic's partition 0 while the client
// produces (cluster mode).
func (s *scenarioTarget) killLeader() {
	s.t.Helper()
	if s.cluster == nil {
		s.t.Fatal("a standalone scenario has no leader to kill")
	}
	if s.killed != 0 {
		s.t.Fatalf("the leader was already killed (node %d)", s.killed)
	}
	lead := waitLeader(s.t, s.cluster, s.topic, 0, -1)
	s.cluster.Node(int(lead)).Kill()
	s.killed = int(lead)
	s.t.Logf("SIGKILLed node %d, leader of %s/0, while the client produced", lead, s.topic)
}

// afterProduce checks that the leader was killed during the produce phase
// and restarts it (cluster mode).
func (s *scenarioTarget) afterProduce() {
	s.t.Helper()
	if s.cluster == nil {
		return
	}
	if s.killed == 0 {
		s.t.Fatal("the produce phase ended without the leader being killed")
	}
	lead := waitLeader(s.t, s.cluster, s.topic, 0, int32(s.killed))
	s.t.Logf("%s/0 is led by node %d; restarting node %d", s.topic, lead, s.killed)
	s.cluster.Node(s.killed).Start()
}

// betweenPasses is the fault between the two passes of the group: the
// standalone node is SIGKILLed and restarted; in a cluster the group's
// coordinator is SIGKILLed and stays down, so the group resumes on the
// offsets a new coordinator loaded.
func (s *scenarioTarget) betweenPasses(group string) {
	s.t.Helper()
	if s.cluster == nil {
		s.node.Kill()
		s.node.Start()
		return
	}
	coord := s.coordinator(group)
	s.cluster.Node(int(coord)).Kill()
	s.t.Logf("SIGKILLed node %d, coordinator of group %s, between the group's passes", coord, group)
}

// coordinator asks the running nodes which node coordinates group.
func (s *scenarioTarget) coordinator(group string) int32 {
	s.t.Helper()
	cl := s.running()
	defer cl.Close()
	var coord int32
	harness.WaitFor(s.t, "the coordinator of group "+group, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, ok := kadm.NewClient(cl).FindGroupCoordinators(ctx, group)[group]
		if !ok {
			return fmt.Errorf("no answer for group %s", group)
		}
		if r.Err != nil {
			return r.Err
		}
		coord = r.NodeID
		return nil
	})
	return coord
}

// checkOffsets checks what the scenario left on the server: the topic holds
// exactly the scenario's records (an idempotent producer wrote none twice
// through the failover), and group committed each partition's end offset.
func (s *scenarioTarget) checkOffsets(group string) {
	s.t.Helper()
	cl := s.running()
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var ends kadm.ListedOffsets
	var committed kadm.OffsetResponses
	// A partition may be between leaders (a restarted node takes its
	// preferred leaderships back) or the coordinator still loading.
	harness.WaitFor(s.t, "the end offsets of "+s.topic+" and the offsets of "+group, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if ends, err = adm.ListEndOffsets(ctx, s.topic); err == nil {
			err = ends.Error()
		}
		if err != nil {
			return err
		}
		if committed, err = adm.FetchOffsets(ctx, group); err == nil {
			err = committed.Error()
		}
		return err
	})
	total := 0
	ends.Each(func(o kadm.ListedOffset) {
		total += int(o.Offset)
		c, ok := committed.Lookup(s.topic, o.Partition)
		if !ok || c.At != o.Offset {
			s.t.Errorf("group %s committed %d on %s/%d (found %v), whose end offset is %d", group, c.At, s.topic, o.Partition, ok, o.Offset)
		}
	})
	if total != scenarioMessages {
		s.t.Errorf("%s holds %d records, %d were produced", s.topic, total, scenarioMessages)
	}
}

// Record batch codecs (the attributes' low bits).
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

// checkCodec reads the first thousand records of the topic back and checks
// that they are stored in batches compressed with codec, as the client sent
// them (most of them: librdkafka sends a batch uncompressed when
// compressing does not make it smaller).
func (s *scenarioTarget) checkCodec(codec uint8) {
	s.t.Helper()
	cl := s.running(kgo.ConsumeTopics(s.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	ctx := harness.Context(s.t, time.Minute)
	got, with := 0, 0
	for got < 1000 && ctx.Err() == nil {
		cl.PollRecords(ctx, 1000-got).EachRecord(func(r *kgo.Record) {
			got++
			switch c := r.Attrs.CompressionType(); c {
			case codec:
				with++
			case codecNone:
			default:
				s.t.Fatalf("record at %d/%d stored with codec %d, sent with %d", r.Partition, r.Offset, c, codec)
			}
		})
	}
	if got < 1000 || with < got/2 {
		s.t.Fatalf("read %d records of %s, %d of them compressed with codec %d", got, s.topic, with, codec)
	}
}

// produceInSteps produces the scenario's records 0..scenarioMessages-1 as
// the Python scripts' produce_in_steps does: send hands records [from, to)
// to the client and wait returns once the first n records handed over are
// acknowledged (failing the test otherwise). With a kill, the first killAt
// records are acknowledged, the next killAt are handed over and the leader
// is killed while the client sends them, and the rest follow. acked, if the
// client tells, counts the records acknowledged so far.
func (s *scenarioTarget) produceInSteps(idempotent bool, send func(from, to int), wait func(n int), acked func() int) {
	s.t.Helper()
	k := s.killAt(idempotent)
	if k == 0 {
		send(0, scenarioMessages)
		wait(scenarioMessages)
		return
	}
	first := min(k, scenarioMessages)
	send(0, first)
	wait(first)
	second := min(2*k, scenarioMessages)
	send(first, second)
	s.killLeader()
	if acked != nil {
		s.t.Logf("%d of the %d records handed over were acknowledged when the leader was killed", acked(), second)
	}
	send(second, scenarioMessages)
	wait(scenarioMessages)
}
