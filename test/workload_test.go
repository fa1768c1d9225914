package test

import (
	"fmt"
	"sort"
	"strconv"
	"testing"
)

// The client scenario every client library runs against the real binary
// (issue: "create a topic with 3 partitions, produce 10,000 keyed messages
// with headers, consume 6,000 with a group of 2 members and commit, SIGKILL
// and restart, resume the group and receive exactly the other 4,000, and
// all 10,000 from a fresh group").
const (
	scenarioMessages = 10000
	scenarioFirst    = 6000
)

func msgKey(i int) string   { return fmt.Sprintf("key-%05d", i) }
func msgValue(i int) string { return fmt.Sprintf("value-%05d-%s", i, "payload") }

// received is one consumed record, reduced to what the scenario checks.
type received struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Header    string // value of the "idx" header
}

// index parses the message number out of a record and checks that its key,
// value and header agree.
func (r received) index(t *testing.T) int {
	t.Helper()
	i, err := strconv.Atoi(r.Header)
	if err != nil {
		t.Fatalf("record %s/%d@%d has idx header %q", r.Topic, r.Partition, r.Offset, r.Header)
	}
	if r.Key != msgKey(i) || r.Value != msgValue(i) {
		t.Fatalf("record %d came back as key %q value %q", i, r.Key, r.Value)
	}
	return i
}

// checkSet checks that recs hold each index exactly once and returns them.
func checkSet(t *testing.T, what string, recs []received) map[int]bool {
	t.Helper()
	seen := map[int]bool{}
	for _, r := range recs {
		i := r.index(t)
		if seen[i] {
			t.Fatalf("%s: message %d received twice", what, i)
		}
		seen[i] = true
	}
	return seen
}

// checkScenario verifies the three consumption phases together.
func checkScenario(t *testing.T, first, resumed, fresh []received) {
	t.Helper()
	if len(first) != scenarioFirst {
		t.Fatalf("first group pass consumed %d messages, want %d", len(first), scenarioFirst)
	}
	a := checkSet(t, "first pass", first)
	b := checkSet(t, "resumed group", resumed)
	if len(resumed) != scenarioMessages-scenarioFirst {
		t.Fatalf("resumed group received %d messages, want exactly %d", len(resumed), scenarioMessages-scenarioFirst)
	}
	for i := range b {
		if a[i] {
			t.Fatalf("message %d was delivered to the group before and after the restart", i)
		}
	}
	c := checkSet(t, "fresh group", fresh)
	if len(c) != scenarioMessages {
		t.Fatalf("fresh group received %d messages, want %d", len(c), scenarioMessages)
	}
	// Offsets within each partition are dense and ordered.
	byPart := map[int32][]int64{}
	for _, r := range fresh {
		byPart[r.Partition] = append(byPart[r.Partition], r.Offset)
	}
	for p, offs := range byPart {
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		for i, o := range offs {
			if o != int64(i) {
				t.Fatalf("partition %d: offset %d at position %d (offsets are not dense from 0)", p, o, i)
			}
		}
	}
}
