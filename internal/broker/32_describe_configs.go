package broker

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/topicconfig"
	"github.com/chronik-stream/chronik/internal/wire"
)

// DescribeConfigs: v0-4
//
// Behavior:
// * Topics: every Kafka topic config (or the ones named) with its value,
// type and documentation (which says what Chronik does with it), and its
// source: set on the topic (DYNAMIC_TOPIC_CONFIG), this node's
// configuration file (STATIC_BROKER_CONFIG, for the configs it sets for
// every topic) or Kafka's default (DEFAULT_CONFIG). Synonyms list them in
// that order, the node's and Kafka's under the broker config's name
// (log.retention.ms), as Kafka does.
// * Brokers: this node's defaults under Kafka's broker config names, read
// only. Another broker's configs are described by that broker.
//
// Version notes:
// * v1 config source and synonyms, v3 config types and documentation, v4
// flexible.
func init() { register(kmsg.DescribeConfigs, 0, 4, (*Broker).handleDescribeConfigs) }

func (b *Broker) handleDescribeConfigs(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := b.catalog.Topic(rr.ResourceName)
			if t == nil {
				err = kerr.UnknownTopicOrPartition
				break
			}
			for _, e := range topicconfig.Describe(t.Configs, b.cfg.TopicDefaults) {
				ce := configEntry{name: e.Def.Name, value: e.Value, source: kmsg.ConfigSource(e.Source), typ: int8(e.Def.Type),
					doc: e.Def.Documentation(), synonyms: []configSynonym{}}
				for _, s := range e.Synonyms {
					ce.synonyms = append(ce.synonyms, configSynonym{name: s.Name, value: s.Value, source: kmsg.ConfigSource(s.Source)})
				}
				entries = append(entries, ce)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
				err = describe(kerr.InvalidRequest, "broker %s describes its own configs; this is broker %d", rr.ResourceName, b.cfg.NodeID)
				break
			}
			entries = b.brokerConfigs()
		default:
			err = describe(kerr.InvalidRequest, "resource type %d is not supported", rr.ResourceType)
		}
		res.ErrorCode, res.ErrorMessage = b.errCode(err), errMessage(err)
		for _, e := range entries {
			if rr.ConfigNames != nil && !contains(rr.ConfigNames, e.name) {
				continue
			}
			res.Configs = append(res.Configs, e.toKmsg(req))
		}
		resp.Resources = append(resp.Resources, res)
	}
	respond(resp)
}

type configEntry struct {
	name, value string
	source      kmsg.ConfigSource
	readOnly    bool
	typ         int8
	doc         string
	// synonyms, when not nil, are the places the value may come from;
	// nil lists the entry itself.
	synonyms []configSynonym
}

type configSynonym struct {
	name, value string
	source      kmsg.ConfigSource
}

func (e configEntry) toKmsg(req *kmsg.DescribeConfigsRequest) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = e.name
	v := e.value
	c.Value = &v
	c.ReadOnly = e.readOnly
	c.Source = e.source
	c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
	c.ConfigType = kmsg.ConfigType(e.typ)
	if req.IncludeSynonyms {
		synonyms := e.synonyms
		if synonyms == nil {
			synonyms = []configSynonym{{e.name, e.value, e.source}}
		}
		c.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{}
		for _, s := range synonyms {
			sv := s.value
			c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: s.name, Value: &sv, Source: s.source})
		}
	}
	if req.IncludeDocumentation {
		d := e.doc
		c.Documentation = &d
	}
	return c
}

// brokerConfigs lists this node's settings under Kafka's broker names.
func (b *Broker) brokerConfigs() []configEntry {
	d := b.cfg.TopicDefaults
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	list := []struct {
		name, value string
		typ         topicconfig.Type
	}{
		{"auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics), topicconfig.TypeBoolean},
		{"broker.id", strconv.Itoa(int(b.cfg.NodeID)), topicconfig.TypeInt},
		{"default.replication.factor", strconv.Itoa(int(b.cfg.DefaultReplicationFactor)), topicconfig.TypeInt},
		{"log.retention.bytes", i64(d.RetentionBytes), topicconfig.TypeLong},
		{"log.retention.ms", i64(d.RetentionMs), topicconfig.TypeLong},
		{"log.roll.ms", i64(d.SegmentMs), topicconfig.TypeLong},
		{"log.segment.bytes", i64(d.SegmentBytes), topicconfig.TypeInt},
		{"message.max.bytes", i64(d.MaxMessageBytes), topicconfig.TypeInt},
		{"min.insync.replicas", i64(d.MinInsyncReplicas), topicconfig.TypeInt},
		{"num.partitions", strconv.Itoa(int(b.cfg.NumPartitions)), topicconfig.TypeInt},
		{"offsets.topic.num.partitions", strconv.Itoa(int(b.cfg.OffsetsTopicPartitions)), topicconfig.TypeInt},
	}
	out := make([]configEntry, 0, len(list))
	for _, c := range list {
		out = append(out, configEntry{name: c.name, value: c.value, source: kmsg.ConfigSourceStaticBrokerConfig, readOnly: true, typ: int8(c.typ),
			doc: "Set in the chronik-server configuration (see docs/configuration.md)."})
	}
	return out
}

func contains(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}
