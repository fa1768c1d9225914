package group

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTwoMembersJoinAssignHeartbeat(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")

	// a alone: generation 1, a leads.
	ra := a.join()
	if ra.Generation != 1 || ra.LeaderID != a.id || len(ra.Members) != 1 || ra.Protocol == nil || *ra.Protocol != "range" {
		t.Fatalf("first join: %+v", ra)
	}
	if !strings.HasPrefix(a.id, "test-client-") {
		t.Fatalf("member id %q is not clientID-uuid", a.id)
	}
	sa := a.sync(map[string][]byte{a.id: consumerAssignment("t", 0, 1)})
	wantCode(t, "leader sync", sa.ErrorCode, nil)

	// b joins: the group rebalances; a learns it from its heartbeat.
	chB := b.startJoin()
	h.pending(chB, "b's JoinGroup before a rejoined")
	wantCode(t, "a's heartbeat", a.heartbeat(), kerr.RebalanceInProgress)
	chA := a.startJoin()
	ra, rb := a.finishJoin(chA), b.finishJoin(chB)
	if ra.Generation != 2 || rb.Generation != 2 {
		t.Fatalf("generations %d, %d; want 2", ra.Generation, rb.Generation)
	}
	if ra.LeaderID != a.id || rb.LeaderID != a.id {
		t.Fatalf("leaders %q %q, want %q", ra.LeaderID, rb.LeaderID, a.id)
	}
	if len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("leader got %d members, follower %d", len(ra.Members), len(rb.Members))
	}
	for _, m := range ra.Members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.ProtocolMetadata); err != nil || len(meta.Topics) != 1 || meta.Topics[0] != "t" {
			t.Fatalf("member %s metadata %x: %v", m.MemberID, m.ProtocolMetadata, err)
		}
	}

	// The follower's SyncGroup waits for the leader's.
	chSB := b.startSync(nil)
	h.pending(chSB, "follower SyncGroup before the leader's")
	assignment := map[string][]byte{a.id: consumerAssignment("t", 0), b.id: consumerAssignment("t", 1)}
	sa = a.sync(assignment)
	wantCode(t, "leader sync", sa.ErrorCode, nil)
	sb := h.wait(chSB).(*kmsg.SyncGroupResponse)
	wantCode(t, "follower sync", sb.ErrorCode, nil)
	if string(sa.MemberAssignment) != string(assignment[a.id]) || string(sb.MemberAssignment) != string(assignment[b.id]) {
		t.Fatalf("assignments %x %x", sa.MemberAssignment, sb.MemberAssignment)
	}
	if sb.Protocol == nil || *sb.Protocol != "range" || sb.ProtocolType == nil || *sb.ProtocolType != "consumer" {
		t.Fatalf("SyncGroup v5 protocol fields: %v %v", sb.ProtocolType, sb.Protocol)
	}
	wantCode(t, "a's heartbeat", a.heartbeat(), nil)
	wantCode(t, "b's heartbeat", b.heartbeat(), nil)

	d := h.describe("g")
	if d.State != "Stable" || d.Protocol != "range" || d.ProtocolType != "consumer" || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	for _, m := range d.Members {
		if string(m.MemberAssignment) != string(assignment[m.MemberID]) || m.ClientID != "test-client" || m.ClientHost != "/127.0.0.1" {
			t.Fatalf("described member %+v", m)
		}
	}

	// The Stable generation is in the log, with the assignments.
	live, err := h.log.replay(h.c.PartitionFor("g"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("type=consumer gen=2 protocol=range leader=%s", a.id)
	if got := live["group g"]; !strings.HasPrefix(got, want) || !strings.Contains(got, b.id) {
		t.Fatalf("group record %q, want prefix %q and member %s", got, want, b.id)
	}
}

func TestThirdMemberRebalances(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	h.stableGroup(a, b)
	gen := a.gen

	c := h.member("g")
	leader := h.stableGroup(c, a, b)
	if a.gen != gen+1 || c.gen != gen+1 {
		t.Fatalf("generation %d after a third member, want %d", a.gen, gen+1)
	}
	if leader != a {
		t.Fatalf("leader changed to %s", leader.id)
	}
	// An old generation is refused.
	old := *b
	old.gen = gen
	wantCode(t, "heartbeat of an old generation", old.heartbeat(), kerr.IllegalGeneration)
	resp := old.sync(nil)
	wantCode(t, "sync of an old generation", resp.ErrorCode, kerr.IllegalGeneration)
	if d := h.describe("g"); d.State != "Stable" || len(d.Members) != 3 {
		t.Fatalf("describe: %s with %d members", d.State, len(d.Members))
	}
}

func TestSessionExpiryRemovesMember(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	b.session = 300 // long enough to form the group on a loaded machine
	h.stableGroup(a, b)

	// b stops heartbeating: its session expires and the group rebalances.
	checkFor(t, waitTimeout, func() error {
		if code := a.heartbeat(); code != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("a's heartbeat: %s", errName(code))
		}
		return nil
	})
	wantCode(t, "b's heartbeat", b.heartbeat(), kerr.UnknownMemberID)
	r := a.join()
	if len(r.Members) != 1 || r.Members[0].MemberID != a.id {
		t.Fatalf("members after expiry: %+v", r.Members)
	}
}

func TestRebalanceTimeoutRemovesMembersThatDidNotRejoin(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	a.rebal, b.rebal = 300, 300
	h.stableGroup(a, b)
	gen := a.gen

	c := h.member("g")
	c.rebal = 300
	chC := c.startJoin()
	chA := a.startJoin()
	// b keeps its (long) session but does not rejoin.
	ra, rc := a.finishJoin(chA), c.finishJoin(chC)
	if ra.Generation != gen+1 || rc.Generation != gen+1 {
		t.Fatalf("generations %d %d, want %d", ra.Generation, rc.Generation, gen+1)
	}
	if len(ra.Members) != 2 {
		t.Fatalf("leader got %d members, want 2 (b removed)", len(ra.Members))
	}
	wantCode(t, "b's heartbeat", b.heartbeat(), kerr.UnknownMemberID)
}

func TestMemberIDRequired(t *testing.T) {
	h := newHarness(t)
	m := h.member("g")
	first := h.do(m.joinReq()).(*kmsg.JoinGroupResponse)
	wantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	if !strings.HasPrefix(first.MemberID, "test-client-") || first.Generation != -1 {
		t.Fatalf("MEMBER_ID_REQUIRED answer: %+v", first)
	}
	// Nothing joined yet: heartbeats with that id are unknown.
	m.id = first.MemberID
	wantCode(t, "heartbeat of a pending id", m.heartbeat(), kerr.UnknownMemberID)
	r := m.join()
	if r.MemberID != first.MemberID || r.Generation != 1 {
		t.Fatalf("join with the given id: %+v", r)
	}

	// Before v4 a member joins at once.
	old := h.member("g3")
	old.version = 3
	r = old.join()
	if r.Generation != 1 || r.MemberID == "" {
		t.Fatalf("v3 join: %+v", r)
	}

	// An id handed out but never used expires after the session timeout
	// (the empty group it was for goes with it).
	p := h.member("gp")
	p.session = 30
	first = h.do(p.joinReq()).(*kmsg.JoinGroupResponse)
	wantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	h.waitState("gp", "Dead")
	p.id = first.MemberID
	late := h.do(p.joinReq()).(*kmsg.JoinGroupResponse)
	wantCode(t, "join with an expired id", late.ErrorCode, kerr.UnknownMemberID)
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t)
	a := h.member("g")
	a.join()
	for _, tc := range []struct {
		name string
		mod  func(r *kmsg.JoinGroupRequest)
		want *kerr.Error
	}{
		{"session too short", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 1 }, kerr.InvalidSessionTimeout},
		{"session too long", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 60_000 }, kerr.InvalidSessionTimeout},
		{"empty group id", func(r *kmsg.JoinGroupRequest) { r.Group = "" }, kerr.InvalidGroupID},
		{"other protocol type", func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "connect" }, kerr.InconsistentGroupProtocol},
		{"no common protocol", func(r *kmsg.JoinGroupRequest) {
			r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "sticky", Metadata: consumerMeta("t")}}
		}, kerr.InconsistentGroupProtocol},
		{"no protocols", func(r *kmsg.JoinGroupRequest) { r.Protocols = nil; r.Group = "fresh" }, kerr.InconsistentGroupProtocol},
		{"unknown member id", func(r *kmsg.JoinGroupRequest) { r.MemberID = "nobody" }, kerr.UnknownMemberID},
		{"unknown member of an unknown group", func(r *kmsg.JoinGroupRequest) { r.MemberID = "nobody"; r.Group = "none" }, kerr.UnknownMemberID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.member("g").joinReq()
			tc.mod(r)
			resp := h.do(r).(*kmsg.JoinGroupResponse)
			wantCode(t, tc.name, resp.ErrorCode, tc.want)
		})
	}
}

func TestProtocolSelection(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	join := func(m *testMember, names ...string) <-chan kmsg.Response {
		r := m.joinReq()
		r.Protocols = nil
		for _, n := range names {
			r.Protocols = append(r.Protocols, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: consumerMeta("t")})
		}
		if m.id == "" {
			first := h.do(r).(*kmsg.JoinGroupResponse)
			m.id = first.MemberID
			r.MemberID = m.id
		}
		return h.async(r)
	}
	m := a.finishJoin(join(a, "cooperative-sticky", "range"))
	if *m.Protocol != "cooperative-sticky" {
		t.Fatalf("alone: %s", *m.Protocol)
	}
	a.sync(nil)
	chB := join(b, "range", "roundrobin")
	chA := join(a, "cooperative-sticky", "range")
	ra, rb := a.finishJoin(chA), b.finishJoin(chB)
	if *ra.Protocol != "range" || *rb.Protocol != "range" {
		t.Fatalf("protocols %s %s, want range (the only common one)", *ra.Protocol, *rb.Protocol)
	}
}

func TestStaticMemberRestart(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	a.inst, b.inst = strPtr("ia"), strPtr("ib")
	leader := h.stableGroup(a, b)
	if leader != a {
		t.Fatal("a should lead")
	}
	gen := a.gen
	bAssignment := consumerAssignment("t", 1)

	// b restarts: same instance id, no member id. No rebalance: it gets the
	// current generation and, on SyncGroup, its assignment.
	b2 := h.member("g")
	b2.inst = strPtr("ib")
	r := b2.join()
	if r.Generation != gen || b2.id == b.id || r.LeaderID != a.id || r.SkipAssignment || len(r.Members) != 0 {
		t.Fatalf("static rejoin: %+v", r)
	}
	if !strings.HasPrefix(b2.id, "ib-") {
		t.Fatalf("static member id %q is not instanceID-uuid", b2.id)
	}
	s := b2.sync(nil)
	wantCode(t, "restarted member's sync", s.ErrorCode, nil)
	if string(s.MemberAssignment) != string(bAssignment) {
		t.Fatalf("assignment %x, want %x", s.MemberAssignment, bAssignment)
	}
	wantCode(t, "a's heartbeat", a.heartbeat(), nil)
	wantCode(t, "old b's heartbeat", b.heartbeat(), kerr.FencedInstanceID)
	wantCode(t, "old b's commit", b.commit("t", 1, 5), kerr.FencedInstanceID)
	wantCode(t, "new b's heartbeat", b2.heartbeat(), nil)
	if d := h.describe("g"); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	live, err := h.log.replay(h.c.PartitionFor("g"))
	if err != nil {
		t.Fatal(err)
	}
	if g := live["group g"]; !strings.Contains(g, b2.id) || strings.Contains(g, b.id) {
		t.Fatalf("the log does not hold the new member id: %s", g)
	}

	// The static leader restarts (v9): it is told it leads, with the
	// members, and to skip the assignment.
	a2 := h.member("g")
	a2.inst = strPtr("ia")
	r = a2.join()
	if r.Generation != gen || r.LeaderID != a2.id || !r.SkipAssignment || len(r.Members) != 2 {
		t.Fatalf("static leader rejoin v9: %+v", r)
	}
	// Before v9 a restarted leader is given the old leader id, so it does
	// not assign.
	a3 := h.member("g")
	a3.inst, a3.version = strPtr("ia"), 8
	r = a3.join()
	if r.Generation != gen || r.LeaderID != a2.id || r.SkipAssignment || len(r.Members) != 0 {
		t.Fatalf("static leader rejoin v8: %+v", r)
	}

	// A restart with new metadata does not rebalance either, as in Kafka:
	// only a change of the group's protocol does. A cooperative consumer's
	// metadata lists the partitions it owns, which a restarted one no
	// longer does: a rebalance here would undo what static membership is
	// for.
	b3 := h.member("g")
	b3.inst, b3.topics = strPtr("ib"), []string{"t", "u"}
	r = b3.join()
	if r.Generation != gen {
		t.Fatalf("static rejoin with new metadata: generation %d, want %d (no rebalance)", r.Generation, gen)
	}
	a3.gen = gen
	wantCode(t, "leader heartbeat", a3.heartbeat(), nil)
	wantCode(t, "fenced b2", b2.heartbeat(), kerr.FencedInstanceID)
	wantCode(t, "b3's heartbeat", b3.heartbeat(), nil)

	// LeaveGroup by instance id alone removes the static member.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 5
	leave.Group = "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: strPtr("ib")}}
	lr := h.do(leave).(*kmsg.LeaveGroupResponse)
	wantCode(t, "leave", lr.ErrorCode, nil)
	wantCode(t, "leave of ib", lr.Members[0].ErrorCode, nil)
	wantCode(t, "b3 after leaving", b3.heartbeat(), kerr.UnknownMemberID)
}

func TestStaticReplacementWriteFailureReverts(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	a.inst, b.inst = strPtr("ia"), strPtr("ib")
	h.stableGroup(a, b)

	h.log.setFail(func(int32, []byte) error { return kerr.NotEnoughReplicas })
	b2 := h.member("g")
	b2.inst = strPtr("ib")
	r := h.do(b2.joinReq()).(*kmsg.JoinGroupResponse)
	wantCode(t, "static rejoin with a failing log", r.ErrorCode, kerr.CoordinatorNotAvailable)
	h.log.setFail(nil)
	// The old member id still holds the instance.
	wantCode(t, "old b's heartbeat", b.heartbeat(), nil)
}

func TestLeaveGroup(t *testing.T) {
	h := newHarness(t)
	a, b, c := h.member("g"), h.member("g"), h.member("g")
	h.stableGroup(a, b, c)

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 3
	leave.Group = "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: b.id}, {MemberID: "nobody"}, {MemberID: c.id}}
	lr := h.do(leave).(*kmsg.LeaveGroupResponse)
	wantCode(t, "leave", lr.ErrorCode, nil)
	for i, want := range []*kerr.Error{nil, kerr.UnknownMemberID, nil} {
		wantCode(t, fmt.Sprintf("member %d", i), lr.Members[i].ErrorCode, want)
	}
	wantCode(t, "a's heartbeat", a.heartbeat(), kerr.RebalanceInProgress)
	r := a.join()
	if len(r.Members) != 1 {
		t.Fatalf("%d members left, want 1", len(r.Members))
	}
	a.sync(nil)

	// v0: one member; its error is the top-level error.
	old := kmsg.NewPtrLeaveGroupRequest()
	old.Version = 0
	old.Group, old.MemberID = "g", "nobody"
	wantCode(t, "v0 unknown member", h.do(old).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.UnknownMemberID)
	old.MemberID = a.id
	wantCode(t, "v0 leave", h.do(old).(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	h.waitState("g", "Empty")
}

func TestInitialRebalanceDelay(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.InitialRebalanceDelay = 300 * time.Millisecond })
	a, b := h.member("g"), h.member("g")
	chA := a.startJoin()
	h.pending(chA, "join during the initial delay")
	chB := b.startJoin()
	ra, rb := a.finishJoin(chA), b.finishJoin(chB)
	if ra.Generation != 1 || rb.Generation != 1 {
		t.Fatalf("generations %d %d: both should be in the first generation", ra.Generation, rb.Generation)
	}
	if len(ra.Members)+len(rb.Members) != 2 {
		t.Fatalf("leader got %d + %d members", len(ra.Members), len(rb.Members))
	}
}

func TestSyncGroupWriteFailure(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	h.stableGroup(a, b)
	c := h.member("g")
	chC, chA, chB := c.startJoin(), a.startJoin(), b.startJoin()
	a.finishJoin(chA)
	b.finishJoin(chB)
	c.finishJoin(chC)

	h.log.setFail(func(int32, []byte) error { return kerr.NotLeaderForPartition })
	chSB := b.startSync(nil)
	sa := a.sync(map[string][]byte{a.id: {1}, b.id: {2}, c.id: {3}})
	wantCode(t, "leader sync with a failing log", sa.ErrorCode, kerr.NotCoordinator)
	wantCode(t, "follower sync", h.wait(chSB).(*kmsg.SyncGroupResponse).ErrorCode, kerr.NotCoordinator)
	h.log.setFail(nil)
	if d := h.describe("g"); d.State != "PreparingRebalance" {
		t.Fatalf("state %s after a failed assignment write, want PreparingRebalance", d.State)
	}
	// The failed generation was not written.
	live, _ := h.log.replay(h.c.PartitionFor("g"))
	if strings.Contains(live["group g"], c.id) {
		t.Fatalf("failed generation is in the log: %s", live["group g"])
	}
}

func TestGroupsSummary(t *testing.T) {
	h := newHarness(t)
	h.stableGroup(h.member("a"), h.member("a"))
	wantCode(t, "commit", h.commit("b", -1, "", nil, "t", 0, 1), nil)
	got := h.c.Groups()
	if len(got) != 2 {
		t.Fatalf("Groups: %+v", got)
	}
	if got[0].Group != "a" || got[0].State != "Stable" || got[0].Members != 2 || got[0].ProtocolType != "consumer" || got[0].Partition != h.c.PartitionFor("a") {
		t.Fatalf("summary of a: %+v", got[0])
	}
	if got[1].Group != "b" || got[1].State != "Empty" || got[1].Members != 0 || got[1].Offsets != 1 {
		t.Fatalf("summary of b: %+v", got[1])
	}
}

func TestRejoinPaths(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	if h.stableGroup(a, b) != a {
		t.Fatal("a should lead")
	}
	gen := a.gen

	// A follower rejoining a Stable group with the same metadata gets the
	// current generation at once; nothing rebalances.
	r := b.join()
	if r.Generation != gen || len(r.Members) != 0 || r.LeaderID != a.id {
		t.Fatalf("follower rejoin: %+v", r)
	}
	wantCode(t, "a's heartbeat", a.heartbeat(), nil)

	// With new metadata it rebalances.
	b.topics = []string{"t", "u"}
	chB := b.startJoin()
	h.pending(chB, "rejoin with new metadata")
	wantCode(t, "a's heartbeat", a.heartbeat(), kerr.RebalanceInProgress)
	ra, rb := a.join(), b.finishJoin(chB)
	if ra.Generation != gen+1 || rb.Generation != gen+1 {
		t.Fatalf("generations %d %d", ra.Generation, rb.Generation)
	}

	// During CompletingRebalance, a rejoin with the same metadata (a lost
	// JoinGroup answer) is answered again; the leader gets the members.
	ra = a.join()
	if ra.Generation != gen+1 || len(ra.Members) != 2 {
		t.Fatalf("leader rejoin while completing: %+v", ra)
	}
	chSB := b.startSync(nil)
	a.sync(map[string][]byte{a.id: {1}, b.id: {2}})
	wantCode(t, "b's sync", h.wait(chSB).(*kmsg.SyncGroupResponse).ErrorCode, nil)

	// The leader rejoining a Stable group rebalances it (it saw new
	// metadata). A retried JoinGroup replaces the parked one.
	chA1 := a.startJoin()
	h.pending(chA1, "leader rejoin")
	chA2 := a.startJoin()
	wantCode(t, "replaced JoinGroup", h.wait(chA1).(*kmsg.JoinGroupResponse).ErrorCode, kerr.RebalanceInProgress)
	wantCode(t, "b's heartbeat", b.heartbeat(), kerr.RebalanceInProgress)
	rb = b.join()
	ra = a.finishJoin(chA2)
	if ra.Generation != gen+2 || rb.Generation != gen+2 || len(ra.Members) != 2 {
		t.Fatalf("after leader rejoin: %+v / %+v", ra, rb)
	}
	// Commits and heartbeats of the old generation are refused.
	old := *b
	old.gen = gen + 1
	wantCode(t, "old generation commit", old.commit("t", 0, 1), kerr.IllegalGeneration)
}

func TestLeaderLeavesDuringSync(t *testing.T) {
	h := newHarness(t)
	a, b := h.member("g"), h.member("g")
	h.stableGroup(a, b)
	c := h.member("g")
	chC, chA, chB := c.startJoin(), a.startJoin(), b.startJoin()
	a.finishJoin(chA)
	b.finishJoin(chB)
	c.finishJoin(chC)
	// Followers wait in SyncGroup; the leader leaves instead of assigning.
	chSB, chSC := b.startSync(nil), c.startSync(nil)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 1
	leave.Group, leave.MemberID = "g", a.id
	wantCode(t, "leave", h.do(leave).(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	wantCode(t, "b's sync", h.wait(chSB).(*kmsg.SyncGroupResponse).ErrorCode, kerr.RebalanceInProgress)
	wantCode(t, "c's sync", h.wait(chSC).(*kmsg.SyncGroupResponse).ErrorCode, kerr.RebalanceInProgress)
	chB, chC = b.startJoin(), c.startJoin()
	rb, rc := b.finishJoin(chB), c.finishJoin(chC)
	if rb.LeaderID != rc.LeaderID || rb.LeaderID == a.id || rb.Generation != a.gen+1 {
		t.Fatalf("new generation: %+v / %+v", rb, rc)
	}
}
