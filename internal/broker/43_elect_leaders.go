package broker

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/wire"
)

// ElectLeaders: v0-2
//
// Behavior:
// * Preferred election (v0, and election type 0): each partition's
// leadership moves to its preferred replica (the first of its replicas) by
// a raft leadership transfer, and the answer waits until it leads (at most
// the request's timeout, then REQUEST_TIMED_OUT). A partition its
// preferred replica already leads gets ELECTION_NOT_NEEDED; one whose
// preferred replica is not live or not in sync, PREFERRED_LEADER_NOT_AVAILABLE.
// * Unclean election (type 1): raft elects only a replica holding every
// committed record, so there is no unclean election: a partition with a
// leader gets ELECTION_NOT_NEEDED, one without ELIGIBLE_LEADERS_NOT_AVAILABLE.
// * Null topics: every partition, and, as in Kafka, the answer lists only
// those with an election or an error (not ELECTION_NOT_NEEDED). Unknown
// partitions: UNKNOWN_TOPIC_OR_PARTITION. Any node answers (Kafka forwards
// to its controller; here the partitions' leaders hand over).
//
// Version notes:
// * v1 election type, top-level error code and ELECTION_NOT_NEEDED (v0
// answers no error instead), v2 flexible.
func init() { register(kmsg.ElectLeaders, 0, 2, (*Broker).handleElectLeaders) }

// LeaderTransferrer moves a partition's leadership: the node leading it
// hands it to another replica (through the cluster's RPCs if that node is
// another).
type LeaderTransferrer interface {
	TransferLeader(ctx context.Context, tp replica.TopicPartition, leader, to int32) error
}

const (
	electPreferred = 0
	electUnclean   = 1
)

// electLeadersMaxWait bounds how long an answer waits for the leaderships
// to move, whatever the request's timeout.
const electLeadersMaxWait = time.Minute

func (b *Broker) handleElectLeaders(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	typ := int8(electPreferred)
	if req.Version >= 1 {
		typ = req.ElectionType
	}
	wait := min(time.Duration(req.TimeoutMillis)*time.Millisecond, electLeadersMaxWait)
	ctx, cancel := context.WithTimeout(context.Background(), max(wait, time.Second))
	defer cancel()

	topics := req.Topics
	if topics == nil {
		for _, t := range b.catalog.Topics() {
			et := kmsg.ElectLeadersRequestTopic{Topic: t.Name}
			for _, p := range t.Partitions {
				et.Partitions = append(et.Partitions, p.ID)
			}
			topics = append(topics, et)
		}
	}
	if typ != electPreferred && typ != electUnclean {
		resp.ErrorCode = kerr.InvalidRequest.Code
		respond(resp)
		return
	}

	type pending struct {
		topic, part int // indexes into resp
		t           *meta.Topic
		p           meta.Partition
		preferred   int32
	}
	var waiting []pending
	for _, rt := range topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		t := b.catalog.Topic(rt.Topic)
		for _, id := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = id
			var err error
			if t == nil || id < 0 || int(id) >= len(t.Partitions) {
				err = kerr.UnknownTopicOrPartition
			} else {
				p := t.Partitions[id]
				var move bool
				move, err = b.electOne(ctx, typ, t, p)
				if move {
					waiting = append(waiting, pending{topic: len(resp.Topics), part: len(st.Partitions), t: t, p: p, preferred: p.Replicas[0]})
				}
			}
			sp.ErrorCode = b.errCode(err)
			sp.ErrorMessage = errMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}

	// Wait for the transfers asked for to complete.
	for _, w := range waiting {
		for b.partitionState(w.t, w.p).leader != w.preferred {
			if ctx.Err() != nil {
				sp := &resp.Topics[w.topic].Partitions[w.part]
				err := describe(kerr.RequestTimedOut, "replica %d did not take the leadership of %s/%d in time", w.preferred, w.t.Name, w.p.ID)
				sp.ErrorCode, sp.ErrorMessage = b.errCode(err), errMessage(err)
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond): // the pace of the checks
			}
			// The catalog's copy of the partition is refreshed each check.
			if t := b.catalog.Topic(w.t.Name); t != nil && int(w.p.ID) < len(t.Partitions) {
				w.t, w.p = t, t.Partitions[w.p.ID]
			}
		}
	}
	for i := range resp.Topics {
		parts := resp.Topics[i].Partitions[:0]
		for _, sp := range resp.Topics[i].Partitions {
			if sp.ErrorCode == kerr.ElectionNotNeeded.Code {
				if req.Topics == nil {
					continue
				}
				if req.Version == 0 {
					sp.ErrorCode, sp.ErrorMessage = 0, nil
				}
			}
			parts = append(parts, sp)
		}
		resp.Topics[i].Partitions = parts
	}
	resp.Topics = slices.DeleteFunc(resp.Topics, func(t kmsg.ElectLeadersResponseTopic) bool { return len(t.Partitions) == 0 })
	respond(resp)
}

// electOne checks one partition's election and, for a preferred election
// that is needed and possible, asks its leader to hand over; move says an
// answer must wait for the preferred replica to lead.
func (b *Broker) electOne(ctx context.Context, typ int8, t *meta.Topic, p meta.Partition) (move bool, err error) {
	st := b.partitionState(t, p)
	if typ == electUnclean {
		if st.leader >= 0 {
			return false, kerr.ElectionNotNeeded
		}
		return false, describe(kerr.EligibleLeadersNotAvailable,
			"%s/%d has no leader; raft elects only a replica with every committed record, so there is no unclean election", t.Name, p.ID)
	}
	preferred := p.Replicas[0]
	switch {
	case st.leader == preferred:
		return false, kerr.ElectionNotNeeded
	case !slices.Contains(b.catalog.LiveBrokers(), preferred) || !slices.Contains(st.isr, preferred):
		return false, describe(kerr.PreferredLeaderNotAvailable, "the preferred replica %d of %s/%d is not live and in sync", preferred, t.Name, p.ID)
	case st.leader < 0:
		return false, describe(kerr.LeaderNotAvailable, "%s/%d has no leader to hand over", t.Name, p.ID)
	case b.cfg.Leaders == nil:
		return false, describe(kerr.PreferredLeaderNotAvailable, "this node cannot move leaderships")
	}
	if err := b.cfg.Leaders.TransferLeader(ctx, replica.TopicPartition{Topic: t.Name, Partition: p.ID}, st.leader, preferred); err != nil {
		return false, describe(kerr.PreferredLeaderNotAvailable, "moving %s/%d to replica %d: %v", t.Name, p.ID, preferred, err)
	}
	return true, nil
}
