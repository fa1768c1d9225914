package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/wire"
)

// ListPartitionReassignments: v0
//
// Behavior:
// * Lists the reassignments in progress: of every partition (null topics)
// or of the partitions named. A named partition that is not being
// reassigned, or does not exist, is left out, as in Kafka.
func init() {
	register(kmsg.ListPartitionReassignments, 0, 0, (*Broker).handleListPartitionReassignments)
}

func (b *Broker) handleListPartitionReassignments(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	var topics []*meta.Topic
	wanted := map[string][]int32{}
	if req.Topics == nil {
		topics = b.catalog.Topics()
	} else {
		for _, rt := range req.Topics {
			if t := b.catalog.Topic(rt.Topic); t != nil {
				topics = append(topics, t)
				wanted[rt.Topic] = rt.Partitions
			}
		}
	}
	for _, t := range topics {
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = t.Name
		for _, p := range t.Partitions {
			if !p.Reassigning() || req.Topics != nil && !slices.Contains(wanted[t.Name], p.ID) {
				continue
			}
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition = p.ID
			sp.Replicas = slices.Clone(p.Replicas)
			sp.AddingReplicas = slices.Clone(p.Adding)
			sp.RemovingReplicas = slices.Clone(p.Removing)
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	respond(resp)
}
