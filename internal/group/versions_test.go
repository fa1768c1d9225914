package group

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every supported version of every API, through the wire: the request is
// encoded at its version and decoded (as the broker will), handled, and
// the response is encoded at the request's version and decoded again.

// wireDo sends req through the wire codecs and returns the decoded response.
func wireDo(t *testing.T, h *harness, req kmsg.Request) kmsg.Response {
	t.Helper()
	return h.wait(wireAsync(t, h, req))
}

func wireAsync(t *testing.T, h *harness, req kmsg.Request) <-chan kmsg.Response {
	t.Helper()
	v := req.GetVersion()
	dec := kmsg.RequestForKey(req.Key())
	dec.SetVersion(v)
	if err := dec.ReadFrom(req.AppendTo(nil)); err != nil {
		t.Fatalf("%s v%d request does not decode: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	out := make(chan kmsg.Response, 1)
	raw := h.async(dec)
	go func() {
		resp := <-raw
		if resp.GetVersion() != v || resp.Key() != req.Key() {
			t.Errorf("%s v%d answered with key %d v%d", kmsg.NameForKey(req.Key()), v, resp.Key(), resp.GetVersion())
		}
		back := req.ResponseKind()
		back.SetVersion(v)
		if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
			t.Errorf("%s v%d response does not decode: %v", kmsg.NameForKey(req.Key()), v, err)
		}
		out <- back
	}()
	return out
}

func forVersions(t *testing.T, key kmsg.Key, lo, hi int16, fn func(t *testing.T, h *harness, v int16)) {
	r, ok := versions[key.Int16()]
	if !ok || r.min != lo || r.max != hi {
		t.Fatalf("%s versions %v, want %d-%d", key.Name(), r, lo, hi)
	}
	h := newHarness(t)
	for v := lo; v <= hi; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { fn(t, h, v) })
	}
}

func TestAPIVersions(t *testing.T) {
	want := map[int16][2]int16{8: {0, 8}, 9: {0, 8}, 11: {0, 9}, 12: {0, 4}, 13: {0, 5}, 14: {0, 5}, 15: {0, 5}, 16: {0, 4}, 42: {0, 2}, 47: {0, 0}}
	got := APIVersions()
	if len(got) != len(want) {
		t.Fatalf("APIVersions: %+v", got)
	}
	for _, k := range got {
		if w := want[k.ApiKey]; w != [2]int16{k.MinVersion, k.MaxVersion} {
			t.Fatalf("key %d: %d-%d, want %v", k.ApiKey, k.MinVersion, k.MaxVersion, w)
		}
	}
	// A version outside the range is refused.
	h := newHarness(t)
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 5
	r.Group = "g"
	wantCode(t, "Heartbeat v5", h.do(r).(*kmsg.HeartbeatResponse).ErrorCode, kerr.UnsupportedVersion)
}

func TestJoinGroupVersions(t *testing.T) {
	forVersions(t, kmsg.JoinGroup, 0, 9, func(t *testing.T, h *harness, v int16) {
		m := h.member(fmt.Sprintf("join-v%d", v))
		m.version = v
		if v >= 4 {
			first := wireDo(t, h, m.joinReq()).(*kmsg.JoinGroupResponse)
			wantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
			m.id = first.MemberID
		}
		resp := wireDo(t, h, m.joinReq()).(*kmsg.JoinGroupResponse)
		wantCode(t, "join", resp.ErrorCode, nil)
		if resp.Generation != 1 || resp.MemberID == "" || resp.LeaderID != resp.MemberID || len(resp.Members) != 1 {
			t.Fatalf("join: %+v", resp)
		}
		if resp.Protocol == nil || *resp.Protocol != "range" {
			t.Fatalf("protocol %v", resp.Protocol)
		}
		if (v >= 7) != (resp.ProtocolType != nil) || v >= 7 && *resp.ProtocolType != "consumer" {
			t.Fatalf("protocol type %v at v%d", resp.ProtocolType, v)
		}
		if v >= 5 {
			// A static member: no MEMBER_ID_REQUIRED, instance id listed.
			s := h.member(fmt.Sprintf("join-static-v%d", v))
			s.version, s.inst = v, strPtr("inst")
			resp := wireDo(t, h, s.joinReq()).(*kmsg.JoinGroupResponse)
			wantCode(t, "static join", resp.ErrorCode, nil)
			if len(resp.Members) != 1 || resp.Members[0].InstanceID == nil || *resp.Members[0].InstanceID != "inst" {
				t.Fatalf("static member: %+v", resp.Members)
			}
		}
	})
}

func TestSyncGroupVersions(t *testing.T) {
	forVersions(t, kmsg.SyncGroup, 0, 5, func(t *testing.T, h *harness, v int16) {
		m := h.member(fmt.Sprintf("sync-v%d", v))
		if v >= 3 {
			m.inst = strPtr("i")
		}
		m.join()
		req := m.syncReq(map[string][]byte{m.id: {1, 2, 3}})
		req.Version = v
		if v >= 5 {
			req.ProtocolType, req.Protocol = strPtr("consumer"), strPtr("range")
		}
		resp := wireDo(t, h, req).(*kmsg.SyncGroupResponse)
		wantCode(t, "sync", resp.ErrorCode, nil)
		if string(resp.MemberAssignment) != "\x01\x02\x03" {
			t.Fatalf("assignment %x", resp.MemberAssignment)
		}
		if v >= 5 && (resp.Protocol == nil || *resp.Protocol != "range" || resp.ProtocolType == nil || *resp.ProtocolType != "consumer") {
			t.Fatalf("v5 protocol fields %v %v", resp.ProtocolType, resp.Protocol)
		}
		req.Generation++
		wantCode(t, "wrong generation", wireDo(t, h, req).(*kmsg.SyncGroupResponse).ErrorCode, kerr.IllegalGeneration)
		if v >= 5 {
			req.Generation--
			req.Protocol = strPtr("sticky")
			wantCode(t, "other protocol", wireDo(t, h, req).(*kmsg.SyncGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
		}
	})
}

func TestHeartbeatVersions(t *testing.T) {
	forVersions(t, kmsg.Heartbeat, 0, 4, func(t *testing.T, h *harness, v int16) {
		m := h.member(fmt.Sprintf("hb-v%d", v))
		if v >= 3 {
			m.inst = strPtr("i")
		}
		h.stableGroup(m)
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version = v
		req.Group, req.Generation, req.MemberID = m.group, m.gen, m.id
		if v >= 3 {
			req.InstanceID = m.inst
		}
		wantCode(t, "heartbeat", wireDo(t, h, req).(*kmsg.HeartbeatResponse).ErrorCode, nil)
		req.Generation++
		wantCode(t, "wrong generation", wireDo(t, h, req).(*kmsg.HeartbeatResponse).ErrorCode, kerr.IllegalGeneration)
		req.MemberID = "nobody"
		req.InstanceID = nil
		wantCode(t, "unknown member", wireDo(t, h, req).(*kmsg.HeartbeatResponse).ErrorCode, kerr.UnknownMemberID)
	})
}

func TestLeaveGroupVersions(t *testing.T) {
	forVersions(t, kmsg.LeaveGroup, 0, 5, func(t *testing.T, h *harness, v int16) {
		m := h.member(fmt.Sprintf("leave-v%d", v))
		h.stableGroup(m)
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Version = v
		req.Group = m.group
		if v < 3 {
			req.MemberID = m.id
		} else {
			req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: m.id, Reason: strPtr("bye")}, {MemberID: "nobody"}}
		}
		resp := wireDo(t, h, req).(*kmsg.LeaveGroupResponse)
		wantCode(t, "leave", resp.ErrorCode, nil)
		if v >= 3 {
			if len(resp.Members) != 2 || resp.Members[0].MemberID != m.id {
				t.Fatalf("members %+v", resp.Members)
			}
			wantCode(t, "leaving member", resp.Members[0].ErrorCode, nil)
			wantCode(t, "unknown member", resp.Members[1].ErrorCode, kerr.UnknownMemberID)
		}
		h.waitState(m.group, "Empty")
	})
}

func TestOffsetCommitVersions(t *testing.T) {
	forVersions(t, kmsg.OffsetCommit, 0, 8, func(t *testing.T, h *harness, v int16) {
		group := fmt.Sprintf("commit-v%d", v)
		m := h.member(group)
		if v >= 7 {
			m.inst = strPtr("i")
		}
		req := commitReq(group, -1, "", nil, "t", 0, int64(100+v))
		req.Version = v
		if v >= 1 {
			// A member of the group commits.
			h.stableGroup(m)
			req.Generation, req.MemberID = m.gen, m.id
			req.Topics[0].Partitions[0].Timestamp = -1
		}
		if v >= 7 {
			req.InstanceID = m.inst
		}
		if v >= 2 && v <= 4 {
			req.RetentionTimeMillis = 3_600_000
		}
		resp := wireDo(t, h, req).(*kmsg.OffsetCommitResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].Topic != "t" || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("response %+v", resp.Topics)
		}
		wantCode(t, "commit", resp.Topics[0].Partitions[0].ErrorCode, nil)
		if got := h.fetch(group, "t", 0); got != int64(100+v) {
			t.Fatalf("offset %d, want %d", got, 100+v)
		}
		if v >= 1 {
			req.Generation++
			resp := wireDo(t, h, req).(*kmsg.OffsetCommitResponse)
			wantCode(t, "wrong generation", resp.Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration)
		}
	})
}

func TestOffsetFetchVersions(t *testing.T) {
	forVersions(t, kmsg.OffsetFetch, 0, 8, func(t *testing.T, h *harness, v int16) {
		group := fmt.Sprintf("fetch-v%d", v)
		wantCode(t, "commit", h.commit(group, -1, "", nil, "t", 2, 55), nil)
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = v
		check := func(p kmsg.OffsetFetchResponseTopicPartition) {
			t.Helper()
			if p.Partition != 2 || p.Offset != 55 || p.Metadata == nil || *p.Metadata != "md-55" {
				t.Fatalf("partition %+v", p)
			}
			if (v >= 5) != (p.LeaderEpoch == 3) {
				t.Fatalf("leader epoch %d at v%d", p.LeaderEpoch, v)
			}
		}
		if v >= 8 {
			req.Groups = []kmsg.OffsetFetchRequestGroup{
				{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{2}}}},
				{Group: group}, // null topics: all
			}
			resp := wireDo(t, h, req).(*kmsg.OffsetFetchResponse)
			if len(resp.Groups) != 2 {
				t.Fatalf("groups %+v", resp.Groups)
			}
			for _, g := range resp.Groups {
				wantCode(t, "group", g.ErrorCode, nil)
				if len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 1 {
					t.Fatalf("topics %+v", g.Topics)
				}
				p := g.Topics[0].Partitions[0]
				check(kmsg.OffsetFetchResponseTopicPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata})
			}
			return
		}
		req.Group = group
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{2, 3}}}
		if v >= 7 {
			req.RequireStable = true
		}
		resp := wireDo(t, h, req).(*kmsg.OffsetFetchResponse)
		wantCode(t, "fetch", resp.ErrorCode, nil)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("topics %+v", resp.Topics)
		}
		check(resp.Topics[0].Partitions[0])
		if o := resp.Topics[0].Partitions[1].Offset; o != -1 {
			t.Fatalf("uncommitted partition offset %d", o)
		}
		if v >= 2 {
			req.Topics = nil
			resp := wireDo(t, h, req).(*kmsg.OffsetFetchResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("all topics %+v", resp.Topics)
			}
			check(resp.Topics[0].Partitions[0])
		}
	})
}

func TestDescribeGroupsVersions(t *testing.T) {
	forVersions(t, kmsg.DescribeGroups, 0, 5, func(t *testing.T, h *harness, v int16) {
		group := fmt.Sprintf("describe-v%d", v)
		m := h.member(group)
		m.inst = strPtr("i")
		h.stableGroup(m)
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version = v
		req.Groups = []string{group, "none"}
		req.IncludeAuthorizedOperations = true
		resp := wireDo(t, h, req).(*kmsg.DescribeGroupsResponse)
		if len(resp.Groups) != 2 {
			t.Fatalf("groups %+v", resp.Groups)
		}
		g := resp.Groups[0]
		wantCode(t, "describe", g.ErrorCode, nil)
		if g.Group != group || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "range" || len(g.Members) != 1 {
			t.Fatalf("group %+v", g)
		}
		if gm := g.Members[0]; gm.MemberID != m.id || len(gm.MemberAssignment) == 0 || len(gm.ProtocolMetadata) == 0 || (v >= 4) != (gm.InstanceID != nil) {
			t.Fatalf("member %+v", gm)
		}
		if v >= 3 && g.AuthorizedOperations != groupOperations {
			t.Fatalf("authorized operations %d", g.AuthorizedOperations)
		}
		if resp.Groups[1].State != "Dead" || resp.Groups[1].ErrorCode != 0 {
			t.Fatalf("unknown group %+v", resp.Groups[1])
		}
	})
}

func TestListGroupsVersions(t *testing.T) {
	forVersions(t, kmsg.ListGroups, 0, 4, func(t *testing.T, h *harness, v int16) {
		if v == 0 {
			h.stableGroup(h.member("list-stable"))
			wantCode(t, "commit", h.commit("list-empty", -1, "", nil, "t", 0, 1), nil)
		}
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = v
		resp := wireDo(t, h, req).(*kmsg.ListGroupsResponse)
		wantCode(t, "list", resp.ErrorCode, nil)
		if len(resp.Groups) != 2 || resp.Groups[0].Group != "list-empty" || resp.Groups[1].Group != "list-stable" || resp.Groups[1].ProtocolType != "consumer" {
			t.Fatalf("groups %+v", resp.Groups)
		}
		if v >= 4 {
			if resp.Groups[0].GroupState != "Empty" || resp.Groups[1].GroupState != "Stable" {
				t.Fatalf("states %+v", resp.Groups)
			}
			req.StatesFilter = []string{"stable"}
			resp := wireDo(t, h, req).(*kmsg.ListGroupsResponse)
			if len(resp.Groups) != 1 || resp.Groups[0].Group != "list-stable" {
				t.Fatalf("filtered %+v", resp.Groups)
			}
		}
	})
}

func TestDeleteGroupsVersions(t *testing.T) {
	forVersions(t, kmsg.DeleteGroups, 0, 2, func(t *testing.T, h *harness, v int16) {
		group := fmt.Sprintf("delete-v%d", v)
		wantCode(t, "commit", h.commit(group, -1, "", nil, "t", 0, 1), nil)
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version = v
		req.Groups = []string{group, "none"}
		resp := wireDo(t, h, req).(*kmsg.DeleteGroupsResponse)
		if len(resp.Groups) != 2 || resp.Groups[0].Group != group {
			t.Fatalf("groups %+v", resp.Groups)
		}
		wantCode(t, "delete", resp.Groups[0].ErrorCode, nil)
		wantCode(t, "delete unknown", resp.Groups[1].ErrorCode, kerr.GroupIDNotFound)
		if got := h.fetch(group, "t", 0); got != -1 {
			t.Fatalf("offset %d after delete", got)
		}
	})
}

func TestOffsetDeleteVersions(t *testing.T) {
	forVersions(t, kmsg.OffsetDelete, 0, 0, func(t *testing.T, h *harness, v int16) {
		wantCode(t, "commit", h.commit("od", -1, "", nil, "t", 0, 1), nil)
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Version = v
		req.Group = "od"
		req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		resp := wireDo(t, h, req).(*kmsg.OffsetDeleteResponse)
		wantCode(t, "group", resp.ErrorCode, nil)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("topics %+v", resp.Topics)
		}
		wantCode(t, "t-0", resp.Topics[0].Partitions[0].ErrorCode, nil)
		if got := h.fetch("od", "t", 0); got != -1 {
			t.Fatalf("offset %d after delete", got)
		}
	})
}

// Every API answers NOT_COORDINATOR, in its own place, for a group whose
// partition this node does not lead.
func TestNotCoordinator(t *testing.T) {
	h := newHarness(t)
	p := h.c.PartitionFor("g")
	h.c.Resigned(p)
	nc := kerr.NotCoordinator
	jr := h.member("g").joinReq()
	wantCode(t, "JoinGroup", wireDo(t, h, jr).(*kmsg.JoinGroupResponse).ErrorCode, nc)
	sr := h.member("g").syncReq(nil)
	wantCode(t, "SyncGroup", wireDo(t, h, sr).(*kmsg.SyncGroupResponse).ErrorCode, nc)
	hr := kmsg.NewPtrHeartbeatRequest()
	hr.Group = "g"
	wantCode(t, "Heartbeat", wireDo(t, h, hr).(*kmsg.HeartbeatResponse).ErrorCode, nc)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version, lr.Group = 5, "g"
	wantCode(t, "LeaveGroup", wireDo(t, h, lr).(*kmsg.LeaveGroupResponse).ErrorCode, nc)
	cr := commitReq("g", -1, "", nil, "t", 0, 1)
	wantCode(t, "OffsetCommit", wireDo(t, h, cr).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nc)
	fr := kmsg.NewPtrOffsetFetchRequest()
	fr.Version, fr.Group = 4, "g"
	wantCode(t, "OffsetFetch", wireDo(t, h, fr).(*kmsg.OffsetFetchResponse).ErrorCode, nc)
	dr := kmsg.NewPtrDescribeGroupsRequest()
	dr.Groups = []string{"g"}
	wantCode(t, "DescribeGroups", wireDo(t, h, dr).(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode, nc)
	xr := kmsg.NewPtrDeleteGroupsRequest()
	xr.Groups = []string{"g"}
	wantCode(t, "DeleteGroups", wireDo(t, h, xr).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, nc)
	or := kmsg.NewPtrOffsetDeleteRequest()
	or.Group = "g"
	wantCode(t, "OffsetDelete", wireDo(t, h, or).(*kmsg.OffsetDeleteResponse).ErrorCode, nc)
	// Handle without client information works too.
	ch := make(chan kmsg.Response, 1)
	h.c.Handle(hr, func(r kmsg.Response) { ch <- r })
	wantCode(t, "Heartbeat via Handle", h.wait(ch).(*kmsg.HeartbeatResponse).ErrorCode, nc)
}
