package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-2
//
// Behavior:
//   - Only an Empty group can be deleted (NON_EMPTY_GROUP otherwise); an
//     unknown group gets GROUP_ID_NOT_FOUND.
//   - Deleting writes one batch of tombstones: one per committed offset
//     (and per offset whose commit is in flight) and one for the group
//     metadata. While it is in flight the group is Dead (its requests get
//     COORDINATOR_NOT_AVAILABLE); once committed the group is forgotten.
//     If the write fails the group is Empty again, unchanged, and the
//     error is mapped as for a metadata write.
//
// Version notes:
//   - v1: no change
//   - v2: flexible versions
func init() { versions[kmsg.DeleteGroups.Int16()] = versionRange{0, 2} }

func (c *Coordinator) handleDeleteGroups(req *kmsg.DeleteGroupsRequest, respond func(kmsg.Response)) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Version = req.Version
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	for i, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		resp.Groups[i] = rg
	}
	if !supported(req.Key(), req.Version) {
		for i := range resp.Groups {
			resp.Groups[i].ErrorCode = kerr.UnsupportedVersion.Code
		}
		respond(resp)
		return
	}
	gt := newGather(len(req.Groups)+1, func() { respond(resp) })
	for i, id := range req.Groups {
		rg := &resp.Groups[i]
		done := func(code int16) { rg.ErrorCode = code; gt.finish() }
		c.onGroup(id, done, func(s *shard) { s.deleteGroup(id, done) })
	}
	gt.finish()
}

func (s *shard) deleteGroup(id string, done func(code int16)) {
	g := s.groups[id]
	switch {
	case g == nil || g.state == stateDead:
		done(kerr.GroupIDNotFound.Code)
		return
	case g.state != stateEmpty:
		done(kerr.NonEmptyGroup.Code)
		return
	}
	for pid, t := range g.pending {
		stopTimer(t)
		delete(g.pending, pid)
	}
	s.removeGroup(g, func(err error) {
		if err != nil {
			s.log.Warn("deleting group failed", "group", id, "err", err)
		} else {
			s.log.Info("group deleted", "group", id)
		}
		done(groupError(err))
	})
}

// removeGroup deletes an Empty group: it writes tombstones for its
// offsets (committed and in flight) and its metadata; the group is Dead
// while they are in flight and forgotten once they are committed. If the
// write fails, it is Empty again.
func (s *shard) removeGroup(g *group, then func(err error)) {
	g.setState(stateDead)
	var recs []record
	tps := map[topicPartition]bool{}
	for tp := range g.offsets {
		tps[tp] = true
	}
	for tp := range g.pendingCommits {
		tps[tp] = true
	}
	for tp := range tps {
		recs = append(recs, record{key: offsetKey(g.id, tp)})
	}
	recs = append(recs, record{key: groupKey(g.id)})
	g.inflight++
	s.append([][]byte{buildBatch(recs, time.Now().UnixMilli())}, func(err error) {
		g.inflight--
		if err != nil {
			if g.state == stateDead {
				g.setState(stateEmpty)
			}
			then(err)
			return
		}
		for tp := range tps {
			delete(g.offsets, tp)
		}
		g.meta = nil
		if s.groups[g.id] == g {
			delete(s.groups, g.id)
		}
		then(nil)
	})
}
