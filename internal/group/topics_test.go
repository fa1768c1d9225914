package group

import (
	"fmt"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// waitOffsets polls until group's committed offsets are want.
func (h *harness) waitOffsets(group string, want map[string]int64) {
	h.t.Helper()
	checkFor(h.t, waitTimeout, func() error {
		if got := h.fetchAll(group); !maps.Equal(got, want) {
			return fmt.Errorf("group %s has offsets %v, want %v", group, got, want)
		}
		return nil
	})
}

func TestTopicDeletedDeletesItsOffsetsInEveryGroup(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("members"), h.member("members")
	h.stableGroup(a, b)
	wantCode(t, "commit", a.commit("gone", 0, 10), nil)
	wantCode(t, "commit", b.commit("gone", 1, 11), nil)
	wantCode(t, "commit", a.commit("kept", 0, 12), nil)
	// Simple consumers' groups, spread over the partitions.
	var simple []string
	for i := range 8 {
		g := fmt.Sprintf("simple-%d", i)
		simple = append(simple, g)
		wantCode(t, "commit", h.commit(g, -1, "", nil, "gone", 2, int64(i)), nil)
		wantCode(t, "commit", h.commit(g, -1, "", nil, "kept", 2, int64(i)), nil)
	}

	h.c.TopicDeleted("gone")
	h.waitOffsets("members", map[string]int64{"kept-0": 12})
	for i, g := range simple {
		h.waitOffsets(g, map[string]int64{"kept-2": int64(i)})
	}
	// Nothing else changes: the group keeps its members and generation,
	// and its members commit and heartbeat as before.
	if d := h.describe("members"); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("group is %s with %d members after the deletion", d.State, len(d.Members))
	}
	wantCode(t, "heartbeat", a.heartbeat(), nil)
	wantCode(t, "commit after the deletion", b.commit("gone", 1, 3), nil)
	if got := h.fetch("members", "gone", 1); got != 3 {
		t.Fatalf("offset committed after the deletion is %d, want 3", got)
	}

	// The deletion is durable: a reload rebuilds the same offsets.
	h.restart()
	h.waitOffsets("members", map[string]int64{"kept-0": 12, "gone-1": 3})
	for i, g := range simple {
		if got, want := h.fetchAll(g), map[string]int64{"kept-2": int64(i)}; !maps.Equal(got, want) {
			t.Fatalf("after reload group %s has offsets %v, want %v", g, got, want)
		}
	}
}

func TestTopicDeletedAfterACommitInFlightDeletesIt(t *testing.T) {
	h := newHarness(t)
	h.log.setHold()
	ch := h.async(commitReq("g", -1, "", nil, "gone", 0, 5))
	checkFor(t, waitTimeout, func() error {
		if h.log.heldCount() != 1 {
			return fmt.Errorf("the commit's append is not issued yet")
		}
		return nil
	})
	h.c.TopicDeleted("gone")
	checkFor(t, waitTimeout, func() error {
		if n := h.log.heldCount(); n != 2 {
			return fmt.Errorf("%d appends issued, want the commit and the tombstones", n)
		}
		return nil
	})
	h.log.release()
	wantCode(t, "commit in flight", h.wait(ch).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	h.waitOffsets("g", map[string]int64{})
	h.restart()
	if got := h.fetch("g", "gone", 0); got != -1 {
		t.Fatalf("after reload the offset is %d, want -1 (deleted)", got)
	}
}

func TestTopicDeletedWithoutOffsetsWritesNothing(t *testing.T) {
	h := newHarness(t)
	wantCode(t, "commit", h.commit("g", -1, "", nil, "kept", 0, 1), nil)
	h.log.mu.Lock()
	before := h.log.appends
	h.log.mu.Unlock()
	h.c.TopicDeleted("never-committed")
	// A request queued behind the deletion in every shard: once all are
	// answered, every shard has handled the deletion.
	for p := range int32(testParts) {
		h.inShard(p, func(*shard) {})
	}
	h.log.mu.Lock()
	after := h.log.appends
	h.log.mu.Unlock()
	if after != before {
		t.Fatalf("%d appends for a topic without offsets", after-before)
	}
	if got := h.fetch("g", "kept", 0); got != 1 {
		t.Fatalf("offset %d, want 1", got)
	}
}

func TestTopicDeletedTombstoneFailureKeepsOffsets(t *testing.T) {
	h := newHarness(t)
	wantCode(t, "commit", h.commit("g", -1, "", nil, "gone", 0, 7), nil)
	p := h.c.PartitionFor("g")
	h.log.setFail(func(int32, []byte) error { return kerr.NotEnoughReplicas })
	h.c.TopicDeleted("gone")
	h.inShard(p, func(*shard) {})
	h.log.setFail(nil)
	// The write failed, so memory still matches the log.
	checkFor(t, waitTimeout, func() error {
		var inflight int
		h.inShard(p, func(s *shard) { inflight = s.groups["g"].inflight })
		if inflight != 0 {
			return fmt.Errorf("%d writes in flight", inflight)
		}
		return nil
	})
	if got := h.fetch("g", "gone", 0); got != 7 {
		t.Fatalf("offset %d after a failed deletion, want 7", got)
	}
}
