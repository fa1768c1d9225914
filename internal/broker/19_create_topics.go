package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/topicconfig"
	"github.com/chronik-stream/chronik/internal/wire"
)

// CreateTopics: v0-7
//
// Behavior:
// * Validates each topic (name, partition count, replication factor no
// larger than the number of brokers, manual assignments, configs: every
// Kafka topic config is known, see internal/topicconfig; an unknown name
// or invalid value gets INVALID_CONFIG with a message naming it)
// and creates it through the catalog; the answer waits until the new
// partitions have leaders or the request timeout passes.
// * validate_only (v1+) checks without creating.
// * A name given twice in one request gets INVALID_REQUEST for each.
//
// Version notes:
// * v1 error messages, v4 default partitions/replication (-1), v5 flexible
// and the created topic's configs in the response, v7 topic ids.
func init() { register(kmsg.CreateTopics, 0, 7, (*Broker).handleCreateTopics) }

func (b *Broker) handleCreateTopics(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, time.Second))
	defer cancel()
	counts := map[string]int{}
	for _, t := range req.Topics {
		counts[t.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		err := b.createOneTopic(ctx, req, rt, counts[rt.Topic] > 1, &st)
		st.ErrorCode = b.errCode(err)
		st.ErrorMessage = errMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}

func (b *Broker) createOneTopic(ctx context.Context, req *kmsg.CreateTopicsRequest, rt kmsg.CreateTopicsRequestTopic, dup bool, st *kmsg.CreateTopicsResponseTopic) error {
	if dup {
		return describe(kerr.InvalidRequest, "topic %q appears more than once in the request", rt.Topic)
	}
	tr := &topicRequest{name: rt.Topic, partitions: rt.NumPartitions, rf: rt.ReplicationFactor, configs: map[string]string{}}
	// A manual assignment names partitions 0 to n-1, each once, as Kafka
	// requires; a partition number is checked before it indexes anything.
	if n := len(rt.ReplicaAssignment); n > 0 {
		if n > maxPartitions {
			return describe(kerr.InvalidPartitions, "an assignment of %d partitions is above the limit of %d", n, maxPartitions)
		}
		tr.assignment = make([][]int32, n)
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= n {
				return describe(kerr.InvalidReplicaAssignment, "the assignment of %d partitions names partition %d; partitions are numbered 0 to %d", n, a.Partition, n-1)
			}
			if tr.assignment[a.Partition] != nil {
				return describe(kerr.InvalidReplicaAssignment, "the assignment names partition %d twice", a.Partition)
			}
			if len(a.Replicas) == 0 {
				return describe(kerr.InvalidReplicaAssignment, "the assignment has no replicas for partition %d", a.Partition)
			}
			tr.assignment[a.Partition] = a.Replicas
		}
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue
		}
		tr.configs[c.Name] = *c.Value
	}
	if err := b.validateTopic(tr); err != nil {
		return err
	}
	if !req.ValidateOnly {
		t, err := b.createTopic(ctx, tr)
		if err != nil {
			return err
		}
		st.TopicID = t.ID
	}
	st.NumPartitions, st.ReplicationFactor = tr.partitions, tr.rf
	for _, e := range topicconfig.Describe(tr.configs, b.cfg.TopicDefaults) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = e.Def.Name
		v := e.Value
		c.Value = &v
		c.Source = int8(e.Source)
		st.Configs = append(st.Configs, c)
	}
	return nil
}
