package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// The nemesis: a randomized run of fixed length (CHRONIK_NEMESIS_DURATION,
// default 2m; seed CHRONIK_NEMESIS_SEED, default the clock, always
// printed) in which idempotent producers, a consumer group and a plain
// reader run while faults are injected one after another: SIGKILL and
// restart, SIGTERM (which hands leaderships over) and restart, SIGSTOP and
// SIGCONT, a refused-connection isolation and a silent blackhole of one
// node, each healed after a random while. Every send and every poll is
// recorded and checked at the end (see checkHistory). `make nemesis` runs
// a long one.

// observation is one record a consumer got.
type observation struct {
	consumer string
	epoch    int // the consumer's assignment generation
	p        int32
	o        int64
	value    string
	at       time.Time
}

// history is everything the clients saw.
type history struct {
	mu     sync.Mutex
	obs    []observation
	events []string // faults and their healing, timestamped
	start  time.Time
}

func (h *history) event(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, fmt.Sprintf("%8.3fs ", time.Since(h.start).Seconds())+fmt.Sprintf(format, args...))
}

func (h *history) observe(o observation) {
	h.mu.Lock()
	h.obs = append(h.obs, o)
	h.mu.Unlock()
}

// logEntry is what the final read found at one offset.
type logEntry struct {
	value string
}

// checkHistory checks the recorded history against the final log (by
// partition and offset) and returns what is wrong:
//   - every acknowledged produce is in the log, once, at the partition and
//     offset it was acknowledged with (no acknowledged record lost);
//   - no value of the producers is in the log twice (no duplicates);
//   - every record any consumer saw is in the final log at the same
//     partition and offset (no record seen that is later gone), so all
//     consumers saw the same record at each offset;
//   - each consumer's offsets of a partition increase strictly within one
//     assignment generation (monotonic; a rebalance may rewind to the
//     committed offset);
//   - the consumers between them saw every offset of the final log, and
//     the reader (a consumer of its own) saw all of it (nobody stuck).
func checkHistory(acks []*ack, obs []observation, final map[int32][]logEntry, readers []string) []string {
	var bad []string
	at := map[string][][2]int64{}
	for p, ents := range final {
		for o, e := range ents {
			at[e.value] = append(at[e.value], [2]int64{int64(p), int64(o)})
		}
	}
	for _, a := range acks {
		ps := at[a.value]
		if len(ps) > 1 {
			bad = append(bad, fmt.Sprintf("duplicate: %s is in the log %d times at %v", a.value, len(ps), ps))
		}
		if a.err != nil || a.done.IsZero() {
			continue
		}
		switch {
		case len(ps) == 0:
			bad = append(bad, fmt.Sprintf("lost: %s acknowledged at %d/%d is not in the log", a.value, a.partition, a.offset))
		case ps[0] != [2]int64{int64(a.partition), a.offset}:
			bad = append(bad, fmt.Sprintf("moved: %s acknowledged at %d/%d is in the log at %v", a.value, a.partition, a.offset, ps[0]))
		}
	}
	type key struct {
		consumer string
		epoch    int
		p        int32
	}
	last := map[key]int64{}
	seen := map[int32]map[int64]bool{}
	seenBy := map[string]map[int32]map[int64]bool{}
	for _, o := range obs {
		ents := final[o.p]
		if o.o < 0 || o.o >= int64(len(ents)) || ents[o.o].value != o.value {
			bad = append(bad, fmt.Sprintf("gone: %s saw %q at %d/%d, the log has something else there", o.consumer, o.value, o.p, o.o))
		}
		k := key{o.consumer, o.epoch, o.p}
		if prev, ok := last[k]; ok && o.o <= prev {
			bad = append(bad, fmt.Sprintf("not monotonic: %s saw %d/%d after %d/%d in generation %d", o.consumer, o.p, o.o, o.p, prev, o.epoch))
		}
		last[k] = o.o
		if seen[o.p] == nil {
			seen[o.p] = map[int64]bool{}
		}
		seen[o.p][o.o] = true
		if seenBy[o.consumer] == nil {
			seenBy[o.consumer] = map[int32]map[int64]bool{}
		}
		if seenBy[o.consumer][o.p] == nil {
			seenBy[o.consumer][o.p] = map[int64]bool{}
		}
		seenBy[o.consumer][o.p][o.o] = true
	}
	for p, ents := range final {
		for o := range ents {
			if !seen[p][int64(o)] {
				bad = append(bad, fmt.Sprintf("stuck: no consumer got %d/%d", p, o))
				break
			}
		}
		for _, r := range readers {
			if n := len(seenBy[r][p]); n != len(ents) {
				bad = append(bad, fmt.Sprintf("stuck: %s got %d of the %d records of partition %d", r, n, len(ents), p))
			}
		}
	}
	return bad
}

// TestCheckHistory: the checker finds what it promises to.
func TestCheckHistory(t *testing.T) {
	now := time.Now()
	final := map[int32][]logEntry{0: {{"a"}, {"b"}, {"c"}}}
	acks := []*ack{{value: "a", offset: 0, done: now}, {value: "b", offset: 1, done: now}, {value: "c", offset: 2, done: now}}
	obs := []observation{{consumer: "r", p: 0, o: 0, value: "a"}, {consumer: "r", p: 0, o: 1, value: "b"}, {consumer: "r", p: 0, o: 2, value: "c"}}
	if bad := checkHistory(acks, obs, final, []string{"r"}); len(bad) != 0 {
		t.Fatalf("a good history: %v", bad)
	}
	cases := []struct {
		name  string
		acks  []*ack
		obs   []observation
		final map[int32][]logEntry
		want  string
	}{
		{"lost", append(slices.Clone(acks), &ack{value: "d", offset: 3, done: now}), obs, final, "lost:"},
		{"moved", []*ack{{value: "a", offset: 1, done: now}}, obs, final, "moved:"},
		{"duplicate", acks, obs, map[int32][]logEntry{0: {{"a"}, {"b"}, {"c"}, {"a"}}}, "duplicate:"},
		{"gone", acks, append(slices.Clone(obs), observation{consumer: "g", p: 0, o: 1, value: "x"}), final, "gone:"},
		{"not monotonic", acks, append(slices.Clone(obs), observation{consumer: "r", p: 0, o: 1, value: "b"}), final, "not monotonic:"},
		{"stuck", acks, obs[:2], final, "stuck:"},
	}
	for _, c := range cases {
		bad := checkHistory(c.acks, c.obs, c.final, []string{"r"})
		if len(bad) == 0 || !strings.HasPrefix(bad[0], c.want) {
			t.Errorf("%s: got %v", c.name, bad)
		}
	}
}

// consumerLoop polls until ctx ends, recording every record.
func consumerLoop(ctx context.Context, h *history, name string, cl *kgo.Client, epoch *int, mu *sync.Mutex) {
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		mu.Lock()
		e := *epoch
		mu.Unlock()
		fs.EachRecord(func(r *kgo.Record) {
			h.observe(observation{consumer: name, epoch: e, p: r.Partition, o: r.Offset, value: string(r.Value), at: time.Now()})
		})
	}
}

func nemesisDuration(t *testing.T) time.Duration {
	d := 2 * time.Minute
	if s := os.Getenv("CHRONIK_NEMESIS_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("CHRONIK_NEMESIS_DURATION: %v", err)
		}
	}
	return d
}

func TestChaosNemesis(t *testing.T) {
	dur := nemesisDuration(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHRONIK_NEMESIS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CHRONIK_NEMESIS_SEED: %v", err)
		}
	}
	t.Logf("nemesis seed %d, duration %v (rerun: CHRONIK_NEMESIS_SEED=%d CHRONIK_NEMESIS_DURATION=%v)", seed, dur, seed, dur)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const topic = "nemesis"
	const parts = 3
	c := newChaos(t, "", topic, parts, nil)
	h := &history{start: time.Now()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nemesis seed %d; fault timeline:\n%s", seed, strings.Join(h.events, "\n"))
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	// A consumer group of two and one reader of all partitions.
	var readers []string
	for i := range 3 {
		name := fmt.Sprintf("group-%d", i)
		epoch := 0
		var mu sync.Mutex
		bump := func(context.Context, *kgo.Client, map[string][]int32) { mu.Lock(); epoch++; mu.Unlock() }
		opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.MetadataMinAge(200 * time.Millisecond)}
		if i < 2 {
			opts = append(opts, kgo.ConsumerGroup("nemesis-group"), kgo.OnPartitionsAssigned(bump),
				kgo.OnPartitionsRevoked(bump), kgo.OnPartitionsLost(bump), kgo.SessionTimeout(10*time.Second))
		} else {
			name = "reader"
			readers = append(readers, name)
		}
		cl := clusterClient(t, c.Cluster, opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			consumerLoop(ctx, h, name, cl, &epoch, &mu)
		}()
	}
	w1 := startWorkload(t, c.Cluster, topic, "a", 4*time.Millisecond)
	w2 := startWorkload(t, c.Cluster, topic, "b", 4*time.Millisecond)

	// One fault at a time, healed before the next; the cluster keeps a
	// quorum except while a fault and a restart overlap. "reassign" is a
	// membership change: a partition's group drops a node (a
	// reassignment to the other two) and takes it back as a new member.
	faults := []string{"kill", "sigterm", "pause", "isolate", "blackhole", "reassign"}
	adm := kadm.NewClient(clusterClient(t, c.Cluster))
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		id := 1 + rng.IntN(3)
		n := c.Node(id)
		f := faults[rng.IntN(len(faults))]
		hold := time.Duration(1000+rng.IntN(4000)) * time.Millisecond
		h.event("%s node %d for %v", f, id, hold)
		var moved int32
		var replicas []int32
		switch f {
		case "reassign":
			moved = rng.Int32N(parts)
			replicas = partitionReplicas(t, adm, topic, moved)
			reassign(t, adm, topic, moved, slices.DeleteFunc(slices.Clone(replicas), func(r int32) bool { return r == int32(id) }))
		case "kill":
			n.Kill()
		case "sigterm":
			if err := n.Stop(30 * time.Second); err != nil {
				t.Errorf("SIGTERM of node %d: %v", id, err)
			}
		case "pause":
			n.Pause()
		case "isolate":
			c.Isolate(id)
		case "blackhole":
			c.Blackhole(id)
		}
		time.Sleep(hold) // how long the fault lasts, not a wait for a condition
		switch f {
		case "kill", "sigterm":
			n.Start()
		case "pause":
			n.Resume()
		case "reassign":
			reassign(t, adm, topic, moved, replicas)
		default:
			c.Heal()
		}
		h.event("healed node %d", id)
		// Let the cluster settle: every partition led with a full ISR.
		for p := range int32(parts) {
			waitFullISR(t, c.Cluster, topic, p, 3)
		}
		h.event("settled")
	}
	w1.Stop()
	w2.Stop()
	h.event("producers stopped: %d + %d acknowledged", w1.acked(), w2.acked())

	// Final log, read fresh from the start; then the consumers must have
	// caught up with it.
	recs := readAll(t, c.Cluster, topic)
	final := map[int32][]logEntry{}
	for _, r := range recs {
		final[r.Partition] = append(final[r.Partition], logEntry{string(r.Value)})
	}
	harness.WaitFor(t, "the consumers to catch up", 60*time.Second, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, name := range append([]string{"reader"}, "group") {
			got := map[int32]int64{}
			for _, o := range h.obs {
				if strings.HasPrefix(o.consumer, name) {
					got[o.p] = max(got[o.p], o.o+1)
				}
			}
			for p, ents := range final {
				if got[p] < int64(len(ents)) {
					return fmt.Errorf("%s at %d of %d on partition %d", name, got[p], len(ents), p)
				}
			}
		}
		return nil
	})
	cancel()
	wg.Wait()

	acks := append(w1.history(), w2.history()...)
	h.mu.Lock()
	obs := slices.Clone(h.obs)
	h.mu.Unlock()
	bad := checkHistory(acks, obs, final, readers)
	acked, unacked := 0, 0
	for _, a := range acks {
		if a.err == nil && !a.done.IsZero() {
			acked++
		} else {
			unacked++
		}
	}
	timeline := strings.Join(h.events, "\n")
	t.Logf("FIGURE %s: seed %d, %v, %d faults (%d membership changes); produces acknowledged %d, failed %d; log holds %d; consumer observations %d; violations %d",
		t.Name(), seed, dur, strings.Count(timeline, "healed"), strings.Count(timeline, "reassign node"), acked, unacked, len(recs), len(obs), len(bad))
	if len(bad) > 0 {
		t.Errorf("nemesis seed %d: %d violations; first ones:\n%s", seed, len(bad), strings.Join(bad[:min(10, len(bad))], "\n"))
		t.Logf("history excerpt around the first violation:\n%s", excerpt(bad[0], acks, obs))
	}
}

// excerpt prints the sends and polls naming the value or partition/offset
// a violation is about, at most 20 of them.
func excerpt(violation string, acks []*ack, obs []observation) string {
	var out []string
	for _, a := range acks {
		if strings.Contains(violation, a.value+" ") {
			out = append(out, fmt.Sprintf("send %s: acknowledged at %d/%d (err %v) sent %s done %s",
				a.value, a.partition, a.offset, a.err, a.sent.Format("15:04:05.000"), a.done.Format("15:04:05.000")))
		}
	}
	for _, o := range obs {
		if strings.Contains(violation, fmt.Sprintf("%d/%d", o.p, o.o)) || strings.Contains(violation, o.value+" ") {
			out = append(out, fmt.Sprintf("poll %s gen %d: %d/%d = %s at %s", o.consumer, o.epoch, o.p, o.o, o.value, o.at.Format("15:04:05.000")))
		}
		if len(out) >= 20 {
			break
		}
	}
	return strings.Join(out, "\n")
}
