package group

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

func TestCommitThenFetch(t *testing.T) {
	h := newHarness(t)
	// A simple consumer: generation -1, no member id.
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 42), nil)
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 1, 7), nil)
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 43), nil)
	if got := h.fetch("g", "t", 0); got != 43 {
		t.Fatalf("offset %d, want 43", got)
	}
	if got := h.fetch("g", "t", 9); got != -1 {
		t.Fatalf("offset of an uncommitted partition %d, want -1", got)
	}
	if got := h.fetch("other", "t", 0); got != -1 {
		t.Fatalf("offset of an unknown group %d, want -1", got)
	}
	if got, want := h.fetchAll("g"), map[string]int64{"t-0": 43, "t-1": 7}; !maps.Equal(got, want) {
		t.Fatalf("all offsets %v, want %v", got, want)
	}

	// Metadata and leader epoch come back.
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 5
	r.Group = "g"
	r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	p := h.do(r).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0]
	if p.Offset != 43 || p.LeaderEpoch != 3 || p.Metadata == nil || *p.Metadata != "md-43" {
		t.Fatalf("fetched %+v", p)
	}

	// Too much metadata fails that partition only.
	c := commitReq("g", -1, "", nil, "t", 0, 50)
	big := strings.Repeat("x", maxOffsetMetadata+1)
	c.Topics[0].Partitions = append(c.Topics[0].Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: 1, Offset: 8, Metadata: &big})
	cr := h.do(c).(*kmsg.OffsetCommitResponse)
	wantCode(t, "partition 0", cr.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "partition 1", cr.Topics[0].Partitions[1].ErrorCode, kerr.OffsetMetadataTooLarge)
	if got, want := h.fetchAll("g"), map[string]int64{"t-0": 50, "t-1": 7}; !maps.Equal(got, want) {
		t.Fatalf("all offsets %v, want %v", got, want)
	}

	// OffsetFetch v8 with several groups, one of them unknown.
	r8 := kmsg.NewPtrOffsetFetchRequest()
	r8.Version = 8
	r8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}, {Group: "none", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
	resp := h.do(r8).(*kmsg.OffsetFetchResponse)
	if len(resp.Groups) != 2 || resp.Groups[0].Group != "g" || len(resp.Groups[0].Topics) != 1 || len(resp.Groups[0].Topics[0].Partitions) != 2 {
		t.Fatalf("v8 response %+v", resp.Groups)
	}
	if o := resp.Groups[1].Topics[0].Partitions[0].Offset; o != -1 {
		t.Fatalf("unknown group offset %d", o)
	}
}

func TestCommitValidation(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	a.inst = strPtr("ia")
	h.stableGroup(a, b)
	gen := a.gen
	for _, tc := range []struct {
		name   string
		group  string
		gen    int32
		member string
		inst   *string
		want   *kerr.Error
	}{
		{"member of the generation", "g", gen, b.id, nil, nil},
		{"static member", "g", gen, a.id, a.inst, nil},
		{"wrong generation", "g", gen - 1, b.id, nil, kerr.IllegalGeneration},
		{"unknown member", "g", gen, "nobody", nil, kerr.UnknownMemberID},
		{"no member in a group with members", "g", -1, "", nil, kerr.UnknownMemberID},
		{"fenced instance", "g", gen, b.id, a.inst, kerr.FencedInstanceID},
		{"generation for an unknown group", "new", 3, "x", nil, kerr.IllegalGeneration},
		{"simple consumer of a new group", "new", -1, "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.commit(tc.group, tc.gen, tc.member, tc.inst, "t", 0, 10)
			wantCode(t, tc.name, got, tc.want)
		})
	}

	// During CompletingRebalance members are told to wait; during
	// PreparingRebalance their commits are taken.
	c := h.member("g")
	chC := c.startJoin()
	wantCode(t, "commit while preparing", b.commit("t", 0, 11), nil)
	chA, chB := a.startJoin(), b.startJoin()
	a.finishJoin(chA)
	b.finishJoin(chB)
	c.finishJoin(chC)
	wantCode(t, "commit while completing", b.commit("t", 0, 12), kerr.RebalanceInProgress)
	if got := h.fetch("g", "t", 0); got != 11 {
		t.Fatalf("offset %d, want 11", got)
	}
}

func TestAppendFailureChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want *kerr.Error
	}{
		{kerr.NotLeaderForPartition, kerr.NotCoordinator},
		{kerr.NotEnoughReplicas, kerr.CoordinatorNotAvailable},
		{kerr.RequestTimedOut, kerr.CoordinatorNotAvailable},
		{kerr.MessageTooLarge, kerr.InvalidCommitOffsetSize},
		{fmt.Errorf("disk on fire"), kerr.UnknownServerError},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			h := newHarness(t)
			wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 1), nil)
			h.log.setFail(func(int32, []byte) error { return tc.err })
			wantCode(t, "failing commit", h.commit("g", -1, "", nil, "t", 0, 2), tc.want)
			h.log.setFail(nil)
			if got := h.fetch("g", "t", 0); got != 1 {
				t.Fatalf("offset %d after a failed commit, want 1", got)
			}
			h.restart()
			if got := h.fetch("g", "t", 0); got != 1 {
				t.Fatalf("offset %d after reload, want 1", got)
			}
		})
	}
}

func TestCommitVisibleOnlyWhenCommitted(t *testing.T) {
	h := newHarness(t)
	h.log.setHold()
	ch := h.async(commitReq("g", -1, "", nil, "t", 0, 5))
	checkFor(t, waitTimeout, func() error {
		if h.log.heldCount() != 1 {
			return fmt.Errorf("append not issued yet")
		}
		return nil
	})
	h.pending(ch, "commit before its append is committed")
	if got := h.fetch("g", "t", 0); got != -1 {
		t.Fatalf("offset %d visible before the append is committed", got)
	}
	h.log.release()
	wantCode(t, "commit", h.wait(ch).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	if got := h.fetch("g", "t", 0); got != 5 {
		t.Fatalf("offset %d, want 5", got)
	}
}

func TestReloadRestoresOffsetsAndGroups(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	b.inst = strPtr("ib")
	h.stableGroup(a, b)
	wantCode(t, "commit", a.commit("t", 0, 100), nil)
	wantCode(t, "commit", b.commit("t", 1, 200), nil)
	wantCode(t, "commit", h.commit("simple", -1, "", nil, "u", 3, 9), nil)
	before := h.describe("g")

	// Resign and lead again on the same coordinator.
	p := h.c.PartitionFor("g")
	h.c.Resigned(p)
	resp := h.do(commitReq("g", a.gen, a.id, nil, "t", 0, 1)).(*kmsg.OffsetCommitResponse)
	wantCode(t, "commit after resigning", resp.Topics[0].Partitions[0].ErrorCode, kerr.NotCoordinator)
	h.c.BecameLeader(p)
	h.waitLoaded()
	check := func() {
		t.Helper()
		if got, want := h.fetchAll("g"), map[string]int64{"t-0": 100, "t-1": 200}; !maps.Equal(got, want) {
			t.Fatalf("offsets %v, want %v", got, want)
		}
		if got := h.fetch("simple", "u", 3); got != 9 {
			t.Fatalf("simple consumer offset %d", got)
		}
		after := h.describe("g")
		if after.State != "Stable" || after.Protocol != before.Protocol || len(after.Members) != 2 {
			t.Fatalf("reloaded group: %+v", after)
		}
		for i := range after.Members {
			am, bm := after.Members[i], before.Members[i]
			if am.MemberID != bm.MemberID || string(am.MemberAssignment) != string(bm.MemberAssignment) ||
				string(am.ProtocolMetadata) != string(bm.ProtocolMetadata) || (am.InstanceID == nil) != (bm.InstanceID == nil) {
				t.Fatalf("member %d: %+v, was %+v", i, am, bm)
			}
		}
		// Members that keep heartbeating carry on in their generation.
		wantCode(t, "a's heartbeat", a.heartbeat(), nil)
		wantCode(t, "b's heartbeat", b.heartbeat(), nil)
	}
	check()

	// A new coordinator over the same log (another node taking over).
	h.restart()
	check()
	wantCode(t, "commit after reload", a.commit("t", 0, 101), nil)
	if got := h.fetch("g", "t", 0); got != 101 {
		t.Fatalf("offset %d", got)
	}
}

func TestReloadedMembersExpire(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	a.session, b.session = 300, 5000
	h.stableGroup(a, b)
	h.restart()
	// a never heartbeats the new coordinator: its session expires.
	checkFor(t, waitTimeout, func() error {
		if code := b.heartbeat(); code != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("b's heartbeat: %s", errName(code))
		}
		return nil
	})
	r := b.join()
	if len(r.Members) != 1 || r.LeaderID != b.id {
		t.Fatalf("after expiry: %+v", r)
	}
}

func TestLoadInProgressAndResign(t *testing.T) {
	h := newHarness(t)
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 1), nil)
	p := h.c.PartitionFor("g")
	h.c.Resigned(p)
	gate := make(chan struct{})
	h.log.mu.Lock()
	h.log.readGate = gate
	h.log.mu.Unlock()
	h.c.BecameLeader(p)

	resp := h.do(commitReq("g", -1, "", nil, "t", 0, 2)).(*kmsg.OffsetCommitResponse)
	wantCode(t, "commit while loading", resp.Topics[0].Partitions[0].ErrorCode, kerr.CoordinatorLoadInProgress)
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 1
	f.Group = "g"
	f.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	fr := h.do(f).(*kmsg.OffsetFetchResponse)
	wantCode(t, "v1 fetch while loading", fr.Topics[0].Partitions[0].ErrorCode, kerr.CoordinatorLoadInProgress)
	lg := h.do(&kmsg.ListGroupsRequest{Version: 0}).(*kmsg.ListGroupsResponse)
	wantCode(t, "ListGroups while loading", lg.ErrorCode, kerr.CoordinatorLoadInProgress)

	h.log.mu.Lock()
	h.log.readGate = nil
	h.log.mu.Unlock()
	close(gate)
	h.waitLoaded()
	if got := h.fetch("g", "t", 0); got != 1 {
		t.Fatalf("offset %d after load", got)
	}

	// Resigning answers what waits: a parked JoinGroup and a commit whose
	// append is in flight.
	a, b := h.member("g"), h.member("g")
	h.stableGroup(a)
	chB := b.startJoin()
	h.log.setHold()
	chC := h.async(commitReq("g", a.gen, a.id, nil, "t", 0, 3))
	checkFor(t, waitTimeout, func() error {
		if h.log.heldCount() != 1 {
			return fmt.Errorf("append not issued yet")
		}
		return nil
	})
	h.c.Resigned(p)
	wantCode(t, "parked join", h.wait(chB).(*kmsg.JoinGroupResponse).ErrorCode, kerr.NotCoordinator)
	wantCode(t, "commit in flight", h.wait(chC).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.NotCoordinator)
	wantCode(t, "heartbeat", a.heartbeat(), kerr.NotCoordinator)
}

func TestLoadSkipsUnknownRecords(t *testing.T) {
	h := newHarness(t)
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 1), nil)
	p := h.c.PartitionFor("g")
	// A KIP-848 record (key version 3) and a record without key.
	done := make(chan error, 1)
	h.log.Append(p, buildBatch([]record{{key: []byte{0, 3, 0, 1, 'g'}, value: []byte{0, 0}}, {key: nil, value: []byte{1}}}, 0), func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.restart()
	if got := h.fetch("g", "t", 0); got != 1 {
		t.Fatalf("offset %d after loading unknown records", got)
	}
}

func TestDeleteGroups(t *testing.T) {
	h := newHarness(t)
	a := h.member("busy")
	h.stableGroup(a)
	wantCode(t, "commit", h.commit("idle", -1, "", nil, "t", 0, 1), nil)
	wantCode(t, "commit", h.commit("idle", -1, "", nil, "t", 1, 2), nil)
	wantCode(t, "commit", h.commit("keep", -1, "", nil, "t", 0, 3), nil)
	// A group whose members all left: Empty with metadata.
	left := h.member("left")
	h.stableGroup(left)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 4
	leave.Group = "left"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: left.id}}
	h.do(leave)
	h.waitState("left", "Empty")

	// Resign a partition to get NOT_COORDINATOR for one group, if none of
	// the others lives there.
	var foreign string
	for i := 0; foreign == ""; i++ {
		g := fmt.Sprintf("foreign-%d", i)
		pg := h.c.PartitionFor(g)
		if pg != h.c.PartitionFor("busy") && pg != h.c.PartitionFor("idle") && pg != h.c.PartitionFor("left") && pg != h.c.PartitionFor("keep") {
			foreign = g
		}
	}
	h.c.Resigned(h.c.PartitionFor(foreign))

	r := kmsg.NewPtrDeleteGroupsRequest()
	r.Version = 2
	r.Groups = []string{"busy", "idle", "none", "left", foreign}
	resp := h.do(r).(*kmsg.DeleteGroupsResponse)
	for i, want := range []*kerr.Error{kerr.NonEmptyGroup, nil, kerr.GroupIDNotFound, nil, kerr.NotCoordinator} {
		if resp.Groups[i].Group != r.Groups[i] {
			t.Fatalf("answer %d is for %s", i, resp.Groups[i].Group)
		}
		wantCode(t, "delete "+r.Groups[i], resp.Groups[i].ErrorCode, want)
	}
	if got := h.fetchAll("idle"); len(got) != 0 {
		t.Fatalf("offsets of a deleted group: %v", got)
	}
	if d := h.describe("idle"); d.State != "Dead" {
		t.Fatalf("deleted group is %s", d.State)
	}
	for _, g := range []string{"idle", "left"} {
		live, err := h.log.replay(h.c.PartitionFor(g))
		if err != nil {
			t.Fatal(err)
		}
		for k := range live {
			if strings.Contains(k, " "+g+" ") || k == "group "+g {
				t.Fatalf("the log still holds %s", k)
			}
		}
	}
	h.restart()
	if got := h.fetchAll("idle"); len(got) != 0 {
		t.Fatalf("offsets of a deleted group after reload: %v", got)
	}
	if got := h.fetch("keep", "t", 0); got != 3 {
		t.Fatalf("offset of another group %d", got)
	}

	// A failed delete leaves the group as it was.
	h.log.setFail(func(int32, []byte) error { return kerr.NotEnoughReplicas })
	r.Groups = []string{"keep"}
	resp = h.do(r).(*kmsg.DeleteGroupsResponse)
	wantCode(t, "delete with a failing log", resp.Groups[0].ErrorCode, kerr.CoordinatorNotAvailable)
	h.log.setFail(nil)
	if got := h.fetch("keep", "t", 0); got != 3 {
		t.Fatalf("offset %d after a failed delete", got)
	}
	if d := h.describe("keep"); d.State != "Empty" {
		t.Fatalf("group is %s after a failed delete", d.State)
	}
}

func TestOffsetDelete(t *testing.T) {
	h := newHarness(t)
	del := func(group string, tps ...topicPartition) *kmsg.OffsetDeleteResponse {
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = group
		for _, tp := range tps {
			r.Topics = append(r.Topics, kmsg.OffsetDeleteRequestTopic{Topic: tp.topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: tp.partition}}})
		}
		return h.do(r).(*kmsg.OffsetDeleteResponse)
	}

	// An empty group: any offset can go.
	wantCode(t, "commit", h.commit("e", -1, "", nil, "t", 0, 1), nil)
	wantCode(t, "commit", h.commit("e", -1, "", nil, "t", 1, 2), nil)
	resp := del("e", topicPartition{"t", 0}, topicPartition{"x", 5})
	wantCode(t, "group", resp.ErrorCode, nil)
	wantCode(t, "t-0", resp.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "x-5 (no offset)", resp.Topics[1].Partitions[0].ErrorCode, nil)
	if got, want := h.fetchAll("e"), map[string]int64{"t-1": 2}; !maps.Equal(got, want) {
		t.Fatalf("offsets %v, want %v", got, want)
	}

	// A consumer group subscribed to t: t is protected, u is not.
	a := h.member("c")
	h.stableGroup(a)
	wantCode(t, "commit", a.commit("t", 0, 1), nil)
	wantCode(t, "commit", a.commit("u", 0, 1), nil)
	resp = del("c", topicPartition{"t", 0}, topicPartition{"u", 0})
	wantCode(t, "group", resp.ErrorCode, nil)
	wantCode(t, "t-0", resp.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	wantCode(t, "u-0", resp.Topics[1].Partitions[0].ErrorCode, nil)
	if got, want := h.fetchAll("c"), map[string]int64{"t-0": 1}; !maps.Equal(got, want) {
		t.Fatalf("offsets %v, want %v", got, want)
	}

	wantCode(t, "unknown group", del("none", topicPartition{"t", 0}).ErrorCode, kerr.GroupIDNotFound)

	h.restart()
	if got, want := h.fetchAll("e"), map[string]int64{"t-1": 2}; !maps.Equal(got, want) {
		t.Fatalf("offsets after reload %v, want %v", got, want)
	}
	if got, want := h.fetchAll("c"), map[string]int64{"t-0": 1}; !maps.Equal(got, want) {
		t.Fatalf("offsets after reload %v, want %v", got, want)
	}
}

func TestOffsetsRetention(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.OffsetsRetention = 100 * time.Millisecond
		c.OffsetsRetentionCheckInterval = 10 * time.Millisecond
	})
	a := h.member("c")
	h.stableGroup(a)
	wantCode(t, "commit", a.commit("t", 0, 1), nil) // subscribed: kept
	wantCode(t, "commit", a.commit("u", 0, 1), nil) // not subscribed: expires
	wantCode(t, "commit", h.commit("simple", -1, "", nil, "t", 0, 1), nil)

	checkFor(t, waitTimeout, func() error {
		if got := h.fetchAll("c"); len(got) != 1 {
			return fmt.Errorf("offsets of c: %v", got)
		}
		if d := h.describe("simple"); d.State != "Dead" {
			return fmt.Errorf("simple is %s", d.State)
		}
		return nil
	})
	if got := h.fetch("c", "t", 0); got != 1 {
		t.Fatalf("subscribed offset expired")
	}
	wantCode(t, "heartbeat", a.heartbeat(), nil)
	live, _ := h.log.replay(h.c.PartitionFor("simple"))
	for k := range live {
		if strings.Contains(k, "simple") {
			t.Fatalf("expired %s still in the log", k)
		}
	}
}

// compactionWorkload commits, overwrites and deletes offsets and groups on
// every partition, and forms the Stable group "stable".
func compactionWorkload(t *testing.T, h *harness) []*testMember {
	for round := range 5 {
		for g := range 8 {
			group := fmt.Sprintf("g%d", g)
			for p := range int32(4) {
				wantCode(t, "commit", h.commit(group, -1, "", nil, "t", p, int64(round*10)+int64(p)), nil)
			}
		}
	}
	r := kmsg.NewPtrOffsetDeleteRequest()
	r.Group = "g1"
	r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}, {Partition: 2}}}}
	h.do(r)
	d := kmsg.NewPtrDeleteGroupsRequest()
	d.Groups = []string{"g2"}
	wantCode(t, "delete g2", h.do(d).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, nil)
	a, b := h.member("stable"), h.member("stable")
	h.stableGroup(a, b)
	wantCode(t, "commit", a.commit("t", 0, 77), nil)
	return []*testMember{a, b}
}

func TestCompactionKeepsExactlyTheLiveState(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CompactThreshold = 1 << 40 })
	members := compactionWorkload(t, h)
	offsets := map[string]map[string]int64{}
	for g := range 8 {
		group := fmt.Sprintf("g%d", g)
		offsets[group] = h.fetchAll(group)
	}
	offsets["stable"] = h.fetchAll("stable")
	if len(offsets["g2"]) != 0 || len(offsets["g1"]) != 2 {
		t.Fatalf("workload: %v", offsets)
	}

	for p := range int32(testParts) {
		full, err := h.log.replayHistory(p)
		if err != nil {
			t.Fatal(err)
		}
		recordsBefore := h.log.records(p)
		h.compact(p)
		live, err := h.log.replay(p)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(full, live) {
			t.Fatalf("partition %d: replay after compaction\n%v\nwant\n%v", p, live, full)
		}
		// Only the live records are left: no tombstones, no old values.
		if n := h.log.records(p); n != len(live) || (recordsBefore > len(live) && h.log.LogStartOffset(p) == 0) {
			t.Fatalf("partition %d: %d records for %d live keys (log start %d, %d before)", p, n, len(live), h.log.LogStartOffset(p), recordsBefore)
		}
	}

	h.restart()
	for group, want := range offsets {
		if got := h.fetchAll(group); !maps.Equal(got, want) {
			t.Fatalf("%s after compaction and reload: %v, want %v", group, got, want)
		}
	}
	if d := h.describe("stable"); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("stable group after compaction and reload: %+v", d)
	}
	for _, m := range members {
		wantCode(t, "heartbeat after compaction and reload", m.heartbeat(), nil)
	}
}

func TestCompactionByThreshold(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CompactThreshold = 4 << 10 })
	p := h.c.PartitionFor("g")
	for i := range 300 {
		wantCode(t, "commit", h.commit("g", -1, "", nil, "t", int32(i%3), int64(i)), nil)
	}
	h.waitCompacted(p)
	if size := h.log.size(p); size > 3*(4<<10) {
		t.Fatalf("partition holds %d bytes with a 4 KiB threshold", size)
	}
	if h.log.LogStartOffset(p) == 0 {
		t.Fatal("the log start never moved")
	}
	full, _ := h.log.replayHistory(p)
	live, _ := h.log.replay(p)
	if !maps.Equal(full, live) {
		t.Fatalf("replay %v, want %v", live, full)
	}
	h.restart()
	if got, want := h.fetchAll("g"), map[string]int64{"t-0": 297, "t-1": 298, "t-2": 299}; !maps.Equal(got, want) {
		t.Fatalf("offsets after reload %v, want %v", got, want)
	}
}

func TestCompactionKeepsCommitsMadeMeanwhile(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CompactThreshold = 1 << 40 })
	p := h.c.PartitionFor("g")
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 1), nil)
	appends := func() int { h.log.mu.Lock(); defer h.log.mu.Unlock(); return h.log.appends }

	// c1 is in flight when the compaction starts; c2 arrives while the
	// compaction waits for c1.
	h.log.setHold()
	ch1 := h.async(commitReq("g", -1, "", nil, "t", 1, 10))
	checkFor(t, waitTimeout, func() error {
		if h.log.heldCount() != 1 {
			return fmt.Errorf("c1 not issued yet")
		}
		return nil
	})
	h.inShard(p, func(s *shard) {
		s.sinceCompaction = s.c.cfg.CompactThreshold
		s.maybeCompact()
	})
	n := appends()
	ch2 := h.async(commitReq("g", -1, "", nil, "t", 0, 20))
	h.inShard(p, func(*shard) {}) // c2 has been handled
	if appends() != n {
		t.Fatal("a commit was appended while the compaction barrier was up")
	}
	h.log.release()
	wantCode(t, "c1", h.wait(ch1).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "c2", h.wait(ch2).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	h.waitCompacted(p)
	if h.log.LogStartOffset(p) == 0 {
		t.Fatal("nothing was deleted")
	}
	full, _ := h.log.replayHistory(p)
	live, _ := h.log.replay(p)
	if !maps.Equal(full, live) {
		t.Fatalf("replay %v, want %v", live, full)
	}
	h.restart()
	if got, want := h.fetchAll("g"), map[string]int64{"t-0": 20, "t-1": 10}; !maps.Equal(got, want) {
		t.Fatalf("offsets after compaction and reload %v, want %v", got, want)
	}
}

func TestCompactionSnapshotFailureDeletesNothing(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CompactThreshold = 1 << 40 })
	p := h.c.PartitionFor("g")
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 1), nil)
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 2), nil)
	h.log.setFail(func(int32, []byte) error { return kerr.NotEnoughReplicas })
	h.compact(p)
	h.log.setFail(nil)
	if h.log.LogStartOffset(p) != 0 {
		t.Fatal("records were deleted although the snapshot failed")
	}
	h.restart()
	if got := h.fetch("g", "t", 0); got != 2 {
		t.Fatalf("offset %d", got)
	}
}

func isSnapshotBatch(b []byte) bool {
	recs, err := recordbatch.RecordsOf(b)
	if err != nil || len(recs) == 0 {
		return false
	}
	for _, h := range recs[0].Headers {
		if h.Key == compactionHeader {
			return true
		}
	}
	return false
}

// If another batch lands between the barrier and the snapshot, the
// snapshot is not where the coordinator expects it and nothing is deleted.
func TestCompactionForeignWriteDeletesNothing(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CompactThreshold = 1 << 40 })
	p := h.c.PartitionFor("g")
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 1), nil)
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 2), nil)
	other := "other"
	for i := 0; h.c.PartitionFor(other) != p; i++ {
		other = fmt.Sprintf("other-%d", i)
	}
	foreign := buildBatch([]record{{offsetKey(other, topicPartition{"t", 0}), offsetValue(offsetCommit{offset: 9, leaderEpoch: -1, expireTime: -1})}}, 0)
	injected := false
	h.log.setFail(func(part int32, b []byte) error {
		if part == p && !injected && isSnapshotBatch(b) {
			injected = true
			fb, err := h.log.store(p, foreign) // f.mu is held here
			if err != nil {
				return err
			}
			h.log.part(p).hw = fb.next
		}
		return nil
	})
	h.compact(p)
	h.log.setFail(nil)
	if !injected {
		t.Fatal("no snapshot was written")
	}
	if h.log.LogStartOffset(p) != 0 {
		t.Fatal("records were deleted although the snapshot was not at the barrier offset")
	}
	h.restart()
	if got := h.fetch("g", "t", 0); got != 2 {
		t.Fatalf("offset %d", got)
	}
	if got := h.fetch(other, "t", 0); got != 9 {
		t.Fatalf("foreign offset %d", got)
	}
}

func TestLoadRetriesFailedReads(t *testing.T) {
	h := newHarness(t)
	wantCode(t, "commit", h.commit("g", -1, "", nil, "t", 0, 1), nil)
	p := h.c.PartitionFor("g")
	h.c.Resigned(p)
	h.log.setNotLeader(p, true)
	h.c.BecameLeader(p)
	resp := h.do(commitReq("g", -1, "", nil, "t", 0, 2)).(*kmsg.OffsetCommitResponse)
	wantCode(t, "commit while the load fails", resp.Topics[0].Partitions[0].ErrorCode, kerr.CoordinatorLoadInProgress)
	h.log.setNotLeader(p, false)
	h.waitLoaded()
	if got := h.fetch("g", "t", 0); got != 1 {
		t.Fatalf("offset %d", got)
	}
}
