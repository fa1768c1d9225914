package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// ApiVersions: v0-3
//
// Behavior:
// * Lists every API key this broker serves with its version range, built
// from the registered handlers.
// * An unsupported version is answered by the wire layer at v0 with
// UNSUPPORTED_VERSION and the same list.
//
// Version notes:
// * v1 adds throttle time; v3 is flexible (the response header stays v0).
func init() { register(kmsg.ApiVersions, 0, 3, (*Broker).handleAPIVersions) }

func (b *Broker) handleAPIVersions(r *wire.Request, respond func(kmsg.Response)) {
	resp := r.Msg.(*kmsg.ApiVersionsRequest).ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = APIVersions()
	respond(resp)
}
