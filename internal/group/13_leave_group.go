package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup: v0-5
//
// Behavior:
//   - The leaving members are removed and the group rebalances; their
//     parked JoinGroup or SyncGroup gets UNKNOWN_MEMBER_ID.
//   - A member named by group instance id with an empty member id is the
//     static member of that instance (administrative removal); a member id
//     that does not match its instance id gets FENCED_INSTANCE_ID.
//   - An unknown member, or any member of an unknown group, gets
//     UNKNOWN_MEMBER_ID.
//
// Version notes:
//   - v1: throttle time
//   - v3: a batch of members, each with its own error (v0-2: one member id;
//     its error is the top-level error)
//   - v4: flexible versions
//   - v5: a reason per member (logged)
func init() { versions[kmsg.LeaveGroup.Int16()] = versionRange{0, 5} }

func (c *Coordinator) handleLeaveGroup(req *kmsg.LeaveGroupRequest, respond func(kmsg.Response)) {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	resp.Version = req.Version
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	// reply answers with the top-level code, or, if it is 0, with the
	// members' codes.
	reply := func(code int16, codes []int16) {
		resp.ErrorCode = code
		if req.Version >= 3 && code == 0 {
			resp.Members = make([]kmsg.LeaveGroupResponseMember, len(leaving))
			for i, l := range leaving {
				rm := kmsg.NewLeaveGroupResponseMember()
				rm.MemberID = l.MemberID
				rm.InstanceID = l.InstanceID
				rm.ErrorCode = codes[i]
				resp.Members[i] = rm
			}
		}
		if req.Version < 3 && code == 0 && len(codes) > 0 {
			resp.ErrorCode = codes[0]
		}
		respond(resp)
	}
	if !supported(req.Key(), req.Version) {
		reply(kerr.UnsupportedVersion.Code, nil)
		return
	}
	if req.Group == "" {
		reply(kerr.InvalidGroupID.Code, nil)
		return
	}
	c.onGroup(req.Group,
		func(code int16) { reply(code, nil) },
		func(s *shard) { reply(s.leaveGroup(req.Group, leaving, req.Version)) })
}

func (s *shard) leaveGroup(id string, leaving []kmsg.LeaveGroupRequestMember, version int16) (int16, []int16) {
	codes := make([]int16, len(leaving))
	g := s.groups[id]
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
		return 0, codes
	}
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code, nil
	}
	for i, l := range leaving {
		if version >= 5 && l.Reason != nil {
			s.log.Info("member leaves", "group", id, "member", l.MemberID, "reason", *l.Reason)
		}
		memberID := l.MemberID
		if memberID == "" && l.InstanceID != nil {
			cur, ok := g.static[*l.InstanceID]
			if !ok {
				codes[i] = kerr.UnknownMemberID.Code
				continue
			}
			memberID = cur
		}
		if t, ok := g.pending[memberID]; ok {
			stopTimer(t)
			delete(g.pending, memberID)
			s.checkJoin(g)
			continue
		}
		m, code := g.validateMember(memberID, l.InstanceID)
		if code != 0 {
			codes[i] = code
			continue
		}
		s.log.Info("member left the group", "group", id, "member", memberID)
		s.removeMember(g, m, "member "+memberID+" left the group")
	}
	s.maybeDrop(g)
	return 0, codes
}
