package broker

import (
	"context"
	"maps"
	"slices"

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
// change up. Values are validated first, as Kafka validates them, and
// against what Chronik implements (INVALID_CONFIG naming the config and
// the rule).
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
		change := configChange{set: map[string]string{}, replace: true}
		for _, c := range rr.Configs {
			if c.Value != nil {
				change.set[c.Name] = *c.Value
			}
		}
		err := b.alterTopicConfigs(ctx, rr.ResourceType, rr.ResourceName, change, req.ValidateOnly)
		res.ErrorCode, res.ErrorMessage = b.errCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, res)
	}
	respond(resp)
}

// reassignmentThrottles are Kafka's dynamic broker configs that bound the
// traffic of partition reassignments. Chronik has none of them: its move
// throttle is cluster.rebalance.throttle_bytes_per_sec. Deleting them is
// what kafka-reassign-partitions --verify and --cancel do once a move is
// over, and succeeds (there is nothing to remove); setting them is
// refused.
var reassignmentThrottles = []string{"leader.replication.throttled.rate", "follower.replication.throttled.rate", "replica.alter.log.dirs.io.max.bytes.per.second"}

// alterBrokerConfigs answers a change of broker configs: they are read
// only, but for removing the reassignment throttles, which are never set.
func alterBrokerConfigs(change configChange) error {
	if len(change.set) == 0 && len(change.lists) == 0 && !change.replace {
		unknown := slices.DeleteFunc(slices.Clone(change.del), func(k string) bool { return slices.Contains(reassignmentThrottles, k) })
		if len(unknown) == 0 {
			return nil
		}
	}
	for k := range change.set {
		if slices.Contains(reassignmentThrottles, k) {
			return describe(kerr.InvalidConfig, "%s is not a Chronik broker config: moves are throttled by cluster.rebalance.throttle_bytes_per_sec in the chronik-server configuration", k)
		}
	}
	return describe(kerr.InvalidRequest, "broker configs are read only; change the chronik-server configuration and restart")
}

// configChange is a change to one topic's configs.
type configChange struct {
	set map[string]string
	del []string
	// lists are appends to and subtractions from list configs, applied in
	// order to the topic's values (or the defaults) before set.
	lists []listChange
	// replace makes set the topic's whole configuration: configs not in it
	// go back to their defaults.
	replace bool
}

// listChange is IncrementalAlterConfigs' APPEND or SUBTRACT of one list
// config.
type listChange struct {
	name, value string
	subtract    bool
}

// alterTopicConfigs validates and applies a change to a topic's configs.
func (b *Broker) alterTopicConfigs(ctx context.Context, typ kmsg.ConfigResourceType, name string, change configChange, validateOnly bool) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return alterBrokerConfigs(change)
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
	for _, lc := range change.lists {
		current, ok := t.Configs[lc.name]
		if !ok {
			if d, known := topicconfig.Lookup(lc.name); known {
				current, _ = d.DefaultFor(b.cfg.TopicDefaults)
			}
		}
		apply := topicconfig.Append
		if lc.subtract {
			apply = topicconfig.Subtract
		}
		v, err := apply(lc.name, current, lc.value)
		if err != nil {
			return describe(kerr.InvalidConfig, "%v", err)
		}
		change.set[lc.name] = v
	}
	for _, k := range slices.Sorted(maps.Keys(change.set)) {
		if err := topicconfig.Validate(k, change.set[k]); err != nil {
			return describe(kerr.InvalidConfig, "%v", err)
		}
	}
	for _, k := range change.del {
		if _, ok := topicconfig.Lookup(k); !ok {
			return describe(kerr.InvalidConfig, "%v", topicconfig.UnknownError(k))
		}
	}
	// The configs as they will be, for the rules that tie configs
	// together; the values already stored were validated when set.
	after := change.set
	if !change.replace {
		after = cloneConfigs(t.Configs)
		maps.Copy(after, change.set)
		for _, k := range change.del {
			delete(after, k)
		}
	}
	if err := topicconfig.ValidateTogether(after, b.cfg.TopicDefaults); err != nil {
		return describe(kerr.InvalidConfig, "%v", err)
	}
	if validateOnly {
		return nil
	}
	if err := b.catalog.AlterConfigs(ctx, name, change.set, change.del, change.replace); err != nil {
		return err
	}
	b.logger.Info("changed topic configs", "topic", name, "set", change.set, "deleted", change.del)
	return nil
}
