package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/wire"
)

// FindCoordinator: v0-4
//
// Behavior:
// * A group's coordinator is the leader of its __consumer_offsets
// partition, so it moves with that partition's leadership. The topic is
// created on first use.
// * No leader yet: COORDINATOR_NOT_AVAILABLE (clients retry).
// * Transaction coordinators (key type 1) are not available: transactions
// are not supported.
//
// Version notes:
// * v1 key type and error message, v3 flexible, v4 several keys at once.
func init() { register(kmsg.FindCoordinator, 0, 4, (*Broker).handleFindCoordinator) }

func (b *Broker) handleFindCoordinator(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Port = -1, -1
		if br, err := b.coordinatorFor(req.CoordinatorType, key); err != nil {
			c.ErrorCode = b.errCode(err)
			c.ErrorMessage = errMessage(err)
		} else {
			c.NodeID, c.Host, c.Port = br.ID, br.Host, br.Port
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	respond(resp)
}

func (b *Broker) coordinatorFor(keyType int8, key string) (meta.Broker, error) {
	if keyType != 0 {
		return meta.Broker{}, describe(kerr.CoordinatorNotAvailable, "transactions are not supported")
	}
	ctx, cancel := b.ctx()
	defer cancel()
	if err := b.ensureOffsetsTopic(ctx); err != nil {
		return meta.Broker{}, kerr.CoordinatorNotAvailable
	}
	t := b.catalog.Topic(OffsetsTopic)
	p := b.groups.PartitionFor(key)
	if t == nil || int(p) >= len(t.Partitions) {
		return meta.Broker{}, kerr.CoordinatorNotAvailable
	}
	st := b.partitionState(t, t.Partitions[p])
	for _, br := range b.catalog.Brokers() {
		if br.ID == st.leader {
			return br, nil
		}
	}
	return meta.Broker{}, kerr.CoordinatorNotAvailable
}
