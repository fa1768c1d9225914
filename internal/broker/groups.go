package broker

import (
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
)

// The consumer group APIs are answered by the group coordinator
// (internal/group), which keeps group state in __consumer_offsets. The
// broker answers for partitions the catalog does not have, as Kafka does:
// OffsetCommit gives them UNKNOWN_TOPIC_OR_PARTITION and commits the rest;
// OffsetFetch v0 gives them offset -1 and UNKNOWN_TOPIC_OR_PARTITION;
// OffsetDelete gives them UNKNOWN_TOPIC_OR_PARTITION unless the group
// itself is in error.
//
// OffsetCommit: v0-8; OffsetFetch: v0-8; JoinGroup: v0-9; Heartbeat: v0-4;
// LeaveGroup: v0-5; SyncGroup: v0-5; DescribeGroups: v0-5; ListGroups:
// v0-4; DeleteGroups: v0-2; OffsetDelete: v0.
func init() {
	for _, api := range []struct {
		key      kmsg.Key
		min, max int16
	}{
		{kmsg.OffsetCommit, 0, 8},
		{kmsg.OffsetFetch, 0, 8},
		{kmsg.JoinGroup, 0, 9},
		{kmsg.Heartbeat, 0, 4},
		{kmsg.LeaveGroup, 0, 5},
		{kmsg.SyncGroup, 0, 5},
		{kmsg.DescribeGroups, 0, 5},
		{kmsg.ListGroups, 0, 4},
		{kmsg.DeleteGroups, 0, 2},
		{kmsg.OffsetDelete, 0, 0},
	} {
		register(api.key, api.min, api.max, (*Broker).handleGroupRequest)
	}
}

func (b *Broker) handleGroupRequest(r *wire.Request, respond func(kmsg.Response)) {
	host := ""
	if r.Remote != nil {
		if h, _, err := net.SplitHostPort(r.Remote.String()); err == nil {
			host = "/" + h
		}
	}
	cl := group.Client{ID: r.ClientID, Host: host}
	switch req := r.Msg.(type) {
	case *kmsg.OffsetCommitRequest:
		b.commitOffsets(cl, req, respond)
	case *kmsg.OffsetFetchRequest:
		if req.Version == 0 {
			b.fetchOffsetsV0(cl, req, respond)
			return
		}
		b.groups.HandleFrom(cl, req, respond)
	case *kmsg.OffsetDeleteRequest:
		b.deleteOffsets(cl, req, respond)
	default:
		b.groups.HandleFrom(cl, r.Msg, respond)
	}
}

// knownPartition reports whether the catalog has topic/partition.
func (b *Broker) knownPartition(topic string, partition int32) bool {
	t := b.catalog.Topic(topic)
	return t != nil && partition >= 0 && int(partition) < len(t.Partitions)
}

// keepKnown returns the request topics with only the partitions the
// catalog has (topics left with none are dropped), and how many it
// dropped. parts gives a topic's name and its partition list.
func keepKnown[T, P any](b *Broker, topics []T, parts func(*T) (string, *[]P), id func(P) int32) (known []T, unknown int) {
	for _, t := range topics {
		name, ps := parts(&t)
		var kept []P
		for _, p := range *ps {
			if b.knownPartition(name, id(p)) {
				kept = append(kept, p)
			} else {
				unknown++
			}
		}
		if len(kept) > 0 {
			*ps = kept
			known = append(known, t)
		}
	}
	return known, unknown
}

// commitOffsets answers an OffsetCommit as Kafka does: partitions the
// catalog does not have get UNKNOWN_TOPIC_OR_PARTITION and are not
// committed; the others go to the coordinator.
func (b *Broker) commitOffsets(cl group.Client, req *kmsg.OffsetCommitRequest, respond func(kmsg.Response)) {
	known := *req
	var unknown int
	known.Topics, unknown = keepKnown(b, req.Topics, func(t *kmsg.OffsetCommitRequestTopic) (string, *[]kmsg.OffsetCommitRequestTopicPartition) {
		return t.Topic, &t.Partitions
	}, func(p kmsg.OffsetCommitRequestTopicPartition) int32 { return p.Partition })
	if unknown == 0 {
		b.groups.HandleFrom(cl, req, respond)
		return
	}
	// answer builds the response in the request's order from the
	// coordinator's answer for the known partitions.
	answer := func(codes partitionCodes) {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes.of(t.Topic, p.Partition)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		respond(resp)
	}
	if len(known.Topics) == 0 {
		answer(nil)
		return
	}
	b.groups.HandleFrom(cl, &known, func(r kmsg.Response) {
		codes := partitionCodes{}
		for _, t := range r.(*kmsg.OffsetCommitResponse).Topics {
			for _, p := range t.Partitions {
				codes.set(t.Topic, p.Partition, p.ErrorCode)
			}
		}
		answer(codes)
	})
}

// partitionCodes are the coordinator's error codes for the partitions it
// was asked about, by topic and partition.
type partitionCodes map[string]map[int32]int16

func (c partitionCodes) set(topic string, partition int32, code int16) {
	if c[topic] == nil {
		c[topic] = map[int32]int16{}
	}
	c[topic][partition] = code
}

// of is the code of a partition, UNKNOWN_TOPIC_OR_PARTITION for one the
// coordinator was not asked about.
func (c partitionCodes) of(topic string, partition int32) int16 {
	if code, ok := c[topic][partition]; ok {
		return code
	}
	return kerr.UnknownTopicOrPartition.Code
}

// fetchOffsetsV0 answers an OffsetFetch v0 as Kafka does: partitions the
// catalog does not have get offset -1 and UNKNOWN_TOPIC_OR_PARTITION.
// (From v1 on Kafka answers them from the coordinator: offset -1, no
// error.)
func (b *Broker) fetchOffsetsV0(cl group.Client, req *kmsg.OffsetFetchRequest, respond func(kmsg.Response)) {
	known := *req
	known.Topics = nil
	for _, t := range req.Topics {
		kt := t
		kt.Partitions = nil
		for _, p := range t.Partitions {
			if b.knownPartition(t.Topic, p) {
				kt.Partitions = append(kt.Partitions, p)
			}
		}
		if len(kt.Partitions) > 0 {
			known.Topics = append(known.Topics, kt)
		}
	}
	answer := func(got map[string]map[int32]kmsg.OffsetFetchResponseTopicPartition) {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp, ok := got[t.Topic][p]
				if !ok {
					rp = kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset = p, -1
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		respond(resp)
	}
	if len(known.Topics) == 0 {
		answer(nil)
		return
	}
	b.groups.HandleFrom(cl, &known, func(r kmsg.Response) {
		got := map[string]map[int32]kmsg.OffsetFetchResponseTopicPartition{}
		for _, t := range r.(*kmsg.OffsetFetchResponse).Topics {
			if got[t.Topic] == nil {
				got[t.Topic] = map[int32]kmsg.OffsetFetchResponseTopicPartition{}
			}
			for _, p := range t.Partitions {
				got[t.Topic][p.Partition] = p
			}
		}
		answer(got)
	})
}

// deleteOffsets answers an OffsetDelete as Kafka does: partitions the
// catalog does not have (a deleted topic's) get UNKNOWN_TOPIC_OR_PARTITION;
// the coordinator answers for the others, and its group-level error
// (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, ...) answers for the whole request.
func (b *Broker) deleteOffsets(cl group.Client, req *kmsg.OffsetDeleteRequest, respond func(kmsg.Response)) {
	known := *req
	var unknown int
	known.Topics, unknown = keepKnown(b, req.Topics, func(t *kmsg.OffsetDeleteRequestTopic) (string, *[]kmsg.OffsetDeleteRequestTopicPartition) {
		return t.Topic, &t.Partitions
	}, func(p kmsg.OffsetDeleteRequestTopicPartition) int32 { return p.Partition })
	if unknown == 0 {
		b.groups.HandleFrom(cl, req, respond)
		return
	}
	b.groups.HandleFrom(cl, &known, func(r kmsg.Response) {
		got := r.(*kmsg.OffsetDeleteResponse)
		if got.ErrorCode != 0 {
			respond(got)
			return
		}
		codes := partitionCodes{}
		for _, t := range got.Topics {
			for _, p := range t.Partitions {
				codes.set(t.Topic, p.Partition, p.ErrorCode)
			}
		}
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.Version = req.Version
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes.of(t.Topic, p.Partition)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		respond(resp)
	})
}
