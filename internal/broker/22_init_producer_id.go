package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// InitProducerId: v0-4
//
// Behavior:
// * Gives an idempotent producer a new producer id (epoch 0), allocated
// through the catalog so ids are unique in the cluster. A producer that
// asks to bump its epoch (v3+, KIP-360) also gets a fresh id, which Kafka
// allows.
// * A transactional id is refused (TRANSACTIONAL_ID_AUTHORIZATION_FAILED):
// transactions are not supported yet.
//
// Version notes:
// * v2 flexible, v3 producer id/epoch in the request.
func init() { register(kmsg.InitProducerID, 0, 4, (*Broker).handleInitProducerID) }

func (b *Broker) handleInitProducerID(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		respond(resp)
		return
	}
	ctx, cancel := b.ctx()
	defer cancel()
	id, err := b.catalog.AllocateProducerIDs(ctx, 1)
	if err != nil {
		resp.ErrorCode = b.errCode(err)
		// Allocating again is harmless (an id range unused at worst), so
		// the client is told to retry.
		if resp.ErrorCode == kerr.NotController.Code || resp.ErrorCode == kerr.RequestTimedOut.Code {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		respond(resp)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	respond(resp)
}
