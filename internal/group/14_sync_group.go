package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup: v0-5
//
// Behavior:
//   - Unknown group or member: UNKNOWN_MEMBER_ID; a fenced instance id:
//     FENCED_INSTANCE_ID; another generation: ILLEGAL_GENERATION; during
//     PreparingRebalance: REBALANCE_IN_PROGRESS.
//   - In CompletingRebalance every SyncGroup waits. The leader's carries
//     the assignment: the group metadata (members, generation, protocol,
//     leader, assignments) is written to the log, and once it is committed
//     the group becomes Stable and every waiting member gets its part. If
//     the write fails, the waiting members get the mapped error
//     (NOT_COORDINATOR for NOT_LEADER_OR_FOLLOWER) and the group rebalances.
//   - In Stable the member's assignment is returned at once.
//
// Version notes:
//   - v1: throttle time
//   - v3: group instance id
//   - v4: flexible versions
//   - v5: protocol type and name, checked against the group's
//     (INCONSISTENT_GROUP_PROTOCOL) and returned
func init() { versions[kmsg.SyncGroup.Int16()] = versionRange{0, 5} }

func (c *Coordinator) handleSyncGroup(req *kmsg.SyncGroupRequest, respond func(kmsg.Response)) {
	reply := func(code int16, protocolType, protocol string, assignment []byte) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.Version = req.Version
		resp.ErrorCode = code
		if assignment == nil {
			assignment = []byte{}
		}
		resp.MemberAssignment = assignment
		if req.Version >= 5 && code == 0 {
			resp.ProtocolType = ptrIfSet(protocolType)
			resp.Protocol = ptrIfSet(protocol)
		}
		respond(resp)
	}
	fail := func(code int16) { reply(code, "", "", nil) }
	if !supported(req.Key(), req.Version) {
		fail(kerr.UnsupportedVersion.Code)
		return
	}
	if req.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	c.onGroup(req.Group, fail, func(s *shard) { s.syncGroup(req, reply) })
}

func (s *shard) syncGroup(req *kmsg.SyncGroupRequest, reply func(code int16, protocolType, protocol string, assignment []byte)) {
	fail := func(code int16) { reply(code, "", "", nil) }
	g := s.groups[req.Group]
	if g == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	if g.state == stateDead {
		fail(kerr.CoordinatorNotAvailable.Code)
		return
	}
	inst := req.InstanceID
	if req.Version < 3 {
		inst = nil
	}
	m, code := g.validateMember(req.MemberID, inst)
	if code != 0 {
		fail(code)
		return
	}
	if req.Generation != g.generation {
		fail(kerr.IllegalGeneration.Code)
		return
	}
	if req.Version >= 5 {
		if req.ProtocolType != nil && *req.ProtocolType != g.protocolType ||
			req.Protocol != nil && *req.Protocol != g.protocol {
			fail(kerr.InconsistentGroupProtocol.Code)
			return
		}
	}
	switch g.state {
	case stateEmpty:
		fail(kerr.UnknownMemberID.Code)
	case statePreparingRebalance:
		fail(kerr.RebalanceInProgress.Code)
	case stateStable:
		m.seen = time.Now()
		reply(0, g.protocolType, g.protocol, m.assignment)
	case stateCompletingRebalance:
		// A retried SyncGroup replaces the one parked before.
		m.answerSync(kerr.RebalanceInProgress.Code, nil)
		m.seen = time.Now()
		m.sync = func(code int16, assignment []byte) {
			if code != 0 {
				fail(code)
				return
			}
			reply(0, g.protocolType, g.protocol, assignment)
		}
		if m.id == g.leader {
			s.storeAssignment(g, req)
		}
	}
}

// storeAssignment writes the leader's assignment and completes the
// rebalance once it is committed.
func (s *shard) storeAssignment(g *group, req *kmsg.SyncGroupRequest) {
	assignment := make(map[string][]byte, len(g.members))
	for _, a := range req.GroupAssignment {
		if g.members[a.MemberID] == nil {
			s.log.Warn("leader assigned to an unknown member", "group", g.id, "member", a.MemberID)
			continue
		}
		assignment[a.MemberID] = clone(a.MemberAssignment)
	}
	for id := range g.members {
		if assignment[id] == nil {
			assignment[id] = []byte{}
		}
	}
	gen := g.generation
	s.storeGroup(g, assignment, func(err error) {
		// Members may have come or gone while the write was in flight.
		if s.groups[g.id] != g || g.state != stateCompletingRebalance || g.generation != gen {
			return
		}
		if err != nil {
			s.log.Warn("writing group assignment failed", "group", g.id, "generation", gen, "err", err)
			s.resetAssignment(g, groupError(err))
			s.maybePrepareRebalance(g, "writing the assignment failed")
			return
		}
		s.propagateAssignment(g, assignment)
		g.setState(stateStable)
		s.log.Info("group is stable", "group", g.id, "generation", gen, "members", len(g.members))
	})
}
