package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// IncrementalAlterConfigs: v0-1
//
// Behavior:
// * Sets (op 0) or deletes (op 1, back to the default) single topic
// configs, leaving the others. Append and subtract (ops 2, 3) apply to list
// configs, which no supported topic config is: INVALID_CONFIG.
// * validate_only checks without changing; broker configs are read only.
//
// Version notes:
// * v1 flexible.
func init() { register(kmsg.IncrementalAlterConfigs, 0, 1, (*Broker).handleIncrementalAlterConfigs) }

func (b *Broker) handleIncrementalAlterConfigs(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	ctx, cancel := b.ctx()
	defer cancel()
	for _, rr := range req.Resources {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		set := map[string]string{}
		var del []string
		var err error
		for _, c := range rr.Configs {
			switch c.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				if c.Value == nil {
					err = describe(kerr.InvalidConfig, "setting %s needs a value", c.Name)
				} else {
					set[c.Name] = *c.Value
				}
			case kmsg.IncrementalAlterConfigOpDelete:
				del = append(del, c.Name)
			default:
				err = describe(kerr.InvalidConfig, "%s is not a list config; only set and delete apply", c.Name)
			}
		}
		if err == nil {
			err = b.alterTopicConfigs(ctx, rr.ResourceType, rr.ResourceName, set, del, false, req.ValidateOnly)
		}
		res.ErrorCode, res.ErrorMessage = b.errCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, res)
	}
	respond(resp)
}
