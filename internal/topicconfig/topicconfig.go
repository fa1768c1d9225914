// Package topicconfig knows the Kafka topic configs Chronik supports: their
// names, types, validation, node-wide defaults, and how they become a
// replica's settings.
package topicconfig

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/storage"
)

// Defaults are the node-wide values used for configs a topic does not set.
type Defaults struct {
	RetentionMs       int64
	RetentionBytes    int64
	SegmentBytes      int64
	SegmentMs         int64
	MaxMessageBytes   int64
	MinInsyncReplicas int64
}

// Type is a config's Kafka type, as DescribeConfigs v3+ reports it.
type Type int8

// Kafka config types.
const (
	TypeString Type = 2
	TypeInt    Type = 3
	TypeLong   Type = 5
)

// Def describes one supported topic config.
type Def struct {
	Name string
	Type Type
	Doc  string
	// min and max bound numeric values.
	min, max int64
	// allowed lists the values of a string config.
	allowed []string
	def     func(Defaults) string
}

// Names of the supported configs.
const (
	CleanupPolicy        = "cleanup.policy"
	RetentionMs          = "retention.ms"
	RetentionBytes       = "retention.bytes"
	SegmentBytes         = "segment.bytes"
	SegmentMs            = "segment.ms"
	MaxMessageBytes      = "max.message.bytes"
	MinInsyncReplicas    = "min.insync.replicas"
	MessageTimestampType = "message.timestamp.type"
	CompressionType      = "compression.type"
)

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// Defs lists the supported configs in name order.
var Defs = []Def{
	{Name: CleanupPolicy, Type: TypeString, allowed: []string{"delete"},
		Doc: "How old segments are removed; only delete (by retention.ms and retention.bytes) is supported.",
		def: func(Defaults) string { return "delete" }},
	{Name: CompressionType, Type: TypeString, allowed: []string{"producer"},
		Doc: "Batches are stored as the producer compressed them.",
		def: func(Defaults) string { return "producer" }},
	{Name: MaxMessageBytes, Type: TypeInt, min: 0, max: 1<<31 - 1,
		Doc: "Largest record batch accepted, in bytes.",
		def: func(d Defaults) string { return itoa(d.MaxMessageBytes) }},
	{Name: MessageTimestampType, Type: TypeString, allowed: []string{"CreateTime"},
		Doc: "Record timestamps are those the producer set.",
		def: func(Defaults) string { return "CreateTime" }},
	{Name: MinInsyncReplicas, Type: TypeInt, min: 1, max: 1<<31 - 1,
		Doc: "Replicas that must be in sync for an acks=all produce to be accepted.",
		def: func(d Defaults) string { return itoa(d.MinInsyncReplicas) }},
	{Name: RetentionBytes, Type: TypeLong, min: -1, max: 1<<63 - 1,
		Doc: "Oldest segments are deleted while the partition is larger; -1 for no limit.",
		def: func(d Defaults) string { return itoa(d.RetentionBytes) }},
	{Name: RetentionMs, Type: TypeLong, min: -1, max: 1<<63 - 1,
		Doc: "Segments whose newest record is older are deleted; -1 keeps data forever.",
		def: func(d Defaults) string { return itoa(d.RetentionMs) }},
	{Name: SegmentBytes, Type: TypeInt, min: storage.MinSegmentBytes, max: storage.MaxSegmentBytes,
		Doc: "The active segment is rolled when it would grow past this.",
		def: func(d Defaults) string { return itoa(d.SegmentBytes) }},
	{Name: SegmentMs, Type: TypeLong, min: 1, max: 1<<63 - 1,
		Doc: "The active segment is rolled this long after its first append.",
		def: func(d Defaults) string { return itoa(d.SegmentMs) }},
}

// Lookup returns the definition of name.
func Lookup(name string) (*Def, bool) {
	i, ok := slices.BinarySearchFunc(Defs, name, func(d Def, n string) int {
		switch {
		case d.Name < n:
			return -1
		case d.Name > n:
			return 1
		}
		return 0
	})
	if !ok {
		return nil, false
	}
	return &Defs[i], true
}

// Validate checks one config value and says what is wrong with it.
func Validate(name, value string) error {
	d, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown or unsupported topic config %q", name)
	}
	if d.allowed != nil {
		if !slices.Contains(d.allowed, value) {
			return fmt.Errorf("%s=%q is not supported (supported: %v)", name, value, d.allowed)
		}
		return nil
	}
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return fmt.Errorf("%s=%q is not an integer", name, value)
	}
	if v < d.min || v > d.max {
		return fmt.Errorf("%s=%d must be between %d and %d", name, v, d.min, d.max)
	}
	return nil
}

// Entry is one config as DescribeConfigs shows it.
type Entry struct {
	Def       *Def
	Value     string
	IsDefault bool
}

// Describe returns every supported config of a topic with its value.
func Describe(cfg map[string]string, d Defaults) []Entry {
	out := make([]Entry, 0, len(Defs))
	for i := range Defs {
		def := &Defs[i]
		if v, ok := cfg[def.Name]; ok {
			out = append(out, Entry{Def: def, Value: v})
		} else {
			out = append(out, Entry{Def: def, Value: def.def(d), IsDefault: true})
		}
	}
	return out
}

// Resolve turns a topic's configs into a replica's settings.
func Resolve(cfg map[string]string, d Defaults) replica.Config {
	get := func(name string) int64 {
		def, _ := Lookup(name)
		v := def.def(d)
		if s, ok := cfg[name]; ok {
			v = s
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	lc := storage.LogConfig{
		SegmentBytes:   get(SegmentBytes),
		SegmentMs:      time.Duration(get(SegmentMs)) * time.Millisecond,
		RetentionMs:    time.Duration(get(RetentionMs)) * time.Millisecond,
		RetentionBytes: get(RetentionBytes),
	}
	if get(RetentionMs) < 0 {
		lc.RetentionMs = -1
	}
	return replica.Config{
		MinInsyncReplicas: int(get(MinInsyncReplicas)),
		MaxMessageBytes:   int(get(MaxMessageBytes)),
		Log:               lc,
	}
}
