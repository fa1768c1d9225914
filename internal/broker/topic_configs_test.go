package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/topicconfig"
)

// configDefaults are the node-wide topic defaults of these tests, unlike
// Kafka's so that their source shows.
var configDefaults = topicconfig.Defaults{RetentionMs: 3600000, RetentionBytes: -1, SegmentBytes: 1 << 20,
	SegmentMs: 600000, MaxMessageBytes: 1048588, MinInsyncReplicas: 1}

// startWithDefaults is a standalone node whose broker has configDefaults.
func startWithDefaults(t *testing.T) *standaloneNode {
	n := startStandalone(t)
	n.broker = New(Config{NodeID: 1, Host: "127.0.0.1", Port: 9092, TopicDefaults: configDefaults}, n.catalog, n.replicas, nil)
	return n
}

func (n *standaloneNode) createTopic(t *testing.T, name string, configs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.catalog.CreateTopic(ctx, name, [][]int32{{1}}, configs, false); err != nil {
		t.Fatal(err)
	}
}

func createTopicsRequest(validateOnly bool, name string, configs ...string) *kmsg.CreateTopicsRequest {
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.TimeoutMillis, ct.ValidateOnly = 100, validateOnly
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
	for i := 0; i+1 < len(configs); i += 2 {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: configs[i], Value: kmsg.StringPtr(configs[i+1])})
	}
	ct.Topics = []kmsg.CreateTopicsRequestTopic{rt}
	return ct
}

// wantError checks an answer's error code and that its message has every
// piece of want.
func wantError(t *testing.T, what string, code int16, msg *string, want *kerr.Error, pieces ...string) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if code != wantCode {
		text := "no message"
		if msg != nil {
			text = *msg
		}
		t.Errorf("%s: error %v (%s), want %v", what, kerr.ErrorForCode(code), text, want)
		return
	}
	if len(pieces) > 0 && msg == nil {
		t.Errorf("%s: no error message", what)
		return
	}
	for _, p := range pieces {
		if !strings.Contains(*msg, p) {
			t.Errorf("%s: message %q does not say %q", what, *msg, p)
		}
	}
}

// TestCreateTopicsConfigs creates topics with Kafka's configs: unknown
// names and invalid values are refused with INVALID_CONFIG and a message
// naming the config, with or without validate_only; any Kafka config with
// a valid value is accepted.
func TestCreateTopicsConfigs(t *testing.T) {
	n := startWithDefaults(t)
	refused := []struct {
		configs []string
		pieces  []string
	}{
		{[]string{"no.such.config", "1"}, []string{`unknown topic config "no.such.config"`}},
		{[]string{"min.cleanable.dirty.ratio", "1.5"}, []string{"min.cleanable.dirty.ratio", "between 0 and 1"}},
		{[]string{"cleanup.policy", "compact,archive"}, []string{"cleanup.policy", `"archive" must be one of compact, delete`}},
		{[]string{"segment.jitter.ms", "10"}, []string{"segment.jitter.ms", "not supported by Chronik"}},
		{[]string{"compression.type", "brotli"}, []string{"compression.type", "must be one of"}},
		{[]string{"unclean.leader.election.enable", "true"}, []string{"unclean.leader.election.enable", "never elected"}},
		{[]string{"min.compaction.lag.ms", "100", "max.compaction.lag.ms", "10"}, []string{"min.compaction.lag.ms (100) must not be greater than max.compaction.lag.ms (10)"}},
	}
	for _, c := range refused {
		for _, validateOnly := range []bool{true, false} {
			r := n.handle(t, createTopicsRequest(validateOnly, "refused", c.configs...), 7).(*kmsg.CreateTopicsResponse)
			st := r.Topics[0]
			wantError(t, strings.Join(c.configs, "="), st.ErrorCode, st.ErrorMessage, kerr.InvalidConfig, c.pieces...)
		}
		if n.catalog.Topic("refused") != nil {
			t.Fatalf("configs %v refused, yet the topic was created", c.configs)
		}
	}

	// librdkafka's admin test sends delete.retention.ms; a compacted topic
	// with every other config Kafka knows, at a valid value.
	all := []string{"cleanup.policy", "compact", "delete.retention.ms", "1000", "preallocate", "true",
		"flush.messages", "1", "index.interval.bytes", "100", "message.format.version", "2.8",
		"follower.replication.throttled.replicas", "0:1", "min.cleanable.dirty.ratio", "0.01",
		"segment.jitter.ms", "0", "remote.storage.enable", "false"}
	r := n.handle(t, createTopicsRequest(true, "compacted", all...), 7).(*kmsg.CreateTopicsResponse)
	wantError(t, "validate only", r.Topics[0].ErrorCode, r.Topics[0].ErrorMessage, nil)
	if n.catalog.Topic("compacted") != nil {
		t.Fatal("validate_only created the topic")
	}
	r = n.handle(t, createTopicsRequest(false, "compacted", all...), 7).(*kmsg.CreateTopicsResponse)
	st := r.Topics[0]
	wantError(t, "create", st.ErrorCode, st.ErrorMessage, nil)
	topic := n.catalog.Topic("compacted")
	if topic == nil || topic.Configs["cleanup.policy"] != "compact" || topic.Configs["delete.retention.ms"] != "1000" {
		t.Fatalf("created topic: %+v", topic)
	}
	if len(st.Configs) != len(topicconfig.Defs) {
		t.Errorf("%d configs in the answer, want all %d", len(st.Configs), len(topicconfig.Defs))
	}
	sources := map[string]int8{}
	for _, c := range st.Configs {
		sources[c.Name] = c.Source
	}
	if sources["cleanup.policy"] != int8(kmsg.ConfigSourceDynamicTopicConfig) ||
		sources["retention.ms"] != int8(kmsg.ConfigSourceStaticBrokerConfig) ||
		sources["max.compaction.lag.ms"] != int8(kmsg.ConfigSourceDefaultConfig) {
		t.Errorf("config sources in the answer: %v", sources)
	}
}

// TestDescribeTopicConfigs describes every config of a topic with its
// value, type, documentation, source and synonyms.
func TestDescribeTopicConfigs(t *testing.T) {
	n := startWithDefaults(t)
	n.createTopic(t, "described", map[string]string{"cleanup.policy": "compact,delete", "delete.retention.ms": "5000", "retention.ms": "7000"})

	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	req.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "described"}}
	r := n.handle(t, req, 4).(*kmsg.DescribeConfigsResponse)
	res := r.Resources[0]
	wantError(t, "describe", res.ErrorCode, res.ErrorMessage, nil)
	if len(res.Configs) != len(topicconfig.Defs) {
		t.Fatalf("%d configs described, want %d", len(res.Configs), len(topicconfig.Defs))
	}
	byName := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range res.Configs {
		byName[c.Name] = c
		if c.ReadOnly || c.IsSensitive || c.Documentation == nil || *c.Documentation == "" || c.Value == nil {
			t.Errorf("%s: read only %v, sensitive %v, documentation %v, value %v", c.Name, c.ReadOnly, c.IsSensitive, c.Documentation, c.Value)
		}
	}
	type synonym struct {
		name, value string
		source      kmsg.ConfigSource
	}
	check := func(name, value string, typ kmsg.ConfigType, source kmsg.ConfigSource, synonyms ...synonym) {
		t.Helper()
		c := byName[name]
		if c.Value == nil || *c.Value != value || c.ConfigType != typ || c.Source != source {
			t.Errorf("%s: value %v type %v source %v; want %q, %v, %v", name, c.Value, c.ConfigType, c.Source, value, typ, source)
		}
		var got []synonym
		for _, s := range c.ConfigSynonyms {
			got = append(got, synonym{s.Name, *s.Value, s.Source})
		}
		if len(got) != len(synonyms) {
			t.Errorf("%s: synonyms %+v, want %+v", name, got, synonyms)
			return
		}
		for i := range got {
			if got[i] != synonyms[i] {
				t.Errorf("%s: synonyms %+v, want %+v", name, got, synonyms)
				return
			}
		}
	}
	topicSrc, nodeSrc, defaultSrc := kmsg.ConfigSourceDynamicTopicConfig, kmsg.ConfigSourceStaticBrokerConfig, kmsg.ConfigSourceDefaultConfig
	check("cleanup.policy", "compact,delete", kmsg.ConfigTypeList, topicSrc,
		synonym{"cleanup.policy", "compact,delete", topicSrc}, synonym{"log.cleanup.policy", "delete", defaultSrc})
	check("retention.ms", "7000", kmsg.ConfigTypeLong, topicSrc,
		synonym{"retention.ms", "7000", topicSrc}, synonym{"log.retention.ms", "3600000", nodeSrc}, synonym{"log.retention.ms", "604800000", defaultSrc})
	check("segment.bytes", "1048576", kmsg.ConfigTypeInt, nodeSrc,
		synonym{"log.segment.bytes", "1048576", nodeSrc}, synonym{"log.segment.bytes", "1073741824", defaultSrc})
	check("delete.retention.ms", "5000", kmsg.ConfigTypeLong, topicSrc,
		synonym{"delete.retention.ms", "5000", topicSrc}, synonym{"log.cleaner.delete.retention.ms", "86400000", defaultSrc})
	check("min.cleanable.dirty.ratio", "0.5", kmsg.ConfigTypeDouble, defaultSrc,
		synonym{"log.cleaner.min.cleanable.ratio", "0.5", defaultSrc})
	check("preallocate", "false", kmsg.ConfigTypeBoolean, defaultSrc, synonym{"log.preallocate", "false", defaultSrc})
	check("remote.storage.enable", "false", kmsg.ConfigTypeBoolean, defaultSrc)
	check("message.format.version", "3.0-IV1", kmsg.ConfigTypeString, defaultSrc, synonym{"log.message.format.version", "3.0-IV1", defaultSrc})
	if d := *byName["flush.ms"].Documentation; !strings.Contains(d, "without effect") {
		t.Errorf("flush.ms documentation %q does not say Chronik ignores it", d)
	}

	// v0 has no sources: a config not set on the topic is a default.
	req.IncludeSynonyms, req.IncludeDocumentation = false, false
	req.Resources[0].ConfigNames = []string{"delete.retention.ms", "max.compaction.lag.ms"}
	r = n.handle(t, req, 0).(*kmsg.DescribeConfigsResponse)
	if cs := r.Resources[0].Configs; len(cs) != 2 || cs[0].IsDefault || !cs[1].IsDefault {
		t.Errorf("v0 answer: %+v", cs)
	}

	// The broker's own configs are still described.
	req.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"}}
	r = n.handle(t, req, 4).(*kmsg.DescribeConfigsResponse)
	found := false
	for _, c := range r.Resources[0].Configs {
		if c.Name == "log.retention.ms" {
			found = *c.Value == "3600000" && c.ReadOnly && c.Source == nodeSrc
		}
	}
	if r.Resources[0].ErrorCode != 0 || !found {
		t.Errorf("broker configs: %+v", r.Resources[0])
	}
}

func incrementalAlter(validateOnly bool, topic string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) *kmsg.IncrementalAlterConfigsRequest {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic, Configs: ops}}
	return req
}

func alterOp(name string, op kmsg.IncrementalAlterConfigOp, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: op, Value: kmsg.StringPtr(value)}
}

// TestIncrementalAlterListConfigs appends to and subtracts from
// cleanup.policy, starting from its default, as Kafka does; other configs
// are not lists.
func TestIncrementalAlterListConfigs(t *testing.T) {
	n := startWithDefaults(t)
	n.createTopic(t, "altered", nil)
	alter := func(validateOnly bool, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsResponseResource {
		t.Helper()
		return n.handle(t, incrementalAlter(validateOnly, "altered", ops...), 1).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
	}
	policy := func() string { return n.catalog.Topic("altered").Configs["cleanup.policy"] }

	res := alter(true, alterOp("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, "compact"))
	wantError(t, "validate append", res.ErrorCode, res.ErrorMessage, nil)
	if _, set := n.catalog.Topic("altered").Configs["cleanup.policy"]; set {
		t.Fatal("validate_only changed the topic")
	}
	res = alter(false, alterOp("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, "compact"))
	wantError(t, "append", res.ErrorCode, res.ErrorMessage, nil)
	if p := policy(); p != "delete,compact" {
		t.Fatalf("after appending compact to the default: %q, want delete,compact", p)
	}
	res = alter(false, alterOp("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, "delete"))
	wantError(t, "append again", res.ErrorCode, res.ErrorMessage, nil)
	if p := policy(); p != "delete,compact" {
		t.Fatalf("appending an element already there: %q", p)
	}
	res = alter(false, alterOp("cleanup.policy", kmsg.IncrementalAlterConfigOpSubtract, "delete"))
	wantError(t, "subtract", res.ErrorCode, res.ErrorMessage, nil)
	if p := policy(); p != "compact" {
		t.Fatalf("after subtracting delete: %q, want compact", p)
	}

	for what, ops := range map[string][]kmsg.IncrementalAlterConfigsRequestResourceConfig{
		"append to a long":  {alterOp("retention.ms", kmsg.IncrementalAlterConfigOpAppend, "1")},
		"append a bad one":  {alterOp("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, "archive")},
		"unknown name":      {alterOp("no.such.config", kmsg.IncrementalAlterConfigOpSet, "1")},
		"lags in conflict":  {alterOp("min.compaction.lag.ms", kmsg.IncrementalAlterConfigOpSet, "10"), alterOp("max.compaction.lag.ms", kmsg.IncrementalAlterConfigOpSet, "5")},
		"delete an unknown": {{Name: "no.such.config", Op: kmsg.IncrementalAlterConfigOpDelete}},
	} {
		res := alter(false, ops...)
		pieces := map[string][]string{
			"append to a long":  {"retention.ms is of type long", "only to list configs"},
			"append a bad one":  {"cleanup.policy", `"archive"`},
			"unknown name":      {`unknown topic config "no.such.config"`},
			"lags in conflict":  {"min.compaction.lag.ms (10) must not be greater than max.compaction.lag.ms (5)"},
			"delete an unknown": {`unknown topic config "no.such.config"`},
		}[what]
		wantError(t, what, res.ErrorCode, res.ErrorMessage, kerr.InvalidConfig, pieces...)
	}
	if p := policy(); p != "compact" {
		t.Fatalf("refused changes altered cleanup.policy to %q", p)
	}
	res = alter(false, alterOp("segment.ms", kmsg.IncrementalAlterConfigOpSet, "1000"), alterOp("segment.ms", kmsg.IncrementalAlterConfigOpDelete, ""))
	wantError(t, "a config named twice", res.ErrorCode, res.ErrorMessage, kerr.InvalidRequest, "segment.ms is named more than once")

	// The legacy AlterConfigs replaces the whole set, validated the same way.
	legacy := kmsg.NewPtrAlterConfigsRequest()
	legacy.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "altered",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "flush.ms", Value: kmsg.StringPtr("-1")}}}}
	lr := n.handle(t, legacy, 2).(*kmsg.AlterConfigsResponse).Resources[0]
	wantError(t, "legacy alter", lr.ErrorCode, lr.ErrorMessage, kerr.InvalidConfig, "flush.ms", "at least 0")
	legacy.Resources[0].Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "delete.retention.ms", Value: kmsg.StringPtr("1000")}}
	lr = n.handle(t, legacy, 2).(*kmsg.AlterConfigsResponse).Resources[0]
	wantError(t, "legacy alter", lr.ErrorCode, lr.ErrorMessage, nil)
	if cfg := n.catalog.Topic("altered").Configs; len(cfg) != 1 || cfg["delete.retention.ms"] != "1000" {
		t.Fatalf("after the legacy alter: %v", cfg)
	}
}

// TestReassignmentThrottlesOfBrokers: kafka-reassign-partitions --verify
// removes Kafka's reassignment throttles from every broker once a move is
// over; Chronik has none, and the removal succeeds. Setting one, or any
// other broker config, is refused.
func TestReassignmentThrottlesOfBrokers(t *testing.T) {
	n := startWithDefaults(t)
	alter := func(ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsResponseResource {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1", Configs: ops}}
		return n.handle(t, req, 1).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
	}
	del := func(name string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: kmsg.IncrementalAlterConfigOpDelete}
	}
	res := alter(del("leader.replication.throttled.rate"), del("follower.replication.throttled.rate"), del("replica.alter.log.dirs.io.max.bytes.per.second"))
	wantError(t, "removing the throttles", res.ErrorCode, res.ErrorMessage, nil)
	res = alter(alterOp("leader.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, "1000000"))
	wantError(t, "setting a throttle", res.ErrorCode, res.ErrorMessage, kerr.InvalidConfig, "cluster.rebalance.throttle_bytes_per_sec")
	res = alter(del("log.retention.ms"))
	wantError(t, "removing another broker config", res.ErrorCode, res.ErrorMessage, kerr.InvalidRequest, "read only")
}
