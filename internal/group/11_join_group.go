package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup: v0-9
//
// Behavior:
//   - A session timeout outside [MinSessionTimeout, MaxSessionTimeout] gets
//     INVALID_SESSION_TIMEOUT; an empty group id INVALID_GROUP_ID.
//   - A member joins with an empty member id. From v4 it first gets
//     MEMBER_ID_REQUIRED with a generated id (clientID-uuid) and joins again
//     with it; that id expires after the session timeout if it does not.
//   - The member's protocol type must match the group's and one of its
//     protocols must be supported by all other members, else
//     INCONSISTENT_GROUP_PROTOCOL.
//   - A join starts (or joins) a join phase; the JoinGroup waits until all
//     known members have rejoined or the longest rebalance timeout passes,
//     then everyone is answered with the new generation; the leader also
//     gets the members and their metadata. An empty group first waits out
//     group.initial.rebalance.delay.ms.
//   - A known member rejoining a Stable group with unchanged protocols (and
//     not the leader) gets the current generation back without a rebalance.
//   - Static members (v5+, group instance id): a known instance id joining
//     with an empty member id replaces the old member id, which is fenced
//     (FENCED_INSTANCE_ID). In a Stable group whose selected protocol does
//     not change, there is no rebalance (as in Kafka, even if the member's
//     metadata changed: a cooperative consumer's lists the partitions it
//     owns, which a restarted one no longer does): the new member id and
//     metadata are written to the log and the member gets the current generation
//     (from v9 the leader is told it leads and to skip the assignment;
//     before v9 the old leader id is returned so it does not reassign).
//
// Version notes:
//   - v1: rebalance timeout (v0 uses the session timeout)
//   - v2: throttle time
//   - v4: MEMBER_ID_REQUIRED
//   - v5: group instance id
//   - v6: flexible versions
//   - v7: protocol type in the response; protocol name nullable
//   - v8: reason (logged)
//   - v9: skip assignment
func init() { versions[kmsg.JoinGroup.Int16()] = versionRange{0, 9} }

func (c *Coordinator) handleJoinGroup(cl Client, req *kmsg.JoinGroupRequest, respond func(kmsg.Response)) {
	reply := func(r joinResult) { respond(joinResponse(req, r)) }
	if !supported(req.Key(), req.Version) {
		reply(errJoin(kerr.UnsupportedVersion.Code, req.MemberID))
		return
	}
	if req.Group == "" {
		reply(errJoin(kerr.InvalidGroupID.Code, req.MemberID))
		return
	}
	c.onGroup(req.Group,
		func(code int16) { reply(errJoin(code, req.MemberID)) },
		func(s *shard) { s.joinGroup(cl, req, reply) })
}

func joinResponse(req *kmsg.JoinGroupRequest, r joinResult) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Version = req.Version
	resp.ErrorCode = r.code
	resp.Generation = r.generation
	resp.MemberID = r.memberID
	resp.LeaderID = r.leader
	resp.Protocol = ptrIfSet(r.protocol)
	if req.Version >= 7 {
		resp.ProtocolType = ptrIfSet(r.protocolType)
	}
	if req.Version >= 9 {
		resp.SkipAssignment = r.skipAssignment
	}
	resp.Members = r.members
	if resp.Members == nil {
		resp.Members = []kmsg.JoinGroupResponseMember{}
	}
	return resp
}

func (s *shard) joinGroup(cl Client, req *kmsg.JoinGroupRequest, reply func(joinResult)) {
	if sess := msDuration(req.SessionTimeoutMillis); sess < s.c.cfg.MinSessionTimeout || sess > s.c.cfg.MaxSessionTimeout {
		reply(errJoin(kerr.InvalidSessionTimeout.Code, req.MemberID))
		return
	}
	inst := req.InstanceID
	if req.Version < 5 {
		inst = nil
	}
	if req.Version >= 8 && req.Reason != nil {
		s.log.Debug("join group", "group", req.Group, "member", req.MemberID, "reason", *req.Reason)
	}
	g := s.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			reply(errJoin(kerr.UnknownMemberID.Code, req.MemberID))
			return
		}
		g = newGroup(req.Group)
		s.groups[req.Group] = g
	}
	if req.MemberID == "" {
		s.joinNewMember(g, cl, req, inst, reply)
	} else {
		s.joinKnownMember(g, cl, req, inst, reply)
	}
	s.checkJoin(g)
	s.maybeDrop(g)
}

// joinNewMember handles a JoinGroup with an empty member id.
func (s *shard) joinNewMember(g *group, cl Client, req *kmsg.JoinGroupRequest, inst *string, reply func(joinResult)) {
	if g.state == stateDead {
		reply(errJoin(kerr.CoordinatorNotAvailable.Code, req.MemberID))
		return
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols, nil) {
		reply(errJoin(kerr.InconsistentGroupProtocol.Code, req.MemberID))
		return
	}
	prefix := cl.ID
	if inst != nil {
		prefix = *inst
	}
	id := newMemberID(prefix)
	switch {
	case inst != nil:
		if old, ok := g.static[*inst]; ok {
			s.replaceStaticMember(g, old, id, cl, req, reply)
			return
		}
	case req.Version >= 4:
		sess := msDuration(req.SessionTimeoutMillis)
		g.pending[id] = s.after(sess, func() { s.expirePending(g, id) })
		reply(errJoin(kerr.MemberIDRequired.Code, id))
		return
	}
	s.addMember(g, s.newMember(id, inst, cl, req, reply), req.ProtocolType, "member "+id+" joined")
}

func (s *shard) newMember(id string, inst *string, cl Client, req *kmsg.JoinGroupRequest, reply func(joinResult)) *member {
	m := &member{id: id, clientID: cl.ID, clientHost: cl.Host}
	if inst != nil {
		m.instanceID = strPtr(*inst)
	}
	s.park(m, req, reply)
	return m
}

// expirePending forgets a member id given out with MEMBER_ID_REQUIRED whose
// member did not join with it within its session timeout.
func (s *shard) expirePending(g *group, id string) {
	if s.groups[g.id] != g {
		return
	}
	if _, ok := g.pending[id]; !ok {
		return
	}
	delete(g.pending, id)
	s.log.Info("pending member expired", "group", g.id, "member", id)
	s.checkJoin(g)
	s.maybeDrop(g)
}

// joinKnownMember handles a JoinGroup with a member id.
func (s *shard) joinKnownMember(g *group, cl Client, req *kmsg.JoinGroupRequest, inst *string, reply func(joinResult)) {
	if g.state == stateDead {
		reply(errJoin(kerr.CoordinatorNotAvailable.Code, req.MemberID))
		return
	}
	if t, ok := g.pending[req.MemberID]; ok {
		// Ids handed out with MEMBER_ID_REQUIRED are for dynamic members.
		if inst != nil {
			reply(errJoin(kerr.UnknownMemberID.Code, req.MemberID))
			return
		}
		if !g.supportsProtocols(req.ProtocolType, req.Protocols, nil) {
			reply(errJoin(kerr.InconsistentGroupProtocol.Code, req.MemberID))
			return
		}
		stopTimer(t)
		delete(g.pending, req.MemberID)
		s.addMember(g, s.newMember(req.MemberID, nil, cl, req, reply), req.ProtocolType, "member "+req.MemberID+" joined")
		return
	}
	m, code := g.validateMember(req.MemberID, inst)
	if code != 0 {
		reply(errJoin(code, req.MemberID))
		return
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols, m) {
		reply(errJoin(kerr.InconsistentGroupProtocol.Code, req.MemberID))
		return
	}
	switch g.state {
	case statePreparingRebalance:
		s.updateMember(g, m, req, reply, "member "+m.id+" rejoined")
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// It rejoins with the same metadata, probably because it missed
			// the JoinGroup answer: answer again for this generation.
			r := s.currentJoin(g, m.id)
			if m.id == g.leader {
				r.members = g.memberMetadata()
			}
			m.seen = time.Now()
			reply(r)
			return
		}
		s.updateMember(g, m, req, reply, "member "+m.id+" rejoined with new metadata")
	case stateStable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			s.updateMember(g, m, req, reply, "leader or member with new metadata "+m.id+" rejoined")
			return
		}
		m.seen = time.Now()
		reply(s.currentJoin(g, m.id))
	default: // Empty: a known member id cannot be in an empty group
		reply(errJoin(kerr.UnknownMemberID.Code, req.MemberID))
	}
}

// replaceStaticMember gives the static member of inst (now oldID) the new
// member id newID: the old id is fenced.
func (s *shard) replaceStaticMember(g *group, oldID, newID string, cl Client, req *kmsg.JoinGroupRequest, reply func(joinResult)) {
	m := g.members[oldID]
	inst := *m.instanceID
	oldLeader := g.leader
	m.answerJoin(errJoin(kerr.FencedInstanceID.Code, oldID))
	m.answerSync(kerr.FencedInstanceID.Code, nil)
	old := *m // for a revert if the write fails

	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	g.static[inst] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	m.clientID, m.clientHost = cl.ID, cl.Host
	s.park(m, req, reply)
	s.log.Info("static member rejoined with a new member id", "group", g.id, "instance", inst, "old", oldID, "new", newID)

	switch g.state {
	case stateStable:
		if g.selectProtocol() != g.protocol {
			s.prepareRebalance(g, "static member "+inst+" rejoined with protocols that change the group's")
			return
		}
		// No rebalance: persist the new member id, then answer with the
		// current generation.
		w, gen := m.join, g.generation
		assignment := map[string][]byte{}
		for _, o := range g.members {
			assignment[o.id] = o.assignment
		}
		s.storeGroup(g, assignment, func(err error) {
			if m.join != w {
				return // answered by a join phase meanwhile
			}
			if err != nil {
				s.log.Warn("writing static member replacement failed", "group", g.id, "instance", inst, "err", err)
				if g.state == stateStable && g.generation == gen && g.members[newID] == m {
					m.join = nil
					delete(g.members, newID)
					m.id, m.clientID, m.clientHost = oldID, old.clientID, old.clientHost
					m.protocols, m.sessionTimeout, m.rebalanceTimeout = old.protocols, old.sessionTimeout, old.rebalanceTimeout
					g.members[oldID] = m
					g.static[inst] = oldID
					if g.leader == newID {
						g.leader = oldID
					}
					w.reply(errJoin(groupError(err), ""))
					return
				}
				m.answerJoin(errJoin(groupError(err), newID))
				return
			}
			if g.state != stateStable {
				return // a join phase will answer
			}
			r := s.currentJoin(g, newID)
			if req.Version >= 9 {
				if g.leader == newID {
					r.members = g.memberMetadata()
					r.skipAssignment = true
				}
			} else {
				// The old leader id: a restarted leader must not think it
				// leads, as its assignment would not be sent in a Stable group.
				r.leader = oldLeader
			}
			m.seen = time.Now()
			m.answerJoin(r)
		})
	case stateCompletingRebalance:
		// The leader may already be assigning to the old member id.
		s.prepareRebalance(g, "static member "+inst+" rejoined during CompletingRebalance")
	case stateEmpty:
		s.prepareRebalance(g, "static member "+inst+" rejoined")
	}
}
