package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/test/harness"
)

// Consumer groups and deleted or re-created topics, with the real
// librdkafka (test/clients/group_topics.py): Debian's 2.0.2 and PyPI's
// confluent-kafka 2.16.1.
//
// librdkafka before 2.1.0 hangs in close() (rd_kafka_destroy) once a
// consumer has lost partitions of a deleted topic: a reference cycle in the
// client, which Apache Kafka 4.1 shows just the same and librdkafka 2.1.0
// fixed. So for 2.0.2 the tests check what the server does on close (the
// member leaves the group), not that close() returns.

const (
	groupTopicsRecords = 5 // records per partition in each step
	keepPartitions     = 4
	gonePartitions     = 2
	offsetInvalid      = -1001 // librdkafka: no committed offset
)

// rdkafkaClient is a confluent-kafka interpreter.
type rdkafkaClient struct {
	name   string
	python func(t *testing.T) string
	// closes says close() returns after the consumer lost partitions of a
	// deleted topic.
	closes bool
}

var rdkafkaClients = []rdkafkaClient{
	{"librdkafka-2.0.2", func(*testing.T) string { return python }, false},
	{"librdkafka-2.16", venvPython, true},
}

// groupTopicsCase is one run of the script.
type groupTopicsCase struct {
	scenario string // delete, recreate or regex
	strategy string
	members  int
	static   bool
}

func (c groupTopicsCase) name() string {
	n := fmt.Sprintf("%s/%s/%d-members", c.scenario, c.strategy, c.members)
	if c.static {
		n += "/static"
	}
	return n
}

// groupTopicsEvent is one line the script prints.
type groupTopicsEvent struct {
	Event       string             `json:"event"`
	What        string             `json:"what"`
	Version     string             `json:"version"`
	Errors      map[string]string  `json:"errors"`
	When        string             `json:"when"`
	Offsets     [][2]int64         `json:"offsets"`
	Values      []string           `json:"values"`
	Member      string             `json:"member"`
	Done        bool               `json:"done"`
	Secs        float64            `json:"secs"`
	Assignments map[string][][]any `json:"assignments"`
	Callbacks   map[string][][]any `json:"callbacks"`
	Records     int                `json:"records"`
	Topic       string             `json:"topic"`
}

// groupTopicsTarget is a standalone node or a 3-node cluster.
type groupTopicsTarget struct {
	addrs []string
	admin *kadm.Client
}

func standaloneTarget(t *testing.T) groupTopicsTarget {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	return groupTopicsTarget{addrs: []string{n.Addr()}, admin: kadm.NewClient(franzClient(t, n.Addr()))}
}

func clusterTarget(t *testing.T) groupTopicsTarget {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3})
	c.Start()
	return groupTopicsTarget{addrs: c.Addrs(), admin: kadm.NewClient(clusterClient(t, c))}
}

// runAll runs each case with each client, naming its topics and group
// with prefix.
func (g groupTopicsTarget) runAll(t *testing.T, cases []groupTopicsCase, prefix string) {
	for i, c := range cases {
		for j, client := range rdkafkaClients {
			t.Run(c.name()+"/"+client.name, func(t *testing.T) {
				g.run(t, client, c, fmt.Sprintf("%s%d-%d", prefix, i, j))
			})
		}
	}
}

// run runs one case with client and checks what the client saw and what
// the server kept.
func (g groupTopicsTarget) run(t *testing.T, client rdkafkaClient, c groupTopicsCase, id string) {
	py := client.python(t)
	needModule(t, py, "confluent_kafka")
	group, keep, gone := id+"-group", id+"-keep", id+"-gone"
	args := []string{c.scenario, "--bootstrap", strings.Join(g.addrs, ","), "--group", group,
		"--keep", keep, "--gone", gone, "--strategy", c.strategy, "--members", strconv.Itoa(c.members),
		"--count", strconv.Itoa(groupTopicsRecords),
		"--keep-partitions", strconv.Itoa(keepPartitions), "--gone-partitions", strconv.Itoa(gonePartitions)}
	if c.scenario == "regex" {
		args = append(args, "--pattern", "^"+id+"-.*")
	}
	if c.static {
		args = append(args, "--static")
	}
	closeTimeout := 30
	if !client.closes {
		closeTimeout = 3
	}
	args = append(args, "--close-timeout", strconv.Itoa(closeTimeout))
	events := runGroupTopics(t, py, args...)

	byWhat := map[string]groupTopicsEvent{}
	for _, e := range events {
		switch e.Event {
		case "libversion":
			t.Logf("%s runs librdkafka %s", client.name, e.Version)
		case "rebalanced":
			t.Logf("rebalanced (%s) in %.1fs: %v", e.What, e.Secs, e.Assignments)
			byWhat["rebalanced "+e.What] = e
		case "committed":
			if len(e.Errors) > 0 {
				t.Errorf("commit %s failed: %v", e.What, e.Errors)
			}
		case "offsets":
			byWhat["offsets "+e.When] = e
		case "recreated":
			byWhat["recreated"] = e
		case "closed":
			t.Logf("%s close() returned: %v, after %.1fs", e.Member, e.Done, e.Secs)
			if client.closes && !e.Done {
				t.Errorf("%s: close() did not return within %ds", e.Member, closeTimeout)
			}
		}
	}
	need := func(key string) groupTopicsEvent {
		t.Helper()
		e, ok := byWhat[key]
		if !ok {
			t.Fatalf("the script printed no %q event", key)
		}
		return e
	}
	need("rebalanced deleted topic dropped")
	if c.scenario == "regex" {
		need("rebalanced a new topic matching the pattern")
	} else {
		wantAll := func(e groupTopicsEvent, offset int64) {
			t.Helper()
			for _, po := range e.Offsets {
				if po[1] != offset {
					t.Errorf("offsets %s: %v, want %d for every partition", e.When, e.Offsets, offset)
					return
				}
			}
			if len(e.Offsets) != gonePartitions {
				t.Errorf("offsets %s: %v", e.When, e.Offsets)
			}
		}
		wantAll(need("offsets before the deletion"), groupTopicsRecords)
		// Kafka deletes the offsets of a deleted topic's partitions.
		wantAll(need("offsets after the deletion"), offsetInvalid)
	}
	if c.scenario == "recreate" {
		// The topic created again is consumed from its start, not from
		// the deleted topic's committed offsets.
		var want [][2]int64
		for p := range int64(gonePartitions) {
			for o := range int64(2 * groupTopicsRecords) {
				want = append(want, [2]int64{p, o})
			}
		}
		if got := need("recreated").Offsets; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("the topic created again was consumed at %v, want %v", got, want)
		}
	}

	// The server's side, through another client: the group's offsets are
	// those of the topics that exist, and the group is left (static
	// members once their sessions expire).
	ctx := harness.Context(t, 2*time.Minute)
	offsets, err := g.admin.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	wantOffsets := map[string]int64{}
	switch c.scenario {
	case "regex":
		for p := range int32(gonePartitions) {
			wantOffsets[fmt.Sprintf("%s-%d", gone, p)] = 2 * groupTopicsRecords
		}
	default:
		for p := range int32(keepPartitions) {
			wantOffsets[fmt.Sprintf("%s-%d", keep, p)] = 2 * groupTopicsRecords
		}
		if c.scenario == "recreate" {
			for p := range int32(gonePartitions) {
				wantOffsets[fmt.Sprintf("%s-%d", gone, p)] = 2 * groupTopicsRecords
			}
		}
	}
	gotOffsets := map[string]int64{}
	offsets.Each(func(o kadm.OffsetResponse) {
		gotOffsets[fmt.Sprintf("%s-%d", o.Topic, o.Partition)] = o.At
	})
	if fmt.Sprint(gotOffsets) != fmt.Sprint(wantOffsets) {
		t.Errorf("group %s has offsets %v, want %v", group, gotOffsets, wantOffsets)
	}
	harness.WaitFor(t, "the group to be left", time.Minute, func() error {
		described, err := g.admin.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		d := described[group]
		if d.Err != nil {
			return d.Err
		}
		if d.State != "Empty" || len(d.Members) != 0 {
			return fmt.Errorf("group %s is %s with %d members", group, d.State, len(d.Members))
		}
		return nil
	})
}

// runGroupTopics runs the script and returns its events; a failed step or
// exit fails the test with the script's output.
func runGroupTopics(t *testing.T, py string, args ...string) []groupTopicsEvent {
	t.Helper()
	cmd := scriptCmd(py, "group_topics.py", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("group_topics.py %v did not finish\nstdout:\n%s\nstderr:\n%s", args, stdout.String(), tail(stderr.String(), 4000))
	}
	var events []groupTopicsEvent
	// Scanned from a reader of its own, so stdout stays whole for the
	// failure messages below.
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e groupTopicsEvent
		if jerr := json.Unmarshal(sc.Bytes(), &e); jerr != nil {
			t.Fatalf("group_topics.py printed %q: %v", sc.Text(), jerr)
		}
		if e.Event == "failed" {
			t.Fatalf("group_topics.py %s: %s\nstderr:\n%s", args[0], e.What, tail(stderr.String(), 4000))
		}
		events = append(events, e)
	}
	if err != nil {
		t.Fatalf("group_topics.py %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), tail(stderr.String(), 4000))
	}
	return events
}

// TestGroupTopicsStandalone: every assignor, dynamic and static members,
// a topic deleted while subscribed, deleted and created again, and a
// pattern subscription that matches a topic created later, on one node.
func TestGroupTopicsStandalone(t *testing.T) {
	g := standaloneTarget(t)
	cases := []groupTopicsCase{
		{"recreate", "cooperative-sticky", 1, false},
		{"recreate", "range", 2, false},
		{"recreate", "roundrobin", 2, true},
		{"recreate", "cooperative-sticky", 2, true},
		{"regex", "cooperative-sticky", 2, false},
		{"regex", "range", 1, false},
	}
	g.runAll(t, cases, "gt-s")
}

// TestGroupTopicsCluster: the same on three nodes, where the group's
// coordinator, the deleted topic's leaders and the node that deletes it
// differ.
func TestGroupTopicsCluster(t *testing.T) {
	g := clusterTarget(t)
	cases := []groupTopicsCase{
		{"recreate", "cooperative-sticky", 1, false},
		{"recreate", "range", 2, true},
		{"regex", "cooperative-sticky", 2, false},
	}
	g.runAll(t, cases, "gt-c")
}

// TestMetadataListsUnknownTopicsLast: Kafka answers a Metadata request
// with the topics it has first and the unknown ones after them, whatever
// the request's order. librdkafka 2.0.2 depends on it: with the unknown
// topic first, its short-lived cache entry for the topic is evicted before
// the consumer looks for it, and a consumer subscribed to a deleted topic
// postponed its rejoin for ever.
func TestMetadataListsUnknownTopicsLast(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	cl := franzClient(t, n.Addr())
	createTopic(t, cl, "meta-order-a", 1, 1)
	createTopic(t, cl, "meta-order-b", 1, 1)
	conn, err := dialKafka(n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.c.Close()
	// From v4, as consumers send it: without auto-creation.
	for _, version := range []int16{4, 9, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = false
		for _, name := range []string{"meta-order-missing-1", "meta-order-b", "meta-order-missing-2", "meta-order-a"} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
		r, err := conn.do(req, version, 10*time.Second)
		if err != nil {
			t.Fatalf("Metadata v%d: %v", version, err)
		}
		resp := r.(*kmsg.MetadataResponse)
		var got []string
		for _, rt := range resp.Topics {
			code := "ok"
			if rt.ErrorCode != 0 {
				code = kerr.ErrorForCode(rt.ErrorCode).(*kerr.Error).Message
			}
			got = append(got, *rt.Topic+":"+code)
		}
		want := []string{"meta-order-b:ok", "meta-order-a:ok",
			"meta-order-missing-1:UNKNOWN_TOPIC_OR_PARTITION", "meta-order-missing-2:UNKNOWN_TOPIC_OR_PARTITION"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("Metadata v%d answered %v, want %v", version, got, want)
		}
	}
}

// TestOffsetsOfADeletedTopic, with franz-go's admin client: deleting a
// topic deletes every group's committed offsets of it, and OffsetDelete
// answers UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist
// (the deleted topic's, a partition past the end), as Kafka 4.1 does,
// unless the group itself is unknown.
func TestOffsetsOfADeletedTopic(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	// Not franzClient: kadm resolves committed topics through the client's
	// metadata, which then refreshes them, and a client allowed to
	// auto-create would create od-gone again after its deletion.
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	createTopic(t, cl, "od-gone", 2, 1)
	createTopic(t, cl, "od-keep", 1, 1)
	ctx := harness.Context(t, time.Minute)
	var commit kadm.Offsets
	commit.Add(kadm.Offset{Topic: "od-gone", Partition: 0, At: 3, LeaderEpoch: -1})
	commit.Add(kadm.Offset{Topic: "od-gone", Partition: 1, At: 4, LeaderEpoch: -1})
	commit.Add(kadm.Offset{Topic: "od-keep", Partition: 0, At: 5, LeaderEpoch: -1})
	for _, group := range []string{"od-group-a", "od-group-b"} {
		res, err := adm.CommitOffsets(ctx, group, commit)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("commit for %s: %v", group, err)
		}
	}
	res, err := adm.DeleteTopics(ctx, "od-gone")
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("delete od-gone: %v", err)
	}
	for _, group := range []string{"od-group-a", "od-group-b"} {
		harness.WaitFor(t, "the deleted topic's offsets of "+group+" to go", 30*time.Second, func() error {
			offsets, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				return err
			}
			got := map[string]int64{}
			offsets.Each(func(o kadm.OffsetResponse) { got[fmt.Sprintf("%s-%d", o.Topic, o.Partition)] = o.At })
			if fmt.Sprint(got) != fmt.Sprint(map[string]int64{"od-keep-0": 5}) {
				return fmt.Errorf("offsets %v", got)
			}
			return nil
		})
	}

	deleted, err := adm.DeleteOffsets(ctx, "od-group-a", kadm.TopicsSet{"od-gone": {0: {}, 1: {}}, "od-keep": {0: {}, 7: {}}})
	if err != nil {
		t.Fatalf("OffsetDelete: %v", err)
	}
	want := map[string]error{
		"od-gone-0": kerr.UnknownTopicOrPartition, "od-gone-1": kerr.UnknownTopicOrPartition,
		"od-keep-0": nil, "od-keep-7": kerr.UnknownTopicOrPartition,
	}
	got := map[string]error{}
	for topic, ps := range deleted {
		for p, err := range ps {
			got[fmt.Sprintf("%s-%d", topic, p)] = err
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("OffsetDelete answered %v, want %v", got, want)
	}
	if _, err := adm.DeleteOffsets(ctx, "od-no-such-group", kadm.TopicsSet{"od-gone": {0: {}}}); err != kerr.GroupIDNotFound {
		t.Errorf("OffsetDelete of an unknown group with only unknown partitions: %v, want GROUP_ID_NOT_FOUND", err)
	}
}
