package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/topicconfig"
	"github.com/chronik-stream/chronik/internal/wire"
)

// AlterConfigs: v0-2
//
// Behavior:
// * Replaces a topic's configs with the given set (configs not named go
// back to their defaults), through the catalog; every replica picks the
// change up. Values are validated first (INVALID_CONFIG naming the rule).
// * validate_only checks without changing.
// * Broker configs are read only here, and so are the configs of internal
// topics (INVALID_REQUEST).
//
// Version notes:
// * v2 flexible.
func init() { register(kmsg.AlterConfigs, 0, 2, (*Broker).handleAlterConfigs) }

func (b *Broker) handleAlterConfigs(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	ctx, cancel := b.ctx()
	defer cancel()
	for _, rr := range req.Resources {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		set := map[string]string{}
		for _, c := range rr.Configs {
			if c.Value != nil {
				set[c.Name] = *c.Value
			}
		}
		err := b.alterTopicConfigs(ctx, rr.ResourceType, rr.ResourceName, set, nil, true, req.ValidateOnly)
		res.ErrorCode, res.ErrorMessage = b.errCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, res)
	}
	respond(resp)
}

// alterTopicConfigs validates and applies a change to a topic's configs.
func (b *Broker) alterTopicConfigs(ctx context.Context, typ kmsg.ConfigResourceType, name string, set map[string]string, del []string, replace, validateOnly bool) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return describe(kerr.InvalidRequest, "broker configs are read only; change the chronik-server configuration and restart")
	default:
		return describe(kerr.InvalidRequest, "resource type %d is not supported", typ)
	}
	t := b.catalog.Topic(name)
	if t == nil {
		return kerr.UnknownTopicOrPartition
	}
	if t.Internal {
		return describe(kerr.InvalidRequest, "the configs of internal topic %s are set by the server", name)
	}
	for k, v := range set {
		if err := topicconfig.Validate(k, v); err != nil {
			return describe(kerr.InvalidConfig, "%v", err)
		}
	}
	for _, k := range del {
		if _, ok := topicconfig.Lookup(k); !ok {
			return describe(kerr.InvalidConfig, "unknown or unsupported topic config %q", k)
		}
	}
	if validateOnly {
		return nil
	}
	if err := b.catalog.AlterConfigs(ctx, name, set, del, replace); err != nil {
		return err
	}
	b.logger.Info("changed topic configs", "topic", name, "set", set, "deleted", del)
	return nil
}
