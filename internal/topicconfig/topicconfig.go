// Package topicconfig knows every topic config of Apache Kafka 3.9 and 4.x:
// its name, type, valid values and default as Kafka defines them, whether
// Chronik acts on it, and how a topic's configs become a replica's
// settings.
//
// Every Kafka topic config is accepted, so that clients and tools written
// for Kafka can create and alter topics unchanged. Configs Chronik does not
// act on are validated as Kafka validates them, stored, and described; the
// few values that would promise something Chronik does not do are refused
// with the reason.
package topicconfig

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/storage"
)

// Defaults are the node-wide values, from this node's configuration, of
// the topic configs a Chronik node lets its operator set for every topic.
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
	TypeBoolean  Type = 1
	TypeString   Type = 2
	TypeInt      Type = 3
	TypeShort    Type = 4
	TypeLong     Type = 5
	TypeDouble   Type = 6
	TypeList     Type = 7
	TypeClass    Type = 8
	TypePassword Type = 9
)

func (t Type) String() string {
	switch t {
	case TypeBoolean:
		return "boolean"
	case TypeString:
		return "string"
	case TypeInt:
		return "int"
	case TypeShort:
		return "short"
	case TypeLong:
		return "long"
	case TypeDouble:
		return "double"
	case TypeList:
		return "list"
	case TypeClass:
		return "class"
	case TypePassword:
		return "password"
	}
	return "type " + strconv.Itoa(int(t))
}

// Source is where a config's value comes from, as DescribeConfigs v1+
// reports it.
type Source int8

// Config sources.
const (
	// SourceTopic is a value set on the topic (Kafka's
	// DYNAMIC_TOPIC_CONFIG).
	SourceTopic Source = 1
	// SourceNode is a value from this node's configuration file (Kafka's
	// STATIC_BROKER_CONFIG).
	SourceNode Source = 4
	// SourceDefault is Kafka's default (DEFAULT_CONFIG).
	SourceDefault Source = 5
)

// Def describes one topic config.
type Def struct {
	Name string
	Type Type
	// Default is Kafka's default, as DescribeConfigs shows it. Configs
	// with a node-wide value (NodeKey) default to that instead.
	Default string
	// BrokerConfig is the broker config Kafka takes the topic's default
	// from (log.retention.ms for retention.ms); empty when Kafka has none.
	BrokerConfig string
	// NodeKey is the key of this node's configuration that sets the
	// default for every topic (kafka.log_retention_ms); empty when the
	// default is always Kafka's.
	NodeKey string
	// Doc is Kafka's documentation of the config, shortened.
	Doc string
	// NoEffect says why Chronik accepts the config but does not act on
	// it; empty when Chronik acts on it.
	NoEffect string

	// rule holds Kafka's valid values beyond the type.
	rule rule
	// limit, when set, narrows Kafka's valid values to those Chronik keeps
	// the promise of.
	limit *limit
	// node returns the node-wide default when NodeKey is set.
	node func(Defaults) int64
}

// Valid describes the values Kafka accepts, as Kafka's documentation
// writes them; empty when any value of the type is valid.
func (d *Def) Valid() string { return d.rule.valid }

// Supported describes the values Chronik accepts when it refuses some
// that Kafka accepts, and why; both are empty when Chronik accepts every
// valid value.
func (d *Def) Supported() (values, why string) {
	if d.limit == nil {
		return "", ""
	}
	return d.limit.supported, d.limit.why
}

// Documentation is Doc followed by what Chronik does with the config, as
// DescribeConfigs v3+ reports it.
func (d *Def) Documentation() string {
	switch {
	case d.NoEffect != "":
		return d.Doc + " Chronik accepts it without effect: " + d.NoEffect + "."
	case d.limit != nil:
		return d.Doc + " Chronik accepts only " + d.limit.supported + ": " + d.limit.why + "."
	}
	return d.Doc
}

// DefaultFor returns the value a topic that does not set the config has,
// and where that value comes from.
func (d *Def) DefaultFor(nd Defaults) (string, Source) {
	if d.node != nil {
		return strconv.FormatInt(d.node(nd), 10), SourceNode
	}
	return d.Default, SourceDefault
}

// rule is a check of Kafka's valid values beyond the type.
type rule struct {
	// valid describes the valid values as Kafka's documentation does.
	valid string
	// check says what is wrong with a value of the right type; nil
	// accepts every value of the type.
	check func(v string) error
}

// limit is the subset of Kafka's valid values Chronik accepts.
type limit struct {
	accepts   func(v string) bool
	supported string
	why       string
}

// Names of the configs Chronik acts on or refers to.
const (
	CleanupPolicy               = "cleanup.policy"
	CompressionType             = "compression.type"
	DeleteRetentionMs           = "delete.retention.ms"
	MaxCompactionLagMs          = "max.compaction.lag.ms"
	MaxMessageBytes             = "max.message.bytes"
	MessageTimestampType        = "message.timestamp.type"
	MinCleanableDirtyRatio      = "min.cleanable.dirty.ratio"
	MinCompactionLagMs          = "min.compaction.lag.ms"
	MinInsyncReplicas           = "min.insync.replicas"
	RemoteStorageEnable         = "remote.storage.enable"
	RetentionBytes              = "retention.bytes"
	RetentionMs                 = "retention.ms"
	SegmentBytes                = "segment.bytes"
	SegmentJitterMs             = "segment.jitter.ms"
	SegmentMs                   = "segment.ms"
	UncleanLeaderElectionEnable = "unclean.leader.election.enable"
)

// The values of cleanup.policy.
const (
	PolicyCompact = "compact"
	PolicyDelete  = "delete"
)

const maxLong = "9223372036854775807"

// Reasons shared by several configs.
const (
	noTieredStorage = "applies only to tiered storage, which Chronik does not have (remote.storage.enable=true is refused)"
	noRecompression = "the leader recompresses at the codec's default level"
	noThrottle      = "Kafka throttles these replicas at the broker's leader/follower.replication.throttled.rate, which Chronik does not have; raft's flow control (raft.max_inflight_messages) is node-wide"
	denseIndex      = "Chronik's index is dense, one entry per batch, and sized by the segment"
)

// Defs lists every topic config in name order.
var Defs = []Def{
	{Name: CleanupPolicy, Type: TypeList, Default: PolicyDelete, BrokerConfig: "log.cleanup.policy",
		rule: listOf(PolicyCompact, PolicyDelete),
		Doc:  "How old segments are removed: delete drops them by retention.ms and retention.bytes, compact keeps the latest record of every key; both together do both."},
	{Name: "compression.gzip.level", Type: TypeInt, Default: "-1", BrokerConfig: "compression.gzip.level",
		rule:     gzipLevel(),
		Doc:      "Compression level used when compression.type is gzip.",
		NoEffect: noRecompression},
	{Name: "compression.lz4.level", Type: TypeInt, Default: "9", BrokerConfig: "compression.lz4.level",
		rule:     between(1, 17),
		Doc:      "Compression level used when compression.type is lz4.",
		NoEffect: noRecompression},
	{Name: CompressionType, Type: TypeString, Default: "producer", BrokerConfig: "compression.type",
		rule: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
		Doc:  "Final compression of the topic's batches; producer keeps the codec the producer used, any other value has the leader re-encode batches sent with another codec."},
	{Name: "compression.zstd.level", Type: TypeInt, Default: "3", BrokerConfig: "compression.zstd.level",
		rule:     between(-131072, 22),
		Doc:      "Compression level used when compression.type is zstd.",
		NoEffect: noRecompression},
	{Name: DeleteRetentionMs, Type: TypeLong, Default: "86400000", BrokerConfig: "log.cleaner.delete.retention.ms",
		rule: atLeast(0),
		Doc:  "How long tombstones (records with a null value) are kept in a compacted topic; a consumer reading from the start must finish within it to see every delete."},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", BrokerConfig: "log.segment.delete.delay.ms",
		rule:     atLeast(0),
		Doc:      "Time to wait before deleting a segment file from the filesystem.",
		NoEffect: "a deleted segment's files are removed as soon as the last reader holding them is done, with no fixed delay"},
	{Name: "flush.messages", Type: TypeLong, Default: maxLong, BrokerConfig: "log.flush.interval.messages",
		rule:     atLeast(1),
		Doc:      "Records written between two forced fsyncs of the log.",
		NoEffect: "every acknowledged write is fdatasynced by group commit before the answer, so there is nothing left to flush"},
	{Name: "flush.ms", Type: TypeLong, Default: maxLong, BrokerConfig: "log.flush.interval.ms",
		rule:     atLeast(0),
		Doc:      "Longest time between two forced fsyncs of the log.",
		NoEffect: "every acknowledged write is fdatasynced by group commit before the answer, so there is nothing left to flush"},
	{Name: "follower.replication.throttled.replicas", Type: TypeList, Default: "",
		rule:     throttledReplicas(),
		Doc:      "Replicas whose replication is throttled on the follower side, as partition:broker pairs, or * for all.",
		NoEffect: noThrottle},
	{Name: "index.interval.bytes", Type: TypeInt, Default: "4096", BrokerConfig: "log.index.interval.bytes",
		rule:     atLeast(0),
		Doc:      "Bytes of log between two entries of the offset index.",
		NoEffect: denseIndex},
	{Name: "leader.replication.throttled.replicas", Type: TypeList, Default: "",
		rule:     throttledReplicas(),
		Doc:      "Replicas whose replication is throttled on the leader side, as partition:broker pairs, or * for all.",
		NoEffect: noThrottle},
	{Name: "local.retention.bytes", Type: TypeLong, Default: "-2", BrokerConfig: "log.local.retention.bytes",
		rule:     atLeast(-2),
		Doc:      "Bytes of a partition kept on local disk when tiered storage is on; -2 means retention.bytes.",
		NoEffect: noTieredStorage},
	{Name: "local.retention.ms", Type: TypeLong, Default: "-2", BrokerConfig: "log.local.retention.ms",
		rule:     atLeast(-2),
		Doc:      "How long segments are kept on local disk when tiered storage is on; -2 means retention.ms.",
		NoEffect: noTieredStorage},
	{Name: MaxCompactionLagMs, Type: TypeLong, Default: maxLong, BrokerConfig: "log.cleaner.max.compaction.lag.ms",
		rule: atLeast(1),
		Doc:  "Longest time a record stays ineligible for compaction; a log with older uncompacted records is compacted whatever its dirty ratio."},
	{Name: MaxMessageBytes, Type: TypeInt, Default: "1048588", BrokerConfig: "message.max.bytes", NodeKey: "kafka.message_max_bytes",
		rule: atLeast(0),
		node: func(d Defaults) int64 { return d.MaxMessageBytes },
		Doc:  "Largest record batch accepted, in bytes (after compression)."},
	{Name: "message.downconversion.enable", Type: TypeBoolean, Default: "true", BrokerConfig: "log.message.downconversion.enable",
		rule:     boolean(),
		Doc:      "Whether batches are converted to an older message format for consumers that need it.",
		NoEffect: "only v2 record batches exist in Chronik, and Fetch below v4 (older formats) is not served: nothing is ever converted"},
	{Name: "message.format.version", Type: TypeString, Default: "3.0-IV1", BrokerConfig: "log.message.format.version",
		rule:     messageFormatVersion(),
		Doc:      "Message format version used to append to the log; ignored by Kafka since 3.0, removed in 4.0.",
		NoEffect: "Chronik stores only the v2 record batch format, whatever the version named"},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: maxLong, BrokerConfig: "log.message.timestamp.after.max.ms",
		rule: atLeast(0),
		Doc:  "How far after the broker's clock a CreateTime record timestamp may be before the batch is refused with INVALID_TIMESTAMP."},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, BrokerConfig: "log.message.timestamp.before.max.ms",
		rule: atLeast(0),
		Doc:  "How far before the broker's clock a CreateTime record timestamp may be before the batch is refused with INVALID_TIMESTAMP."},
	{Name: "message.timestamp.difference.max.ms", Type: TypeLong, Default: maxLong, BrokerConfig: "log.message.timestamp.difference.max.ms",
		rule: atLeast(0),
		Doc:  "Largest difference allowed between a CreateTime record timestamp and the broker's clock; replaced by the before/after configs (the smaller bound applies), removed in Kafka 4.0."},
	{Name: MessageTimestampType, Type: TypeString, Default: "CreateTime", BrokerConfig: "log.message.timestamp.type",
		rule: oneOf("CreateTime", "LogAppendTime"),
		Doc:  "Whether record timestamps are the producer's (CreateTime) or the leader's clock when it appends the batch (LogAppendTime)."},
	{Name: MinCleanableDirtyRatio, Type: TypeDouble, Default: "0.5", BrokerConfig: "log.cleaner.min.cleanable.ratio",
		rule: betweenFloat(0, 1),
		Doc:  "Share of a compacted log not yet compacted above which it is compacted again; higher means fewer, cheaper compactions and more duplicates kept."},
	{Name: MinCompactionLagMs, Type: TypeLong, Default: "0", BrokerConfig: "log.cleaner.min.compaction.lag.ms",
		rule: atLeast(0),
		Doc:  "Shortest time a record stays uncompacted in the log."},
	{Name: MinInsyncReplicas, Type: TypeInt, Default: "1", BrokerConfig: "min.insync.replicas", NodeKey: "cluster.min_insync_replicas",
		rule: atLeast(1),
		node: func(d Defaults) int64 { return d.MinInsyncReplicas },
		Doc:  "Replicas that must have a write for an acks=all produce to succeed; fewer in sync refuses it with NOT_ENOUGH_REPLICAS."},
	{Name: "preallocate", Type: TypeBoolean, Default: "false", BrokerConfig: "log.preallocate",
		rule:     boolean(),
		Doc:      "Whether segment files are preallocated on disk when created.",
		NoEffect: "segments are not preallocated; they grow as batches are appended"},
	{Name: "remote.log.copy.disable", Type: TypeBoolean, Default: "false",
		rule:     boolean(),
		Doc:      "Stops copying segments to tiered storage while keeping those already there readable.",
		NoEffect: noTieredStorage},
	{Name: "remote.log.delete.on.disable", Type: TypeBoolean, Default: "false",
		rule:     boolean(),
		Doc:      "Deletes the topic's tiered data when remote.storage.enable is turned off.",
		NoEffect: noTieredStorage},
	{Name: RemoteStorageEnable, Type: TypeBoolean, Default: "false",
		rule:  boolean(),
		limit: onlyBool(false, "Chronik keeps every log on local disk; tiered storage is not implemented"),
		Doc:   "Whether the topic's older segments are moved to tiered (remote) storage."},
	{Name: RetentionBytes, Type: TypeLong, Default: "-1", BrokerConfig: "log.retention.bytes", NodeKey: "kafka.log_retention_bytes",
		node: func(d Defaults) int64 { return d.RetentionBytes },
		Doc:  "Oldest segments are deleted while a partition is larger, under the delete policy; negative means no size limit."},
	{Name: RetentionMs, Type: TypeLong, Default: "604800000", BrokerConfig: "log.retention.ms", NodeKey: "kafka.log_retention_ms",
		rule: atLeast(-1),
		node: func(d Defaults) int64 { return d.RetentionMs },
		Doc:  "Segments whose newest record is older are deleted, under the delete policy; -1 means no time limit."},
	// Kafka's lower bound is 14 bytes in 3.9 and 1 MiB in 4.x; Chronik's
	// segments must hold their header, so its own bound is used.
	{Name: SegmentBytes, Type: TypeInt, Default: "1073741824", BrokerConfig: "log.segment.bytes", NodeKey: "kafka.log_segment_bytes",
		rule: between(storage.MinSegmentBytes, storage.MaxSegmentBytes),
		node: func(d Defaults) int64 { return d.SegmentBytes },
		Doc:  "Size of a segment file; the active segment is rolled when it would grow past it. Retention and compaction work a whole segment at a time."},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", BrokerConfig: "log.index.size.max.bytes",
		rule:     atLeast(4),
		Doc:      "Size of the index preallocated for each segment.",
		NoEffect: denseIndex},
	{Name: SegmentJitterMs, Type: TypeLong, Default: "0", BrokerConfig: "log.roll.jitter.ms",
		rule:  atLeast(0),
		limit: only("0", "segments roll exactly segment.ms after their first append; random jitter is not implemented"),
		Doc:   "Largest random time subtracted from segment.ms, so that segments do not all roll at once."},
	{Name: SegmentMs, Type: TypeLong, Default: "604800000", BrokerConfig: "log.roll.ms", NodeKey: "kafka.log_segment_ms",
		rule: atLeast(1),
		node: func(d Defaults) int64 { return d.SegmentMs },
		Doc:  "The active segment is rolled this long after its first append, even if not full, so retention and compaction can reach its records."},
	{Name: UncleanLeaderElectionEnable, Type: TypeBoolean, Default: "false", BrokerConfig: "unclean.leader.election.enable",
		rule:  boolean(),
		limit: onlyBool(false, "leaders are elected by raft from a majority holding every committed write; a replica that may lack committed writes is never elected"),
		Doc:   "Whether a replica outside the ISR may become leader as a last resort, losing data."},
}

// Lookup returns the definition of name.
func Lookup(name string) (*Def, bool) {
	i, ok := slices.BinarySearchFunc(Defs, name, func(d Def, n string) int { return strings.Compare(d.Name, n) })
	if !ok {
		return nil, false
	}
	return &Defs[i], true
}

// UnknownError is the error for a config name Kafka does not define.
func UnknownError(name string) error {
	return fmt.Errorf("unknown topic config %q", name)
}

// Validate checks one config value as Kafka does (its type, then its
// valid values), then that Chronik keeps what the value promises, and says
// what is wrong.
func Validate(name, value string) error {
	d, ok := Lookup(name)
	if !ok {
		return UnknownError(name)
	}
	v := strings.TrimSpace(value) // Kafka trims every value before parsing it
	if err := checkType(d.Type, v); err != nil {
		return fmt.Errorf("invalid value %q for topic config %s: %v", value, name, err)
	}
	if d.rule.check != nil {
		if err := d.rule.check(v); err != nil {
			return fmt.Errorf("invalid value %q for topic config %s: %v", value, name, err)
		}
	}
	if d.limit != nil && !d.limit.accepts(v) {
		return fmt.Errorf("topic config %s=%q is not supported by Chronik, which accepts only %s: %s", name, value, d.limit.supported, d.limit.why)
	}
	return nil
}

// ValidateAll checks every config of a topic, in name order, and then the
// rules that tie configs together.
func ValidateAll(cfg map[string]string, nd Defaults) error {
	names := make([]string, 0, len(cfg))
	for k := range cfg {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if err := Validate(k, cfg[k]); err != nil {
			return err
		}
	}
	return ValidateTogether(cfg, nd)
}

// ValidateTogether applies Kafka's rules that tie configs together to a
// topic's configs, each of them valid.
func ValidateTogether(cfg map[string]string, nd Defaults) error {
	v := values{cfg, nd}
	minLag, maxLag := v.long(MinCompactionLagMs), v.long(MaxCompactionLagMs)
	if minLag > maxLag {
		return fmt.Errorf("topic config %s (%d) must not be greater than %s (%d)", MinCompactionLagMs, minLag, MaxCompactionLagMs, maxLag)
	}
	return nil
}

// checkType parses a value as Kafka parses its type.
func checkType(t Type, v string) error {
	switch t {
	case TypeBoolean:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return errors.New("must be true or false")
		}
	case TypeInt:
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return errors.New("must be an integer between -2147483648 and 2147483647")
		}
	case TypeLong:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return errors.New("must be an integer between -9223372036854775808 and 9223372036854775807")
		}
	case TypeDouble:
		if _, err := parseDouble(v); err != nil {
			return err
		}
	}
	return nil
}

// decimalNumber is a number as Kafka's documentation writes doubles.
// Java would also take hexadecimal, NaN and Infinity; none makes sense for
// a ratio.
var decimalNumber = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

func parseDouble(v string) (float64, error) {
	if !decimalNumber.MatchString(v) {
		return 0, errors.New("must be a decimal number")
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, errors.New("must be a decimal number")
	}
	return f, nil
}

// splitList parses a LIST value as Kafka does: comma-separated, spaces
// around the commas ignored, the empty string an empty list.
func splitList(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func atLeast(min int64) rule {
	return rule{valid: fmt.Sprintf("[%d,...]", min), check: func(v string) error {
		if n, _ := strconv.ParseInt(v, 10, 64); n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}}
}

func between(min, max int64) rule {
	return rule{valid: fmt.Sprintf("[%d,...,%d]", min, max), check: func(v string) error {
		if n, _ := strconv.ParseInt(v, 10, 64); n < min || n > max {
			return fmt.Errorf("must be between %d and %d", min, max)
		}
		return nil
	}}
}

func betweenFloat(min, max float64) rule {
	return rule{valid: fmt.Sprintf("[%g,...,%g]", min, max), check: func(v string) error {
		if f, _ := parseDouble(v); f < min || f > max {
			return fmt.Errorf("must be between %g and %g", min, max)
		}
		return nil
	}}
}

func oneOf(values ...string) rule {
	return rule{valid: "[" + strings.Join(values, ", ") + "]", check: func(v string) error {
		if !slices.Contains(values, v) {
			return fmt.Errorf("must be one of %s", strings.Join(values, ", "))
		}
		return nil
	}}
}

func listOf(values ...string) rule {
	return rule{valid: "[" + strings.Join(values, ", ") + "]", check: func(v string) error {
		for _, e := range splitList(v) {
			if !slices.Contains(values, e) {
				return fmt.Errorf("list element %q must be one of %s (a comma-separated list of them)", e, strings.Join(values, ", "))
			}
		}
		return nil
	}}
}

func boolean() rule { return rule{} }

func gzipLevel() rule {
	return rule{valid: "[1,...,9] or -1", check: func(v string) error {
		if n, _ := strconv.ParseInt(v, 10, 64); n != -1 && (n < 1 || n > 9) {
			return errors.New("must be between 1 and 9, or -1 for zlib's default")
		}
		return nil
	}}
}

// replicaPair is one element of a throttled replicas list.
var replicaPair = regexp.MustCompile(`^([0-9]+:[0-9]+)?$`)

func throttledReplicas() rule {
	return rule{valid: "[partitionId]:[brokerId],[partitionId]:[brokerId],... or *", check: func(v string) error {
		parts := splitList(v)
		if strings.Join(parts, "") == "*" {
			return nil
		}
		for _, p := range parts {
			if !replicaPair.MatchString(p) {
				return fmt.Errorf("must be * or a list of replicas as [partitionId]:[brokerId],[partitionId]:[brokerId],... (%q is neither)", p)
			}
		}
		return nil
	}}
}

// formatReleases are Kafka's releases up to 3.9 with their number of inter
// broker protocol versions (IV0, IV1, ...), as Kafka 3.9 accepts them in
// message.format.version; releases with none take no -IV suffix.
var formatReleases = []struct {
	release string
	ivs     int
}{
	{"0.8.0", 0}, {"0.8.1", 0}, {"0.8.2", 0}, {"0.9.0", 0},
	{"0.10.0", 2}, {"0.10.1", 3}, {"0.10.2", 1}, {"0.11.0", 3},
	{"1.0", 1}, {"1.1", 1},
	{"2.0", 2}, {"2.1", 3}, {"2.2", 2}, {"2.3", 2}, {"2.4", 2}, {"2.5", 1}, {"2.6", 1}, {"2.7", 3}, {"2.8", 2},
	{"3.0", 2}, {"3.1", 1}, {"3.2", 1}, {"3.3", 4}, {"3.4", 1}, {"3.5", 3}, {"3.6", 3}, {"3.7", 5}, {"3.8", 1}, {"3.9", 1},
}

// knownFormatVersion reports whether Kafka 3.9 parses v as a version: the
// release's first three parts (0.x releases) or two (later ones) must name
// a release, optionally followed by one of its -IVn versions; further
// parts, like the patch level of 2.8.1, are ignored, as Kafka ignores them.
func knownFormatVersion(v string) bool {
	parts := strings.Split(v, ".")
	n := 2
	if strings.HasPrefix(v, "0.") {
		n = 3
	}
	key := v
	if n < len(parts) {
		key = strings.Join(parts[:n], ".")
	}
	release, iv, hasIV := strings.Cut(key, "-IV")
	for _, r := range formatReleases {
		if r.release != release {
			continue
		}
		if !hasIV {
			return true
		}
		i, err := strconv.Atoi(iv)
		return err == nil && i >= 0 && i < r.ivs && strconv.Itoa(i) == iv
	}
	return false
}

func messageFormatVersion() rule {
	return rule{valid: "a Kafka version from 0.8.0 to 3.9, such as 2.8, 3.0-IV1 or 0.10.2-IV0", check: func(v string) error {
		if !knownFormatVersion(v) {
			return errors.New("must be a Kafka version from 0.8.0 to 3.9, such as 2.8, 3.0-IV1 or 0.10.2-IV0")
		}
		return nil
	}}
}

func only(value, why string) *limit {
	return &limit{accepts: func(v string) bool { return v == value }, supported: value, why: why}
}

func onlyBool(value bool, why string) *limit {
	s := strconv.FormatBool(value)
	return &limit{accepts: func(v string) bool { return strings.EqualFold(v, s) }, supported: s, why: why}
}

// Append adds the elements of add to a LIST config's current value, each
// unless already there, as Kafka's IncrementalAlterConfigs APPEND does.
func Append(name, current, add string) (string, error) {
	if err := checkList(name); err != nil {
		return "", err
	}
	out := splitList(current)
	for _, e := range splitList(add) {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return strings.Join(out, ","), nil
}

// Subtract removes the elements of remove from a LIST config's current
// value, as Kafka's IncrementalAlterConfigs SUBTRACT does.
func Subtract(name, current, remove string) (string, error) {
	if err := checkList(name); err != nil {
		return "", err
	}
	drop := splitList(remove)
	out := slices.DeleteFunc(splitList(current), func(e string) bool { return slices.Contains(drop, e) })
	return strings.Join(out, ","), nil
}

func checkList(name string) error {
	d, ok := Lookup(name)
	if !ok {
		return UnknownError(name)
	}
	if d.Type != TypeList {
		return fmt.Errorf("topic config %s is of type %s; append and subtract apply only to list configs", name, d.Type)
	}
	return nil
}

// Entry is one config as DescribeConfigs shows it.
type Entry struct {
	Def    *Def
	Value  string
	Source Source
	// Synonyms are where the value could come from, highest precedence
	// first, as Kafka lists them: the topic's value if set, then the
	// node's, then Kafka's default under the broker config's name.
	Synonyms []Synonym
}

// Synonym is one place a config's value may come from.
type Synonym struct {
	Name   string
	Value  string
	Source Source
}

// Describe returns every topic config with its value and source.
func Describe(cfg map[string]string, nd Defaults) []Entry {
	out := make([]Entry, 0, len(Defs))
	for i := range Defs {
		d := &Defs[i]
		var e Entry
		e.Def = d
		if v, ok := cfg[d.Name]; ok {
			e.Value, e.Source = v, SourceTopic
			e.Synonyms = append(e.Synonyms, Synonym{Name: d.Name, Value: v, Source: SourceTopic})
		} else {
			e.Value, e.Source = d.DefaultFor(nd)
		}
		if d.node != nil {
			e.Synonyms = append(e.Synonyms, Synonym{Name: d.BrokerConfig, Value: strconv.FormatInt(d.node(nd), 10), Source: SourceNode})
		}
		if d.BrokerConfig != "" {
			e.Synonyms = append(e.Synonyms, Synonym{Name: d.BrokerConfig, Value: d.Default, Source: SourceDefault})
		}
		out = append(out, e)
	}
	return out
}

// values reads a topic's effective configs, validated beforehand: a value
// that does not parse (which validation prevents) reads as the default.
type values struct {
	cfg map[string]string
	nd  Defaults
}

func (v values) get(name string) string {
	d, ok := Lookup(name)
	if !ok {
		panic("topicconfig: no config " + name)
	}
	if s, ok := v.cfg[name]; ok {
		return strings.TrimSpace(s)
	}
	s, _ := d.DefaultFor(v.nd)
	return s
}

func (v values) long(name string) int64 {
	n, err := strconv.ParseInt(v.get(name), 10, 64)
	if err != nil {
		d, _ := Lookup(name)
		s, _ := d.DefaultFor(v.nd)
		n, _ = strconv.ParseInt(s, 10, 64)
	}
	return n
}

func (v values) double(name string) float64 {
	f, err := parseDouble(v.get(name))
	if err != nil {
		d, _ := Lookup(name)
		f, _ = strconv.ParseFloat(d.Default, 64)
	}
	return f
}

// timestampBounds returns the bounds on CreateTime record timestamps, nil
// when there are none (Kafka's defaults). The deprecated difference bound
// applies to both sides when it is the smaller.
func timestampBounds(v values) *replica.TimestampBounds {
	diff := v.long("message.timestamp.difference.max.ms")
	tb := &replica.TimestampBounds{
		BeforeMs: min(v.long("message.timestamp.before.max.ms"), diff),
		AfterMs:  min(v.long("message.timestamp.after.max.ms"), diff),
	}
	if tb.BeforeMs == math.MaxInt64 && tb.AfterMs == math.MaxInt64 {
		return nil
	}
	return tb
}

// millis converts milliseconds to a duration, saturating: Kafka's
// "forever" is Long.MAX_VALUE ms, far beyond the largest duration.
func millis(ms int64) time.Duration {
	const limit = math.MaxInt64 / int64(time.Millisecond)
	switch {
	case ms > limit:
		// The largest duration, storage.DefaultMaxCompactionLag: never.
		return time.Duration(math.MaxInt64)
	case ms < -limit:
		return time.Duration(math.MinInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

// Policy returns whether a topic's cleanup.policy compacts and deletes.
func Policy(cfg map[string]string) (compact, del bool) {
	for _, p := range splitList(values{cfg: cfg}.get(CleanupPolicy)) {
		switch p {
		case PolicyCompact:
			compact = true
		case PolicyDelete:
			del = true
		}
	}
	return compact, del
}

// Resolve turns a topic's configs into a replica's settings. Configs
// Chronik does not act on are not part of them.
func Resolve(cfg map[string]string, nd Defaults) replica.Config {
	v := values{cfg, nd}
	compact, del := Policy(cfg)
	lc := storage.LogConfig{
		SegmentBytes:           v.long(SegmentBytes),
		SegmentMs:              millis(v.long(SegmentMs)),
		RetentionMs:            millis(v.long(RetentionMs)),
		RetentionBytes:         v.long(RetentionBytes),
		Compact:                compact,
		DeleteRetention:        millis(v.long(DeleteRetentionMs)),
		MinCleanableDirtyRatio: v.double(MinCleanableDirtyRatio),
		MinCompactionLag:       millis(v.long(MinCompactionLagMs)),
		MaxCompactionLag:       millis(v.long(MaxCompactionLagMs)),
	}
	if lc.RetentionMs < 0 {
		lc.RetentionMs = -1
	}
	if !del {
		// Without the delete policy Kafka deletes nothing by time or
		// size; the configured values stay, and show in DescribeConfigs.
		lc.RetentionMs, lc.RetentionBytes = -1, -1
	}
	return replica.Config{
		MinInsyncReplicas: int(v.long(MinInsyncReplicas)),
		MaxMessageBytes:   int(v.long(MaxMessageBytes)),
		Compression:       strings.ToLower(v.get(CompressionType)),
		LogAppendTime:     v.get(MessageTimestampType) == "LogAppendTime",
		Timestamps:        timestampBounds(v),
		Log:               lc,
	}
}
