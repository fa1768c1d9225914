package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete: v0
//
// Behavior:
//   - Unknown group: GROUP_ID_NOT_FOUND. A group with members that is not a
//     "consumer" group: NON_EMPTY_GROUP.
//   - In a consumer group with members, partitions of topics a member
//     subscribes to (by its kmsg.ConsumerMemberMetadata for the group's
//     protocol) get GROUP_SUBSCRIBED_TO_TOPIC. Metadata that does not
//     decode counts as subscribed to everything, so nothing a member may
//     consume is deleted.
//   - The other partitions' offsets are deleted with tombstones, in one
//     batch; they are answered once it is committed (with the mapped error
//     if it fails).
//   - Topics are not checked against the catalog here; the broker answers
//     UNKNOWN_TOPIC_OR_PARTITION for partitions it does not have before
//     calling the coordinator.
func init() { versions[kmsg.OffsetDelete.Int16()] = versionRange{0, 0} }

func (c *Coordinator) handleOffsetDelete(req *kmsg.OffsetDeleteRequest, respond func(kmsg.Response)) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	resp.Version = req.Version
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	// reply answers with a group-level code, or, if it is 0, per partition.
	reply := func(code int16, codeOf func(tp topicPartition) int16) {
		resp.ErrorCode = code
		if code != 0 {
			resp.Topics = []kmsg.OffsetDeleteResponseTopic{}
		} else {
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					p := &resp.Topics[i].Partitions[j]
					p.ErrorCode = codeOf(topicPartition{resp.Topics[i].Topic, p.Partition})
				}
			}
		}
		respond(resp)
	}
	fail := func(code int16) { reply(code, nil) }
	if !supported(req.Key(), req.Version) {
		fail(kerr.UnsupportedVersion.Code)
		return
	}
	if req.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	c.onGroup(req.Group, fail, func(s *shard) { s.deleteOffsets(req, reply) })
}

func (s *shard) deleteOffsets(req *kmsg.OffsetDeleteRequest, reply func(code int16, codeOf func(tp topicPartition) int16)) {
	g := s.groups[req.Group]
	if g == nil || g.state == stateDead {
		reply(kerr.GroupIDNotFound.Code, nil)
		return
	}
	subscribed := func(string) bool { return false }
	if g.state != stateEmpty {
		if g.protocolType != "consumer" {
			reply(kerr.NonEmptyGroup.Code, nil)
			return
		}
		topics, known := g.subscribedTopics()
		subscribed = func(t string) bool { return !known || topics[t] }
	}
	codes := map[topicPartition]int16{}
	var tombstoned []topicPartition
	var recs []record
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tp := topicPartition{t.Topic, p.Partition}
			if subscribed(t.Topic) {
				codes[tp] = kerr.GroupSubscribedToTopic.Code
				continue
			}
			codes[tp] = 0
			_, committed := g.offsets[tp]
			if committed || g.pendingCommits[tp] > 0 {
				tombstoned = append(tombstoned, tp)
				recs = append(recs, record{key: offsetKey(g.id, tp)})
			}
		}
	}
	codeOf := func(tp topicPartition) int16 { return codes[tp] }
	if len(recs) == 0 {
		reply(0, codeOf)
		return
	}
	g.inflight++
	s.append([][]byte{buildBatch(recs, time.Now().UnixMilli())}, func(err error) {
		g.inflight--
		code := commitError(err)
		for _, tp := range tombstoned {
			if err == nil {
				delete(g.offsets, tp)
			} else {
				codes[tp] = code
			}
		}
		reply(0, codeOf)
		if !s.stopped {
			s.maybeDrop(g)
		}
	})
}
