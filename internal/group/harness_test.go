package group

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Shrink the coordinator's fixed timers in one place.
	loadRetry = 5 * time.Millisecond
	goleak.VerifyTestMain(m)
}

const (
	waitTimeout = 5 * time.Second
	testParts   = 4
)

// checkFor polls fn until it returns nil or total passes, then fails with
// fn's last error.
func checkFor(t testing.TB, total time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testWriter sends log lines to t.Log until the test ends; set
// CHRONIK_TEST_LOG=1 to see them.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CHRONIK_TEST_LOG") == "" {
		return nil
	}
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type harness struct {
	t   testing.TB
	cfg Config
	log *fakeLog
	c   *Coordinator
}

func testConfig(t testing.TB) Config {
	return Config{
		Partitions:        testParts,
		MinSessionTimeout: 10 * time.Millisecond,
		MaxSessionTimeout: 30 * time.Second,
		OffsetsRetention:  time.Hour,
		Logger:            testLogger(t),
	}
}

// newHarness starts a coordinator over a fake log that leads every
// partition, and waits until all are loaded.
func newHarness(t testing.TB, mod ...func(*Config)) *harness {
	t.Helper()
	cfg := testConfig(t)
	for _, m := range mod {
		m(&cfg)
	}
	h := &harness{t: t, cfg: cfg, log: newFakeLog()}
	h.start()
	t.Cleanup(func() {
		h.c.Close()
		h.log.release()
		h.log.wg.Wait()
	})
	return h
}

func (h *harness) start() {
	h.c = New(h.cfg, h.log)
	for p := range int32(testParts) {
		h.c.BecameLeader(p)
	}
	h.waitLoaded()
}

// restart closes the coordinator and starts a new one over the same log.
func (h *harness) restart() {
	h.t.Helper()
	h.c.Close()
	h.log.wg.Wait()
	h.start()
}

func (h *harness) waitLoaded() {
	h.t.Helper()
	checkFor(h.t, waitTimeout, func() error {
		resp := h.do(&kmsg.ListGroupsRequest{Version: 4}).(*kmsg.ListGroupsResponse)
		if resp.ErrorCode != 0 {
			return fmt.Errorf("ListGroups: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		return nil
	})
}

// async hands req to the coordinator and returns where its response goes.
func (h *harness) async(req kmsg.Request) <-chan kmsg.Response {
	return h.asyncFrom(Client{ID: "test-client", Host: "/127.0.0.1"}, req)
}

func (h *harness) asyncFrom(cl Client, req kmsg.Request) <-chan kmsg.Response {
	ch := make(chan kmsg.Response, 2)
	h.c.HandleFrom(cl, req, func(r kmsg.Response) { ch <- r })
	return ch
}

// do handles req and waits for its response.
func (h *harness) do(req kmsg.Request) kmsg.Response {
	h.t.Helper()
	return h.wait(h.async(req))
}

func (h *harness) wait(ch <-chan kmsg.Response) kmsg.Response {
	h.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitTimeout):
		h.t.Fatalf("no response within %v", waitTimeout)
		return nil
	}
}

// pending asserts that nothing has answered on ch yet.
func (h *harness) pending(ch <-chan kmsg.Response, what string) {
	h.t.Helper()
	select {
	case r := <-ch:
		h.t.Fatalf("%s: answered early: %+v", what, r)
	default:
	}
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return fmt.Sprintf("code %d", code)
}

func wantCode(t testing.TB, what string, got int16, want *kerr.Error) {
	t.Helper()
	wc := int16(0)
	if want != nil {
		wc = want.Code
	}
	if got != wc {
		t.Fatalf("%s: error %s, want %s", what, errName(got), errName(wc))
	}
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.ConsumerMemberMetadata{Version: 0, Topics: topics}
	return m.AppendTo(nil)
}

func consumerAssignment(topic string, parts ...int32) []byte {
	a := kmsg.ConsumerMemberAssignment{Version: 0, Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: topic, Partitions: parts}}}
	return a.AppendTo(nil)
}

// testMember drives one simulated client of a group.
type testMember struct {
	h       *harness
	group   string
	id      string
	inst    *string
	gen     int32
	session int32 // ms
	rebal   int32 // ms
	topics  []string
	version int16 // of JoinGroup; the other APIs use their highest version
}

func (h *harness) member(group string) *testMember {
	return &testMember{h: h, group: group, session: 5000, rebal: 5000, topics: []string{"t"}, version: 9}
}

func (m *testMember) joinReq() *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = m.version
	r.Group = m.group
	r.MemberID = m.id
	r.InstanceID = m.inst
	r.SessionTimeoutMillis = m.session
	r.RebalanceTimeoutMillis = m.rebal
	r.ProtocolType = "consumer"
	r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta(m.topics...)}}
	return r
}

// startJoin sends JoinGroup (first getting a member id with
// MEMBER_ID_REQUIRED if needed) and returns where its answer goes.
func (m *testMember) startJoin() <-chan kmsg.Response {
	m.h.t.Helper()
	if m.id == "" && m.inst == nil && m.version >= 4 {
		resp := m.h.do(m.joinReq()).(*kmsg.JoinGroupResponse)
		wantCode(m.h.t, "first JoinGroup", resp.ErrorCode, kerr.MemberIDRequired)
		m.id = resp.MemberID
	}
	return m.h.async(m.joinReq())
}

func (m *testMember) finishJoin(ch <-chan kmsg.Response) *kmsg.JoinGroupResponse {
	m.h.t.Helper()
	resp := m.h.wait(ch).(*kmsg.JoinGroupResponse)
	wantCode(m.h.t, "JoinGroup of "+m.id, resp.ErrorCode, nil)
	m.id, m.gen = resp.MemberID, resp.Generation
	return resp
}

func (m *testMember) join() *kmsg.JoinGroupResponse {
	m.h.t.Helper()
	return m.finishJoin(m.startJoin())
}

func (m *testMember) syncReq(assignment map[string][]byte) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group = m.group
	r.Generation = m.gen
	r.MemberID = m.id
	r.InstanceID = m.inst
	for id, a := range assignment {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return r
}

func (m *testMember) startSync(assignment map[string][]byte) <-chan kmsg.Response {
	return m.h.async(m.syncReq(assignment))
}

func (m *testMember) sync(assignment map[string][]byte) *kmsg.SyncGroupResponse {
	m.h.t.Helper()
	return m.h.wait(m.startSync(assignment)).(*kmsg.SyncGroupResponse)
}

func (m *testMember) heartbeat() int16 {
	m.h.t.Helper()
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.Generation, r.MemberID, r.InstanceID = m.group, m.gen, m.id, m.inst
	return m.h.do(r).(*kmsg.HeartbeatResponse).ErrorCode
}

func (m *testMember) commit(topic string, part int32, offset int64) int16 {
	m.h.t.Helper()
	return m.h.commit(m.group, m.gen, m.id, m.inst, topic, part, offset)
}

// commit commits one offset with OffsetCommit v8.
func (h *harness) commit(group string, gen int32, memberID string, inst *string, topic string, part int32, offset int64) int16 {
	h.t.Helper()
	resp := h.do(commitReq(group, gen, memberID, inst, topic, part, offset)).(*kmsg.OffsetCommitResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func commitReq(group string, gen int32, memberID string, inst *string, topic string, part int32, offset int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 8
	r.Group, r.Generation, r.MemberID, r.InstanceID = group, gen, memberID, inst
	md := fmt.Sprintf("md-%d", offset)
	r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: part, Offset: offset, LeaderEpoch: 3, Metadata: &md},
	}}}
	return r
}

// fetch returns the committed offset of one partition (-1 if none) with
// OffsetFetch v8.
func (h *harness) fetch(group, topic string, part int32) int64 {
	h.t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{part}}}}}
	resp := h.do(r).(*kmsg.OffsetFetchResponse)
	wantCode(h.t, "OffsetFetch", resp.Groups[0].ErrorCode, nil)
	return resp.Groups[0].Topics[0].Partitions[0].Offset
}

// fetchAll returns every committed offset of group as "topic-partition" →
// offset, with OffsetFetch v7 and null topics.
func (h *harness) fetchAll(group string) map[string]int64 {
	h.t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 7
	r.Group = group
	r.Topics = nil
	resp := h.do(r).(*kmsg.OffsetFetchResponse)
	wantCode(h.t, "OffsetFetch", resp.ErrorCode, nil)
	out := map[string]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s-%d", t.Topic, p.Partition)] = p.Offset
		}
	}
	return out
}

func (h *harness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	h.t.Helper()
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 5
	r.Groups = []string{group}
	return h.do(r).(*kmsg.DescribeGroupsResponse).Groups[0]
}

func (h *harness) waitState(group, state string) {
	h.t.Helper()
	checkFor(h.t, waitTimeout, func() error {
		if got := h.describe(group).State; got != state {
			return fmt.Errorf("group %s is %s, want %s", group, got, state)
		}
		return nil
	})
}

// shard runs fn in the loop of partition p's shard and waits for it.
func (h *harness) inShard(p int32, fn func(s *shard)) {
	h.t.Helper()
	s := h.c.shardOf(p)
	if s == nil {
		h.t.Fatalf("partition %d is not led", p)
	}
	done := make(chan struct{})
	if !s.q.push(func() { fn(s); close(done) }) {
		h.t.Fatalf("shard %d stopped", p)
	}
	select {
	case <-done:
	case <-time.After(waitTimeout):
		h.t.Fatalf("shard %d did not run the closure", p)
	}
}

// compact forces a compaction of p and waits until it has finished.
func (h *harness) compact(p int32) {
	h.t.Helper()
	h.inShard(p, func(s *shard) {
		s.sinceCompaction = s.c.cfg.CompactThreshold
		s.maybeCompact()
	})
	h.waitCompacted(p)
}

func (h *harness) waitCompacted(p int32) {
	h.t.Helper()
	checkFor(h.t, waitTimeout, func() error {
		var busy bool
		h.inShard(p, func(s *shard) { busy = s.compacting })
		if busy {
			return fmt.Errorf("partition %d is still compacting", p)
		}
		return nil
	})
}

// stableGroup forms a Stable group of the given members: new members join
// first, then the existing ones rejoin; the leader assigns each member
// "t" partition i. It returns the leader.
func (h *harness) stableGroup(ms ...*testMember) *testMember {
	h.t.Helper()
	allNew := true
	for _, m := range ms {
		allNew = allNew && m.id == ""
	}
	if len(ms) > 1 && allNew {
		// A new group completes its first join phase with its first
		// member at once (no initial delay in tests).
		h.stableGroup(ms[0])
	}
	chs := make([]<-chan kmsg.Response, len(ms))
	for i, m := range ms {
		if m.id == "" {
			chs[i] = m.startJoin()
		}
	}
	for i, m := range ms {
		if chs[i] == nil {
			chs[i] = m.startJoin()
		}
	}
	var leader *testMember
	for i, m := range ms {
		resp := m.finishJoin(chs[i])
		if resp.LeaderID == m.id {
			leader = m
			if len(resp.Members) != len(ms) {
				h.t.Fatalf("leader got %d members, want %d", len(resp.Members), len(ms))
			}
		}
	}
	if leader == nil {
		h.t.Fatal("no member was told it leads")
	}
	for _, m := range ms[1:] {
		if m.gen != ms[0].gen {
			h.t.Fatalf("generations differ: %d and %d", m.gen, ms[0].gen)
		}
	}
	assignment := map[string][]byte{}
	for i, m := range ms {
		assignment[m.id] = consumerAssignment("t", int32(i))
	}
	syncs := make([]<-chan kmsg.Response, len(ms))
	for i, m := range ms {
		if m != leader {
			syncs[i] = m.startSync(nil)
		}
	}
	for i, m := range ms {
		if m == leader {
			syncs[i] = m.startSync(assignment)
		}
	}
	for i, m := range ms {
		resp := h.wait(syncs[i]).(*kmsg.SyncGroupResponse)
		wantCode(h.t, "SyncGroup of "+m.id, resp.ErrorCode, nil)
		if string(resp.MemberAssignment) != string(assignment[m.id]) {
			h.t.Fatalf("member %d got assignment %x, want %x", i, resp.MemberAssignment, assignment[m.id])
		}
	}
	return leader
}
