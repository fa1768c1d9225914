package broker

import (
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/wire"
)

// DescribeTopicPartitions: v0 (KIP-966)
//
// Behavior:
// * The named topics, or every topic when the list is empty, in name
// order, with each partition's leader, epoch, replicas, ISR and offline
// replicas (those on brokers that are not live), as in Metadata. No
// eligible leader replicas (Chronik elects by raft): empty lists.
// * At most min(response partition limit, 2000) partitions per answer; the
// next cursor names the topic and partition to continue from. A cursor
// starts at its topic and partition; with a topic list, its topic must be
// in the list (INVALID_REQUEST otherwise, as Kafka answers).
// * An unknown topic gets UNKNOWN_TOPIC_OR_PARTITION; topics are never
// created here.
// * Authorized operations are every operation Kafka supports on a topic
// (no ACLs).
func init() {
	register(kmsg.DescribeTopicPartitions, 0, 0, (*Broker).handleDescribeTopicPartitions)
}

// maxDescribePartitions is Kafka's max.request.partition.size.limit.
const maxDescribePartitions = 2000

func (b *Broker) handleDescribeTopicPartitions(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.DescribeTopicPartitionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)

	all := len(req.Topics) == 0
	var names []string
	if all {
		for _, t := range b.catalog.Topics() {
			names = append(names, t.Name)
		}
	} else {
		for _, rt := range req.Topics {
			if !slices.Contains(names, rt.Topic) {
				names = append(names, rt.Topic)
			}
		}
		sort.Strings(names)
	}
	if c := req.Cursor; c != nil && !all && !slices.Contains(names, c.Topic) {
		for _, name := range names {
			resp.Topics = append(resp.Topics, describeTopicError(name, kerr.InvalidRequest.Code))
		}
		respond(resp)
		return
	}

	limit := int(req.ResponsePartitionLimit)
	if limit <= 0 || limit > maxDescribePartitions {
		limit = maxDescribePartitions
	}
	live := b.catalog.LiveBrokers()
	for _, name := range names {
		first := int32(0)
		if c := req.Cursor; c != nil {
			if name < c.Topic {
				continue
			}
			if name == c.Topic {
				first = c.Partition
			}
		}
		t := b.catalog.Topic(name)
		if t == nil {
			resp.Topics = append(resp.Topics, describeTopicError(name, kerr.UnknownTopicOrPartition.Code))
			continue
		}
		if limit == 0 {
			// The page is full: continue from this topic.
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: first}
			break
		}
		dt, next := b.describeTopicPartitions(t, first, &limit, live)
		resp.Topics = append(resp.Topics, dt)
		if next >= 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: next}
			break
		}
	}
	respond(resp)
}

func describeTopicError(name string, code int16) kmsg.DescribeTopicPartitionsResponseTopic {
	dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	dt.Topic = &name
	dt.ErrorCode = code
	return dt
}

// describeTopicPartitions describes t's partitions from first on, taking
// at most *limit of them; it returns the partition to continue from, or -1
// when it described them all.
func (b *Broker) describeTopicPartitions(t *meta.Topic, first int32, limit *int, live []int32) (kmsg.DescribeTopicPartitionsResponseTopic, int32) {
	name := t.Name
	dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	dt.Topic = &name
	dt.TopicID = t.ID
	dt.IsInternal = t.Internal
	dt.AuthorizedOperations = topicOperations
	for _, p := range t.Partitions {
		if p.ID < first {
			continue
		}
		if *limit == 0 {
			return dt, p.ID
		}
		*limit--
		st := b.partitionState(t, p)
		dp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		dp.Partition = p.ID
		dp.LeaderID = st.leader
		dp.LeaderEpoch = st.epoch
		dp.Replicas = st.replicas
		dp.ISR = st.isr
		dp.EligibleLeaderReplicas = []int32{}
		dp.LastKnownELR = []int32{}
		dp.OfflineReplicas = offlineReplicas(st.replicas, live)
		if st.leader < 0 {
			dp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		dt.Partitions = append(dt.Partitions, dp)
	}
	return dt, -1
}

// offlineReplicas lists the replicas on brokers that are not live.
func offlineReplicas(replicas, live []int32) []int32 {
	out := []int32{}
	for _, id := range replicas {
		if !slices.Contains(live, id) {
			out = append(out, id)
		}
	}
	return out
}
