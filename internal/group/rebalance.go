package group

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The rebalance protocol of a classic group, as Kafka's GroupCoordinator
// runs it. All methods run in the shard's loop.

// canRebalance reports whether a join phase may start from g's state.
func (g *group) canRebalance() bool {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		return true
	}
	return false
}

func (s *shard) maybePrepareRebalance(g *group, reason string) {
	if g.canRebalance() {
		s.prepareRebalance(g, reason)
	}
}

// prepareRebalance starts a join phase. Members waiting in SyncGroup are
// told to rejoin. A group leaving Empty waits out the initial rebalance
// delay (extended while new members keep coming, up to the rebalance
// timeout); otherwise the phase ends when all members have rejoined or
// after the longest rebalance timeout.
func (s *shard) prepareRebalance(g *group, reason string) {
	if g.state == stateCompletingRebalance {
		s.resetAssignment(g, kerr.RebalanceInProgress.Code)
	}
	wasEmpty := g.state == stateEmpty
	g.setState(statePreparingRebalance)
	g.joinEpoch++
	stopTimer(g.joinTimer)
	epoch := g.joinEpoch
	s.log.Info("preparing to rebalance group", "group", g.id, "generation", g.generation, "reason", reason)
	if delay := s.c.cfg.InitialRebalanceDelay; wasEmpty && delay > 0 {
		g.initialDelay = true
		g.newMemberAdded = false
		g.delayRemaining = max(g.maxRebalanceTimeout()-delay, 0)
		g.joinTimer = s.after(delay, func() { s.onInitialDelay(g, epoch) })
		return
	}
	g.initialDelay = false
	g.joinTimer = s.after(g.maxRebalanceTimeout(), func() { s.onJoinTimeout(g, epoch) })
	s.checkJoin(g)
}

// onInitialDelay ends the initial delay, or extends it if members joined
// during it and the rebalance timeout leaves room.
func (s *shard) onInitialDelay(g *group, epoch uint64) {
	if s.groups[g.id] != g || g.joinEpoch != epoch || g.state != statePreparingRebalance {
		return
	}
	delay := s.c.cfg.InitialRebalanceDelay
	if g.newMemberAdded && g.delayRemaining > 0 {
		g.newMemberAdded = false
		d := min(delay, g.delayRemaining)
		g.delayRemaining = max(g.delayRemaining-delay, 0)
		g.joinTimer = s.after(d, func() { s.onInitialDelay(g, epoch) })
		return
	}
	g.initialDelay = false
	s.completeJoin(g)
}

func (s *shard) onJoinTimeout(g *group, epoch uint64) {
	if s.groups[g.id] != g || g.joinEpoch != epoch || g.state != statePreparingRebalance {
		return
	}
	s.completeJoin(g)
}

// checkJoin ends the join phase if every member has rejoined.
func (s *shard) checkJoin(g *group) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		s.completeJoin(g)
	}
}

// completeJoin ends a join phase: dynamic members that did not rejoin are
// removed, the generation advances, and every waiting member gets its
// JoinGroup answer (the leader with the member list).
func (s *shard) completeJoin(g *group) {
	g.joinEpoch++
	stopTimer(g.joinTimer)
	g.joinTimer = nil
	for _, m := range g.sortedMembers() {
		if m.join == nil && m.instanceID == nil {
			s.log.Info("removing member that did not rejoin", "group", g.id, "member", m.id)
			s.dropMember(g, m, kerr.UnknownMemberID.Code)
		}
	}
	if len(g.members) > 0 && !s.electJoinedLeader(g) {
		// Only static members that did not rejoin are left: wait for them
		// another rebalance timeout (their sessions may expire meanwhile).
		epoch := g.joinEpoch
		g.joinTimer = s.after(g.maxRebalanceTimeout(), func() { s.onJoinTimeout(g, epoch) })
		return
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.setState(stateEmpty)
		s.log.Info("group is empty", "group", g.id, "generation", g.generation)
		s.storeGroup(g, nil, func(err error) {
			if err != nil {
				s.log.Warn("writing metadata of empty group failed", "group", g.id, "generation", g.generation, "err", err)
			}
		})
		return
	}
	g.protocol = g.selectProtocol()
	g.setState(stateCompletingRebalance)
	s.log.Info("group completed its join phase", "group", g.id, "generation", g.generation,
		"protocol", g.protocol, "leader", g.leader, "members", len(g.members))
	now := time.Now()
	for _, m := range g.sortedMembers() {
		m.isNew = false
		m.seen = now
		if m.join == nil {
			continue
		}
		r := s.currentJoin(g, m.id)
		if m.id == g.leader {
			r.members = g.memberMetadata()
		}
		m.answerJoin(r)
	}
}

// electJoinedLeader keeps the leader if it rejoined, else makes a member
// that rejoined the leader. It reports false if no member rejoined.
func (s *shard) electJoinedLeader(g *group) bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.sortedMembers() {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// currentJoin is the successful JoinGroup answer for member id in the
// current generation, without the member list.
func (s *shard) currentJoin(g *group, id string) joinResult {
	return joinResult{
		memberID:     id,
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		leader:       g.leader,
	}
}

// resetAssignment forgets the assignments of the current generation and
// answers every waiting SyncGroup with code.
func (s *shard) resetAssignment(g *group, code int16) {
	for _, m := range g.sortedMembers() {
		m.assignment = nil
		m.answerSync(code, nil)
	}
}

// propagateAssignment stores the leader's assignment on the members and
// answers every waiting SyncGroup with its part.
func (s *shard) propagateAssignment(g *group, assignment map[string][]byte) {
	now := time.Now()
	for _, m := range g.sortedMembers() {
		m.assignment = assignment[m.id]
		if m.sync != nil {
			m.seen = now
			m.answerSync(0, m.assignment)
		}
	}
}

// dropMember removes m, answering its waiting requests with code, without
// starting a rebalance.
func (s *shard) dropMember(g *group, m *member, code int16) {
	m.answerJoin(errJoin(code, m.id))
	m.answerSync(code, nil)
	g.remove(m)
}

// removeMember removes m (it left, or its session expired) and rebalances.
func (s *shard) removeMember(g *group, m *member, reason string) {
	s.dropMember(g, m, kerr.UnknownMemberID.Code)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		s.maybePrepareRebalance(g, reason)
	case statePreparingRebalance:
		s.checkJoin(g)
	}
}

// addMember adds a member that joins for the first time and rebalances.
func (s *shard) addMember(g *group, m *member, protocolType, reason string) {
	now := time.Now()
	m.isNew = true
	m.joinedAt = now
	m.seen = now
	if g.state == statePreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.protocolType = protocolType
	}
	g.add(m)
	s.startSession(g, m)
	s.maybePrepareRebalance(g, reason)
}

// updateMember records a rejoining member's new protocols and timeouts,
// parks its JoinGroup and rebalances.
func (s *shard) updateMember(g *group, m *member, req *kmsg.JoinGroupRequest, reply func(joinResult), reason string) {
	s.park(m, req, reply)
	s.maybePrepareRebalance(g, reason)
}

// park records a JoinGroup of m and parks its answer. A JoinGroup already
// parked for m (a retry) is answered with REBALANCE_IN_PROGRESS.
func (s *shard) park(m *member, req *kmsg.JoinGroupRequest, reply func(joinResult)) {
	m.answerJoin(errJoin(kerr.RebalanceInProgress.Code, m.id))
	m.protocols = protocolsClone(req.Protocols)
	m.sessionTimeout = msDuration(req.SessionTimeoutMillis)
	m.rebalanceTimeout = rebalanceTimeout(req)
	m.join = &joinWait{reply}
	m.joinedAt = time.Now()
	m.seen = m.joinedAt
}

// Sessions. A member's session timer fires at most once per session
// timeout; heartbeats only move m.seen, so they cost no timer work.

func (s *shard) startSession(g *group, m *member) {
	stopTimer(m.timer)
	m.timer = s.after(m.sessionTimeout, func() { s.checkSession(g, m) })
}

// sessionDeadline is when m expires; ok false means m cannot expire now:
// it waits in JoinGroup (not for the first time) or in SyncGroup.
func (m *member) sessionDeadline() (time.Time, bool) {
	switch {
	case m.join != nil && m.isNew:
		return m.joinedAt.Add(newMemberJoinTimeout), true
	case m.join != nil || m.sync != nil:
		return time.Time{}, false
	}
	return m.seen.Add(m.sessionTimeout), true
}

func (s *shard) checkSession(g *group, m *member) {
	if s.groups[g.id] != g || g.members[m.id] != m {
		return
	}
	m.timer = nil
	deadline, ok := m.sessionDeadline()
	if !ok {
		m.timer = s.after(m.sessionTimeout, func() { s.checkSession(g, m) })
		return
	}
	if d := time.Until(deadline); d > 0 {
		m.timer = s.after(d, func() { s.checkSession(g, m) })
		return
	}
	s.log.Info("member session expired", "group", g.id, "member", m.id, "generation", g.generation)
	s.removeMember(g, m, "session of member "+m.id+" expired")
}

// validateMember checks a request of member id (with instance id inst)
// against the members: FENCED_INSTANCE_ID if inst belongs to another
// member id, UNKNOWN_MEMBER_ID if id is not a member.
func (g *group) validateMember(id string, inst *string) (*member, int16) {
	if inst != nil {
		if cur, ok := g.static[*inst]; ok && cur != id {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := g.members[id]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	return m, 0
}

// unload answers everything waiting on g with NOT_COORDINATOR and stops
// its timers (the shard is stopping).
func (s *shard) unload(g *group) {
	stopTimer(g.joinTimer)
	for _, t := range g.pending {
		stopTimer(t)
	}
	for _, m := range g.members {
		stopTimer(m.timer)
		m.answerJoin(errJoin(kerr.NotCoordinator.Code, m.id))
		m.answerSync(kerr.NotCoordinator.Code, nil)
	}
	g.setState(stateDead)
}

// maybeDrop forgets a group that holds nothing: no members, no pending
// members, no offsets, no metadata in the log, no writes in flight.
func (s *shard) maybeDrop(g *group) {
	if g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 &&
		!g.hasOffsets() && g.meta == nil && g.inflight == 0 && s.groups[g.id] == g {
		stopTimer(g.joinTimer)
		delete(s.groups, g.id)
	}
}

// storeGroup writes g's metadata with the given assignments (the
// GroupMetadataValue record) and calls then with the outcome, in the loop.
// On success the record becomes the group's durable metadata.
func (s *shard) storeGroup(g *group, assignment map[string][]byte, then func(err error)) {
	v := kmsg.NewGroupMetadataValue()
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	v.Protocol = ptrIfSet(g.protocol)
	v.Leader = ptrIfSet(g.leader)
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	for _, m := range g.sortedMembers() {
		gm := kmsg.NewGroupMetadataValueMember()
		gm.MemberID = m.id
		gm.InstanceID = m.instanceID
		gm.ClientID = m.clientID
		gm.ClientHost = m.clientHost
		gm.RebalanceTimeoutMillis = ms(m.rebalanceTimeout)
		gm.SessionTimeoutMillis = ms(m.sessionTimeout)
		gm.Subscription = m.metadata(g.protocol)
		gm.Assignment = assignment[m.id]
		if gm.Assignment == nil {
			gm.Assignment = []byte{}
		}
		v.Members = append(v.Members, gm)
	}
	value := groupValue(&v)
	batch := [][]byte{buildBatch([]record{{groupKey(g.id), value}}, time.Now().UnixMilli())}
	g.inflight++
	s.append(batch, func(err error) {
		g.inflight--
		if err == nil {
			g.meta = value
		}
		then(err)
	})
}

func msDuration(v int32) time.Duration { return time.Duration(v) * time.Millisecond }

// rebalanceTimeout is the rebalance timeout a JoinGroup asks for; v0 has
// none and uses the session timeout, as Kafka does.
func rebalanceTimeout(req *kmsg.JoinGroupRequest) time.Duration {
	if req.Version == 0 || req.RebalanceTimeoutMillis <= 0 {
		return msDuration(req.SessionTimeoutMillis)
	}
	return msDuration(req.RebalanceTimeoutMillis)
}

// Mapping of append errors to the errors of the request that wrote, as
// Kafka's GroupMetadataManager does.

// commitError maps the outcome of an offset commit write.
func commitError(err error) int16 {
	if err == nil {
		return 0
	}
	var e *kerr.Error
	if !errors.As(err, &e) {
		return kerr.UnknownServerError.Code
	}
	switch e {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
		return kerr.InvalidCommitOffsetSize.Code
	}
	return e.Code
}

// groupError maps the outcome of a group metadata write.
func groupError(err error) int16 {
	if err == nil {
		return 0
	}
	var e *kerr.Error
	if !errors.As(err, &e) {
		return kerr.UnknownServerError.Code
	}
	switch e {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
		return kerr.UnknownServerError.Code
	}
	return e.Code
}
