package group

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch: v0-8
//
// Behavior:
//   - Returns the committed offset, leader epoch and metadata of each
//     requested partition; a partition without a commit gets offset -1 and
//     no error. Null topics (v2+) ask for every partition of the group.
//   - Only committed writes are visible: a commit whose append is in
//     flight is not returned yet.
//   - require_stable (v7+) is accepted and has no effect: there are no
//     transactional offsets.
//
// Version notes:
//   - v0-1: errors are per partition (no top-level error)
//   - v2: top-level error; null topics = all
//   - v3: throttle time
//   - v5: leader epoch
//   - v6: flexible versions
//   - v7: require_stable
//   - v8: several groups, each with its own error
func init() { versions[kmsg.OffsetFetch.Int16()] = versionRange{0, 8} }

func (c *Coordinator) handleOffsetFetch(req *kmsg.OffsetFetchRequest, respond func(kmsg.Response)) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.Version = req.Version
	if req.Version >= 8 {
		resp.Groups = make([]kmsg.OffsetFetchResponseGroup, len(req.Groups))
		if !supported(req.Key(), req.Version) {
			for i, rg := range req.Groups {
				resp.Groups[i] = kmsg.NewOffsetFetchResponseGroup()
				resp.Groups[i].Group = rg.Group
				resp.Groups[i].ErrorCode = kerr.UnsupportedVersion.Code
			}
			respond(resp)
			return
		}
		gt := newGather(len(req.Groups)+1, func() { respond(resp) })
		for i, rg := range req.Groups {
			var topics []kmsg.OffsetFetchRequestTopic
			if rg.Topics != nil {
				topics = make([]kmsg.OffsetFetchRequestTopic, len(rg.Topics))
				for j, t := range rg.Topics {
					topics[j] = kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions}
				}
			}
			c.fetchOffsets(rg.Group, topics, func(code int16, res []kmsg.OffsetFetchResponseTopic) {
				out := kmsg.NewOffsetFetchResponseGroup()
				out.Group = rg.Group
				out.ErrorCode = code
				out.Topics = make([]kmsg.OffsetFetchResponseGroupTopic, len(res))
				for j, t := range res {
					ot := kmsg.NewOffsetFetchResponseGroupTopic()
					ot.Topic = t.Topic
					for _, p := range t.Partitions {
						op := kmsg.NewOffsetFetchResponseGroupTopicPartition()
						op.Partition, op.Offset, op.LeaderEpoch, op.Metadata, op.ErrorCode =
							p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
						ot.Partitions = append(ot.Partitions, op)
					}
					out.Topics[j] = ot
				}
				resp.Groups[i] = out
				gt.finish()
			})
		}
		gt.finish()
		return
	}

	reply := func(code int16, topics []kmsg.OffsetFetchResponseTopic) {
		if code != 0 {
			// v0-1 carry errors per partition; v2+ at the top, without
			// partitions (as Kafka).
			topics = unknownOffsets(req.Topics, code)
			if req.Version >= 2 {
				resp.ErrorCode = code
				topics = []kmsg.OffsetFetchResponseTopic{}
			}
		}
		resp.Topics = topics
		respond(resp)
	}
	if !supported(req.Key(), req.Version) {
		reply(kerr.UnsupportedVersion.Code, nil)
		return
	}
	topics := req.Topics
	if req.Version < 2 && topics == nil {
		topics = []kmsg.OffsetFetchRequestTopic{}
	}
	c.fetchOffsets(req.Group, topics, reply)
}

// fetchOffsets answers the offsets of group for topics (nil: all).
func (c *Coordinator) fetchOffsets(group string, topics []kmsg.OffsetFetchRequestTopic, reply func(code int16, res []kmsg.OffsetFetchResponseTopic)) {
	c.onGroup(group,
		func(code int16) { reply(code, nil) },
		func(s *shard) { reply(0, s.fetchOffsets(group, topics)) })
}

func (s *shard) fetchOffsets(id string, topics []kmsg.OffsetFetchRequestTopic) []kmsg.OffsetFetchResponseTopic {
	g := s.groups[id]
	if topics != nil {
		out := unknownOffsets(topics, 0)
		if g == nil {
			return out
		}
		for i := range out {
			for j := range out[i].Partitions {
				p := &out[i].Partitions[j]
				if o, ok := g.offsets[topicPartition{out[i].Topic, p.Partition}]; ok {
					p.Offset, p.LeaderEpoch, p.Metadata = o.offset, o.leaderEpoch, strPtr(o.metadata)
				}
			}
		}
		return out
	}
	out := []kmsg.OffsetFetchResponseTopic{}
	if g == nil {
		return out
	}
	tps := make([]topicPartition, 0, len(g.offsets))
	for tp := range g.offsets {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTP)
	for _, tp := range tps {
		if len(out) == 0 || out[len(out)-1].Topic != tp.topic {
			t := kmsg.NewOffsetFetchResponseTopic()
			t.Topic = tp.topic
			out = append(out, t)
		}
		o := g.offsets[tp]
		p := kmsg.NewOffsetFetchResponseTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch, p.Metadata = tp.partition, o.offset, o.leaderEpoch, strPtr(o.metadata)
		last := &out[len(out)-1]
		last.Partitions = append(last.Partitions, p)
	}
	return out
}

// unknownOffsets answers every requested partition with offset -1 and code.
func unknownOffsets(topics []kmsg.OffsetFetchRequestTopic, code int16) []kmsg.OffsetFetchResponseTopic {
	out := make([]kmsg.OffsetFetchResponseTopic, len(topics))
	for i, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, part := range t.Partitions {
			p := kmsg.NewOffsetFetchResponseTopicPartition()
			p.Partition = part
			p.Offset = -1
			p.Metadata = strPtr("")
			p.ErrorCode = code
			rt.Partitions = append(rt.Partitions, p)
		}
		out[i] = rt
	}
	return out
}

func compareTP(a, b topicPartition) int {
	switch {
	case a.topic < b.topic:
		return -1
	case a.topic > b.topic:
		return 1
	case a.partition < b.partition:
		return -1
	case a.partition > b.partition:
		return 1
	}
	return 0
}
