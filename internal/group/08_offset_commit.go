package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: v0-8
//
// Behavior:
//   - A commit with a generation (>= 0), a member id or an instance id must
//     come from a member of the current generation: FENCED_INSTANCE_ID,
//     UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION otherwise. A commit without
//     them (generation -1, empty member id: simple consumers and admin
//     tools) is allowed only while the group has no members
//     (UNKNOWN_MEMBER_ID otherwise), and creates the group if needed; a
//     commit with a generation for an unknown group gets ILLEGAL_GENERATION.
//   - During CompletingRebalance members get REBALANCE_IN_PROGRESS; during
//     PreparingRebalance their commits are still taken (the heartbeat tells
//     them to rejoin), and a commit extends the member's session.
//   - Metadata over 4096 bytes: OFFSET_METADATA_TOO_LARGE for that
//     partition; the others are committed.
//   - The offsets of one request are one batch of OffsetCommitKey /
//     OffsetCommitValue records. The request is answered, and the offsets
//     become visible to OffsetFetch, only once the batch is committed; an
//     append error is mapped as Kafka does (NOT_COORDINATOR,
//     COORDINATOR_NOT_AVAILABLE, ...) and changes nothing in memory.
//   - Topics are not checked against the catalog here; the broker may
//     answer UNKNOWN_TOPIC_OR_PARTITION before calling the coordinator.
//
// Version notes:
//   - v1: generation, member id; a per-partition timestamp (ignored)
//   - v2-4: retention time: if set, the offset expires that long after the
//     commit (written as OffsetCommitValue v1 with an expire timestamp)
//   - v3: throttle time
//   - v6: leader epoch per partition (returned by OffsetFetch v5+)
//   - v7: group instance id
//   - v8: flexible versions
func init() { versions[kmsg.OffsetCommit.Int16()] = versionRange{0, 8} }

func (c *Coordinator) handleOffsetCommit(req *kmsg.OffsetCommitRequest, respond func(kmsg.Response)) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.Version = req.Version
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	// codes[i][j] is the code of req.Topics[i].Partitions[j].
	reply := func(codeOf func(i, j int) int16) {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = codeOf(i, j)
			}
		}
		respond(resp)
	}
	fail := func(code int16) { reply(func(int, int) int16 { return code }) }
	if !supported(req.Key(), req.Version) {
		fail(kerr.UnsupportedVersion.Code)
		return
	}
	// An empty group id is valid here, as in Kafka (old clients use it).
	c.onGroup(req.Group, fail, func(s *shard) { s.commitOffsets(req, reply) })
}

func (s *shard) commitOffsets(req *kmsg.OffsetCommitRequest, reply func(codeOf func(i, j int) int16)) {
	fail := func(code int16) { reply(func(int, int) int16 { return code }) }
	gen, memberID, inst := int32(-1), "", (*string)(nil)
	if req.Version >= 1 {
		gen, memberID = req.Generation, req.MemberID
	}
	if req.Version >= 7 {
		inst = req.InstanceID
	}
	g := s.groups[req.Group]
	if g == nil {
		if gen >= 0 {
			fail(kerr.IllegalGeneration.Code)
			return
		}
		g = newGroup(req.Group)
		s.groups[req.Group] = g
	}
	var m *member
	switch {
	case g.state == stateDead:
		fail(kerr.CoordinatorNotAvailable.Code)
		return
	case gen >= 0 || memberID != "" || inst != nil:
		var code int16
		if m, code = g.validateMember(memberID, inst); code != 0 {
			fail(code)
			return
		}
		if gen != g.generation {
			fail(kerr.IllegalGeneration.Code)
			return
		}
	case g.state != stateEmpty:
		// Only members commit for a group that has members.
		fail(kerr.UnknownMemberID.Code)
		return
	}
	switch g.state {
	case stateCompletingRebalance:
		fail(kerr.RebalanceInProgress.Code)
		return
	case stateStable, statePreparingRebalance:
		if m != nil {
			m.seen = time.Now()
		}
	}

	now := time.Now().UnixMilli()
	expire := int64(-1)
	if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis >= 0 {
		expire = now + req.RetentionTimeMillis
	}
	type commit struct {
		tp topicPartition
		o  offsetCommit
	}
	var commits []commit
	var recs []record
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		for j, p := range t.Partitions {
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			if len(md) > maxOffsetMetadata {
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := offsetCommit{offset: p.Offset, leaderEpoch: -1, metadata: md, commitTime: now, expireTime: expire}
			if req.Version >= 6 {
				o.leaderEpoch = p.LeaderEpoch
			}
			tp := topicPartition{t.Topic, p.Partition}
			commits = append(commits, commit{tp, o})
			recs = append(recs, record{offsetKey(g.id, tp), offsetValue(o)})
		}
	}
	answer := func(code int16) {
		reply(func(i, j int) int16 {
			if codes[i][j] != 0 {
				return codes[i][j]
			}
			return code
		})
	}
	if len(recs) == 0 {
		answer(0)
		s.maybeDrop(g)
		return
	}
	for _, c := range commits {
		g.pendingCommits[c.tp]++
	}
	g.inflight++
	s.append([][]byte{buildBatch(recs, now)}, func(err error) {
		g.inflight--
		for _, c := range commits {
			if g.pendingCommits[c.tp]--; g.pendingCommits[c.tp] <= 0 {
				delete(g.pendingCommits, c.tp)
			}
			if err == nil {
				g.offsets[c.tp] = c.o
			}
		}
		if err != nil {
			s.log.Warn("offset commit failed", "group", g.id, "err", err)
		}
		answer(commitError(err))
		if !s.stopped {
			s.maybeDrop(g)
		}
	})
}
