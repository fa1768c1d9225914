package group

import (
	"slices"
	"time"
)

// Deleted topics. When a topic is deleted, Kafka's group coordinators
// delete every group's committed offsets of its partitions
// (GroupCoordinator.onPartitionsDeleted), so a topic created again under
// the same name starts without the old topic's offsets: a consumer group
// resumes it from auto.offset.reset, not from positions in a log that no
// longer exists.
//
// TopicDeleted does the same for the partitions this node coordinates:
// each loaded shard writes tombstones for the topic's offsets, one batch
// per group, including partitions whose commit is still in flight (the
// tombstones follow that commit in the log, so it is deleted too). Groups
// themselves are untouched; an Empty group left without offsets is
// removed by the next retention sweep, as Kafka does.
//
// As in Kafka, only coordinators serving when the deletion is applied
// clean up: a partition still loading then keeps the offsets (a later
// OffsetDelete or their retention removes them).

// TopicDeleted deletes every group's committed offsets of topic on the
// partitions led here. It does not block: the deletions are queued in the
// shards' loops behind every request already handed to the coordinator,
// so call it when the topic's deletion is applied, before a topic of the
// same name can be committed to again.
func (c *Coordinator) TopicDeleted(topic string) {
	for _, s := range c.allShards() {
		s.q.push(func() {
			if s.servable() == 0 {
				s.deleteTopicOffsets(topic)
			}
		})
	}
}

// deleteTopicOffsets writes tombstones for every offset of topic and
// forgets them once the tombstones are committed.
func (s *shard) deleteTopicOffsets(topic string) {
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := time.Now().UnixMilli()
	for _, id := range ids {
		g := s.groups[id]
		if g.state == stateDead {
			continue
		}
		tps := g.offsetsOf(topic)
		if len(tps) == 0 {
			continue
		}
		recs := make([]record, len(tps))
		for i, tp := range tps {
			recs[i] = record{key: offsetKey(id, tp)}
		}
		g.inflight++
		s.append([][]byte{buildBatch(recs, now)}, func(err error) {
			g.inflight--
			if err != nil {
				s.log.Warn("deleting offsets of a deleted topic failed", "group", id, "topic", topic, "err", err)
				return
			}
			for _, tp := range tps {
				delete(g.offsets, tp)
			}
			s.log.Info("deleted offsets of a deleted topic", "group", id, "topic", topic, "partitions", len(tps))
			s.maybeDrop(g)
		})
	}
}

// offsetsOf lists the partitions of topic that g has an offset of,
// committed or in flight, in partition order.
func (g *group) offsetsOf(topic string) []topicPartition {
	var out []topicPartition
	for tp := range g.offsets {
		if tp.topic == topic {
			out = append(out, tp)
		}
	}
	for tp := range g.pendingCommits {
		if _, committed := g.offsets[tp]; tp.topic == topic && !committed {
			out = append(out, tp)
		}
	}
	slices.SortFunc(out, compareTP)
	return out
}
