package test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

func franzClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return seedsClient(t, []string{addr}, opts...)
}

// seedsClient is a franz-go client bootstrapped from every address in seeds.
func seedsClient(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// franzProduceScenario produces the scenario's records with franz-go's
// default producer (idempotent, acks=all), through the target's kill.
func franzProduceScenario(t *testing.T, s *scenarioTarget, topic string) {
	t.Helper()
	ctx := harness.Context(t, 2*time.Minute)
	p := seedsClient(t, s.addrs(), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	defer p.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var acked atomic.Int64
	send := func(from, to int) {
		for i := from; i < to; i++ {
			wg.Add(1)
			p.Produce(ctx, &kgo.Record{
				Key:     []byte(msgKey(i)),
				Value:   []byte(msgValue(i)),
				Headers: []kgo.RecordHeader{{Key: "idx", Value: []byte(strconv.Itoa(i))}},
			}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				} else {
					acked.Add(1)
				}
				wg.Done()
			})
		}
	}
	wait := func(int) {
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
		}
	}
	s.produceInSteps(true, send, wait, func() int { return int(acked.Load()) })
}

func toReceived(r *kgo.Record) received {
	out := received{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)}
	for _, h := range r.Headers {
		if h.Key == "idx" {
			out.Header = string(h.Value)
		}
	}
	return out
}

// groupMember is a consumer of the scenario group that tracks its
// assignment.
type groupMember struct {
	c        *kgo.Client
	mu       sync.Mutex
	assigned map[int32]bool
}

func newGroupMember(t *testing.T, seeds []string, topic, group string) *groupMember {
	m := &groupMember{assigned: map[int32]bool{}}
	m.c = seedsClient(t, seeds,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			for _, p := range a[topic] {
				m.assigned[p] = true
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			for _, p := range r[topic] {
				delete(m.assigned, p)
			}
			m.mu.Unlock()
		}),
	)
	return m
}

func (m *groupMember) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.assigned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// consumeGroup has the members poll in turn until want records arrived,
// taking no more than want, and returns them. With commit, each member
// commits exactly what it took.
func consumeGroup(t *testing.T, members []*groupMember, want int, commit bool) []received {
	t.Helper()
	ctx := harness.Context(t, 2*time.Minute)
	// Wait until the group is stable with every partition owned, so no
	// rebalance moves records between members while counting.
	harness.WaitFor(t, "the group to assign all 3 partitions", time.Minute, func() error {
		total := 0
		for _, m := range members {
			total += len(m.partitions()) // kgo joins in the background
		}
		if total != 3 {
			return fmt.Errorf("%d partitions assigned", total)
		}
		for _, m := range members {
			if len(m.partitions()) == 0 {
				return errors.New("a member has no partitions")
			}
		}
		return nil
	})
	var got []received
	for len(got) < want {
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d before the deadline", len(got), want)
		}
		for _, m := range members {
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fs := m.c.PollRecords(pctx, want-len(got))
			cancel()
			fs.EachError(func(topic string, p int32, err error) {
				switch {
				case errors.Is(err, context.DeadlineExceeded):
				case errors.Is(err, syscall.ECONNREFUSED) || kerr.IsRetriable(err):
					// A node is down (cluster mode): franz-go reports what it
					// meets and carries on.
					t.Logf("fetch %s/%d: %v (franz-go retries)", topic, p, err)
				default:
					t.Fatalf("fetch %s/%d: %v", topic, p, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) { got = append(got, toReceived(r)) })
			if len(got) >= want {
				break
			}
		}
	}
	if commit {
		for _, m := range members {
			if err := m.c.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
	}
	return got
}

// TestFranzGoScenario runs the client scenario with franz-go.
func TestFranzGoScenario(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode scenarioMode) {
		topic, group := "franz-e2e", "franz-group"
		s := newScenarioTarget(t, mode, topic)
		ctx := harness.Context(t, 3*time.Minute)
		adm := kadm.NewClient(seedsClient(t, s.addrs()))
		if _, err := adm.CreateTopic(ctx, 3, s.replication(), nil, topic); err != nil {
			t.Fatal(err)
		}
		adm.Close()
		franzProduceScenario(t, s, topic)
		s.afterProduce()
		s.checkCodec(codecSnappy)

		members := []*groupMember{newGroupMember(t, s.addrs(), topic, group), newGroupMember(t, s.addrs(), topic, group)}
		first := consumeGroup(t, members, scenarioFirst, true)
		for _, m := range members {
			m.c.Close()
		}

		s.betweenPasses(group)

		members = []*groupMember{newGroupMember(t, s.addrs(), topic, group), newGroupMember(t, s.addrs(), topic, group)}
		resumed := consumeGroup(t, members, scenarioMessages-scenarioFirst, true)
		// Nothing beyond the other 4,000 arrives.
		for _, m := range members {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			if fs := m.c.PollRecords(pctx, -1); fs.NumRecords() > 0 {
				t.Fatalf("%d more records after the remaining %d", fs.NumRecords(), scenarioMessages-scenarioFirst)
			}
			cancel()
			m.c.Close()
		}
		fresh := consumeGroup(t, []*groupMember{newGroupMember(t, s.addrs(), topic, "franz-fresh")}, scenarioMessages, false)
		checkScenario(t, first, resumed, fresh)

		// The admin client sees the topic, its configs and the groups.
		adm = kadm.NewClient(seedsClient(t, s.addrs()))
		defer adm.Close()
		td, err := adm.ListTopics(ctx, topic)
		if err != nil || len(td[topic].Partitions) != 3 {
			t.Fatalf("list topics: %v %+v", err, td)
		}
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := rc.On(topic, nil); err != nil || len(c.Configs) == 0 {
			t.Fatalf("describe configs: %v %+v", err, c)
		}
		groups, err := adm.ListGroups(ctx)
		if err != nil || !slices.Contains(groups.Groups(), group) {
			t.Fatalf("list groups: %v %v", err, groups.Groups())
		}
		dg, err := adm.DescribeGroups(ctx, group)
		if err != nil || dg[group].Err != nil {
			t.Fatalf("describe group: %v %v", err, dg[group].Err)
		}
		lag, err := adm.Lag(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if l := lag[group].Lag.Total(); l != 0 {
			t.Fatalf("group lag %d after consuming everything, want 0", l)
		}
		s.checkOffsets(group)
	})
}

// TestFranzGoAdmin covers topic administration through kadm.
func TestFranzGoAdmin(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	ctx := harness.Context(t, time.Minute)
	// No auto-creation here: listing a topic must not create it.
	raw, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(raw)
	defer adm.Close()

	// Validation failures carry their Kafka error codes.
	if _, err := adm.CreateTopic(ctx, 0, 1, nil, "bad-partitions"); !errors.Is(err, kerr.InvalidPartitions) {
		t.Fatalf("0 partitions: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "bad-rf"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 3 on one node: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "bad/name"); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v", err)
	}
	bad := "compact"
	badPolicy := "archive"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &badPolicy}, "bad-config"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("cleanup.policy=archive: %v", err)
	}
	// validate only creates nothing.
	if _, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "only-validated"); err != nil {
		t.Fatal(err)
	}
	if td, _ := adm.ListTopics(ctx, "only-validated"); td["only-validated"].Err == nil {
		t.Fatal("validate-only created the topic")
	}

	ret := "3600000"
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &ret}, "admin-t"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "admin-t"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create twice: %v", err)
	}
	// Configs: incremental set and delete, then describe.
	seg := "1048576"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: &seg}, {Op: kadm.DeleteConfig, Name: "retention.ms"}}, "admin-t"); err != nil {
		t.Fatal(err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "admin-t")
	if err != nil {
		t.Fatal(err)
	}
	cfgs, _ := rc.On("admin-t", nil)
	vals := map[string]string{}
	for _, c := range cfgs.Configs {
		vals[c.Key] = c.MaybeValue()
	}
	if vals["segment.bytes"] != "1048576" || vals["retention.ms"] != "604800000" {
		t.Fatalf("configs after alter: %v", vals)
	}
	if res, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &bad}}, "admin-t"); err != nil || !errors.Is(res[0].Err, kerr.InvalidConfig) {
		t.Fatalf("retention.ms=compact: %v %+v", err, res)
	}
	// Partitions grow, never shrink.
	if _, err := adm.CreatePartitions(ctx, 2, "admin-t"); err != nil {
		t.Fatal(err)
	}
	if res, err := adm.UpdatePartitions(ctx, 3, "admin-t"); err != nil || !errors.Is(res["admin-t"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v %+v", err, res)
	}
	td, _ := adm.ListTopics(ctx, "admin-t")
	if len(td["admin-t"].Partitions) != 4 {
		t.Fatalf("%d partitions after growing to 4", len(td["admin-t"].Partitions))
	}
	// Records: produce, delete records, check the low watermark.
	cl := franzClient(t, n.Addr(), kgo.DefaultProduceTopic("admin-t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "admin-t", Partition: 0, At: 7})
	dr, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup("admin-t", 0); r.Err != nil || r.LowWatermark != 7 {
		t.Fatalf("delete records: %+v", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "admin-t")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("admin-t", 0); o.Offset != 7 {
		t.Fatalf("start offset %d after delete records", o.Offset)
	}
	// Delete the topic.
	if _, err := adm.DeleteTopics(ctx, "admin-t"); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "the topic to be gone", 10*time.Second, func() error {
		td, err := adm.ListTopics(ctx, "admin-t")
		if err != nil {
			return err
		}
		if td["admin-t"].Err == nil {
			return errors.New("still listed")
		}
		return nil
	})
}

// kadmCreate creates a topic with partitions partitions and replication 1.
func kadmCreate(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(franzClient(t, addr))
	defer adm.Close()
	if _, err := adm.CreateTopic(harness.Context(t, time.Minute), partitions, 1, nil, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}
