package broker

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// IncrementalAlterConfigs: v0-1
//
// Behavior:
// * Sets (op 0) or deletes (op 1, back to the default) single topic
// configs, leaving the others. Append and subtract (ops 2, 3) add elements
// to or remove them from a list config (cleanup.policy, the throttled
// replicas lists), starting from the topic's value or the default, as
// Kafka does; on another config they get INVALID_CONFIG.
// * A config named twice for one resource gets INVALID_REQUEST, as in
// Kafka. validate_only checks without changing; broker configs are read
// only, but deleting Kafka's reassignment throttles (which Chronik never
// has) succeeds, so that kafka-reassign-partitions --verify can finish.
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
		change, err := incrementalChange(rr.Configs)
		if err == nil {
			err = b.alterTopicConfigs(ctx, rr.ResourceType, rr.ResourceName, change, req.ValidateOnly)
		}
		res.ErrorCode, res.ErrorMessage = b.errCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, res)
	}
	respond(resp)
}

// incrementalChange reads the operations on one resource's configs.
func incrementalChange(configs []kmsg.IncrementalAlterConfigsRequestResourceConfig) (configChange, error) {
	change := configChange{set: map[string]string{}}
	named := map[string]bool{}
	for _, c := range configs {
		if named[c.Name] {
			return change, describe(kerr.InvalidRequest, "config %s is named more than once; each config takes one operation per request", c.Name)
		}
		named[c.Name] = true
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return change, describe(kerr.InvalidConfig, "setting %s needs a value", c.Name)
			}
			change.set[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			change.del = append(change.del, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if c.Value == nil {
				return change, describe(kerr.InvalidConfig, "%s of %s needs a value", strings.ToLower(c.Op.String()), c.Name)
			}
			change.lists = append(change.lists, listChange{name: c.Name, value: *c.Value, subtract: c.Op == kmsg.IncrementalAlterConfigOpSubtract})
		default:
			return change, describe(kerr.InvalidConfig, "operation %d on %s is not one of set (0), delete (1), append (2), subtract (3)", c.Op, c.Name)
		}
	}
	return change, nil
}
