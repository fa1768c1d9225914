package topicconfig

import (
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
)

func TestDefsAreSortedForLookup(t *testing.T) {
	if !slices.IsSortedFunc(Defs, func(a, b Def) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("Defs must be sorted by name")
	}
	for _, d := range Defs {
		if got, ok := Lookup(d.Name); !ok || got.Name != d.Name {
			t.Fatalf("lookup of %s failed", d.Name)
		}
		if d.Doc == "" {
			t.Errorf("%s has no documentation", d.Name)
		}
		if (d.node == nil) != (d.NodeKey == "") {
			t.Errorf("%s: a node-wide default needs both NodeKey and node", d.Name)
		}
		if d.NoEffect != "" && d.limit != nil {
			t.Errorf("%s both has no effect and limits its values", d.Name)
		}
	}
	if _, ok := Lookup("no.such.config"); ok {
		t.Fatal("lookup of an unknown name succeeded")
	}
}

// TestKafkaTopicConfigs pins the list to Kafka 3.9's topic configs
// (LogConfig), which 4.x keeps but for the three it dropped, still
// accepted here for clients of 3.x.
func TestKafkaTopicConfigs(t *testing.T) {
	kafka := []string{
		"cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type", "compression.zstd.level",
		"delete.retention.ms", "file.delete.delay.ms", "flush.messages", "flush.ms",
		"follower.replication.throttled.replicas", "index.interval.bytes", "leader.replication.throttled.replicas",
		"local.retention.bytes", "local.retention.ms", "max.compaction.lag.ms", "max.message.bytes",
		"message.downconversion.enable", "message.format.version", "message.timestamp.after.max.ms",
		"message.timestamp.before.max.ms", "message.timestamp.difference.max.ms", "message.timestamp.type",
		"min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate",
		"remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable",
		"retention.bytes", "retention.ms", "segment.bytes", "segment.index.bytes", "segment.jitter.ms",
		"segment.ms", "unclean.leader.election.enable",
	}
	var names []string
	for _, d := range Defs {
		names = append(names, d.Name)
	}
	if !slices.Equal(names, kafka) {
		t.Fatalf("configs %v\nwant Kafka's %v", names, kafka)
	}
}

// validateCase is one value of one config. problem, when set, is a piece
// of the error the value must get; empty means the value is accepted.
type validateCase struct {
	value, problem string
}

// casesByConfig lists, for every config, values on both sides of Kafka's
// rules. Every config's default is checked separately.
var casesByConfig = map[string][]validateCase{
	"cleanup.policy": {
		{"delete", ""}, {"compact", ""}, {"compact,delete", ""}, {"delete,compact", ""}, {" compact , delete ", ""},
		{"", ""}, // Kafka 4.x: neither deletion nor compaction
		{"Compact", `list element "Compact" must be one of compact, delete`},
		{"compact,", `list element ""`}, {"compact;delete", "must be one of compact, delete"}, {"none", "must be one of"},
	},
	"compression.gzip.level": {{"-1", ""}, {"1", ""}, {"9", ""}, {"0", "between 1 and 9, or -1"}, {"10", "between 1 and 9"}, {"x", "integer"}},
	"compression.lz4.level":  {{"1", ""}, {"17", ""}, {"0", "between 1 and 17"}, {"18", "between 1 and 17"}},
	"compression.type": {
		{"producer", ""}, {"gzip", ""}, {"zstd", ""}, {"uncompressed", ""}, {"snappy", ""}, {"lz4", ""},
		{"brotli", "must be one of uncompressed, zstd, lz4, snappy, gzip, producer"}, {"Producer", "must be one of"},
	},
	"compression.zstd.level": {{"-131072", ""}, {"22", ""}, {"-131073", "between -131072 and 22"}, {"23", "between -131072 and 22"}},
	"delete.retention.ms":    {{"0", ""}, {"9223372036854775807", ""}, {"-1", "at least 0"}, {"9223372036854775808", "integer between"}, {"1.5", "integer"}},
	"file.delete.delay.ms":   {{"0", ""}, {"-1", "at least 0"}},
	"flush.messages":         {{"1", ""}, {"0", "at least 1"}},
	"flush.ms":               {{"0", ""}, {"-1", "at least 0"}},
	"follower.replication.throttled.replicas": {
		{"", ""}, {"*", ""}, {"0:1", ""}, {"0:1,1:2", ""}, {"0:1, 1:2", ""},
		{"0", `must be * or a list of replicas`}, {"0:1,*", "must be *"}, {"a:b", "must be *"},
	},
	"index.interval.bytes":                  {{"0", ""}, {"-1", "at least 0"}, {"2147483648", "integer between -2147483648 and 2147483647"}},
	"leader.replication.throttled.replicas": {{"*", ""}, {"3:4", ""}, {"3-4", "must be *"}},
	"local.retention.bytes":                 {{"-2", ""}, {"-1", ""}, {"100", ""}, {"-3", "at least -2"}},
	"local.retention.ms":                    {{"-2", ""}, {"1000", ""}, {"-3", "at least -2"}},
	"max.compaction.lag.ms":                 {{"1", ""}, {"0", "at least 1"}},
	"max.message.bytes":                     {{"0", ""}, {"2147483647", ""}, {"-1", "at least 0"}, {"2147483648", "integer between"}},
	"message.downconversion.enable":         {{"false", ""}, {"TRUE", ""}, {"yes", "must be true or false"}, {"1", "must be true or false"}},
	"message.format.version": {
		{"0.8.0", ""}, {"0.10.0-IV1", ""}, {"0.10.2", ""}, {"0.10.2.1", ""}, {"2.8", ""}, {"2.8.1", ""}, {"3.0-IV1", ""}, {"3.9-IV0", ""}, {"3.7-IV4", ""},
		{"0.8.0-IV0", "must be a Kafka version"}, {"3.9-IV1", "must be a Kafka version"}, {"4.0", "must be a Kafka version"},
		{"2.9", "must be a Kafka version"}, {"abc", "must be a Kafka version"}, {"", "must be a Kafka version"},
	},
	"message.timestamp.after.max.ms":      {{"3600000", ""}, {"-1", "at least 0"}},
	"message.timestamp.before.max.ms":     {{"0", ""}, {"-1", "at least 0"}},
	"message.timestamp.difference.max.ms": {{"0", ""}, {"-5", "at least 0"}},
	"message.timestamp.type": {
		{"CreateTime", ""}, {"LogAppendTime", ""},
		{"createtime", "must be one of CreateTime, LogAppendTime"},
	},
	"min.cleanable.dirty.ratio": {
		{"0", ""}, {"1", ""}, {"0.25", ""}, {".5", ""}, {"1e-1", ""},
		{"1.5", "between 0 and 1"}, {"-0.1", "between 0 and 1"}, {"NaN", "decimal number"}, {"Infinity", "decimal number"}, {"half", "decimal number"},
	},
	"min.compaction.lag.ms":        {{"0", ""}, {"-1", "at least 0"}},
	"min.insync.replicas":          {{"1", ""}, {"3", ""}, {"0", "at least 1"}},
	"preallocate":                  {{"true", ""}, {"False", ""}, {"no", "must be true or false"}},
	"remote.log.copy.disable":      {{"true", ""}, {"maybe", "true or false"}},
	"remote.log.delete.on.disable": {{"true", ""}, {"", "true or false"}},
	"remote.storage.enable": {
		{"false", ""}, {"FALSE", ""}, {"true", "accepts only false: Chronik keeps every log on local disk"}, {"on", "true or false"},
	},
	"retention.bytes":     {{"-1", ""}, {"-5", ""}, {"0", ""}, {"1073741824", ""}, {"1GB", "integer"}},
	"retention.ms":        {{"-1", ""}, {"0", ""}, {"3600000", ""}, {"-2", "at least -1"}, {"abc", "integer"}},
	"segment.bytes":       {{"1024", ""}, {"2147483647", ""}, {"1023", "between 1024 and 2147483647"}, {"2147483648", "integer between"}},
	"segment.index.bytes": {{"4", ""}, {"3", "at least 4"}},
	"segment.jitter.ms": {
		{"0", ""}, {"1000", "accepts only 0: segments roll exactly segment.ms after their first append"}, {"-1", "at least 0"},
	},
	"segment.ms": {{"1", ""}, {"0", "at least 1"}},
	"unclean.leader.election.enable": {
		{"false", ""}, {"true", "accepts only false: leaders are elected by raft"}, {"True", "accepts only false"},
	},
}

func TestValidateEveryConfig(t *testing.T) {
	for _, d := range Defs {
		if err := Validate(d.Name, d.Default); err != nil {
			t.Errorf("Kafka's default %s=%q refused: %v", d.Name, d.Default, err)
		}
		if d.node != nil {
			nd := Defaults{RetentionMs: 1, RetentionBytes: 1, SegmentBytes: 1 << 20, SegmentMs: 1, MaxMessageBytes: 1, MinInsyncReplicas: 1}
			if v, _ := d.DefaultFor(nd); Validate(d.Name, v) != nil {
				t.Errorf("node default %s=%q refused", d.Name, v)
			}
		}
		cases, ok := casesByConfig[d.Name]
		if !ok {
			t.Errorf("no validation cases for %s", d.Name)
			continue
		}
		var refused bool
		for _, c := range cases {
			err := Validate(d.Name, c.value)
			switch {
			case c.problem == "" && err != nil:
				t.Errorf("%s=%q refused: %v", d.Name, c.value, err)
			case c.problem != "" && err == nil:
				t.Errorf("%s=%q accepted, want an error with %q", d.Name, c.value, c.problem)
			case err != nil:
				refused = true
				if !strings.Contains(err.Error(), d.Name) || !strings.Contains(err.Error(), c.problem) {
					t.Errorf("%s=%q: error %q, want the config's name and %q", d.Name, c.value, err, c.problem)
				}
			}
		}
		if !refused {
			t.Errorf("no refused value among the cases of %s", d.Name)
		}
	}
	for name := range casesByConfig {
		if _, ok := Lookup(name); !ok {
			t.Errorf("cases for unknown config %s", name)
		}
	}
	if err := Validate("no.such.config", "1"); err == nil || !strings.Contains(err.Error(), `unknown topic config "no.such.config"`) {
		t.Errorf("unknown config: %v", err)
	}
}

func TestValidateAllChecksCompactionLags(t *testing.T) {
	nd := Defaults{SegmentBytes: 1 << 20, SegmentMs: 1, MaxMessageBytes: 1, MinInsyncReplicas: 1}
	if err := ValidateAll(map[string]string{MinCompactionLagMs: "10", MaxCompactionLagMs: "10"}, nd); err != nil {
		t.Fatal(err)
	}
	err := ValidateAll(map[string]string{MinCompactionLagMs: "10", MaxCompactionLagMs: "9"}, nd)
	if err == nil || !strings.Contains(err.Error(), "min.compaction.lag.ms (10) must not be greater than max.compaction.lag.ms (9)") {
		t.Fatalf("min lag above max lag: %v", err)
	}
	// The first invalid config in name order is reported.
	err = ValidateAll(map[string]string{SegmentMs: "0", CleanupPolicy: "x", RetentionMs: "y"}, nd)
	if err == nil || !strings.Contains(err.Error(), CleanupPolicy) {
		t.Fatalf("error %v, want the one of cleanup.policy", err)
	}
}

func TestAppendSubtract(t *testing.T) {
	cases := []struct {
		op, current, arg, want string
	}{
		{"append", "delete", "compact", "delete,compact"},
		{"append", "delete", "delete", "delete"},
		{"append", "", "compact", "compact"},
		{"append", "compact", "delete, compact", "compact,delete"},
		{"subtract", "delete,compact", "delete", "compact"},
		{"subtract", "compact", "compact", ""},
		{"subtract", "compact", "delete", "compact"},
	}
	for _, c := range cases {
		f := Append
		if c.op == "subtract" {
			f = Subtract
		}
		got, err := f(CleanupPolicy, c.current, c.arg)
		if err != nil || got != c.want {
			t.Errorf("%s %q to %q = %q, %v; want %q", c.op, c.arg, c.current, got, err, c.want)
		}
	}
	if _, err := Append(RetentionMs, "1", "2"); err == nil || !strings.Contains(err.Error(), "retention.ms is of type long") {
		t.Errorf("append to a long: %v", err)
	}
	if _, err := Subtract("no.such.config", "", ""); err == nil {
		t.Error("subtract from an unknown config succeeded")
	}
}

var testDefaults = Defaults{RetentionMs: 1000, RetentionBytes: 5000, SegmentBytes: 1 << 20, SegmentMs: 5000, MaxMessageBytes: 100, MinInsyncReplicas: 1}

func TestResolve(t *testing.T) {
	rc := Resolve(nil, testDefaults)
	want := storage.LogConfig{
		SegmentBytes: 1 << 20, SegmentMs: 5 * time.Second, RetentionMs: time.Second, RetentionBytes: 5000,
		DeleteRetention: 24 * time.Hour, MinCleanableDirtyRatio: 0.5, MaxCompactionLag: storage.DefaultMaxCompactionLag,
	}
	if rc.Log != want || rc.MinInsyncReplicas != 1 || rc.MaxMessageBytes != 100 {
		t.Fatalf("defaults resolved to %+v, want log %+v", rc, want)
	}
	if err := rc.Log.Validate(); err != nil {
		t.Fatalf("resolved defaults are invalid for storage: %v", err)
	}

	rc = Resolve(map[string]string{RetentionMs: "-1", MinInsyncReplicas: "2", MaxMessageBytes: "300"}, testDefaults)
	if rc.Log.RetentionMs >= 0 || rc.MinInsyncReplicas != 2 || rc.MaxMessageBytes != 300 {
		t.Fatalf("resolved %+v", rc)
	}

	// Compaction settings, with spaces as Kafka allows.
	rc = Resolve(map[string]string{CleanupPolicy: "compact, delete", DeleteRetentionMs: " 60000", MinCleanableDirtyRatio: "0.1",
		MinCompactionLagMs: "2000", MaxCompactionLagMs: "3600000", RetentionMs: "7000"}, testDefaults)
	if !rc.Log.Compact || rc.Log.DeleteRetention != time.Minute || rc.Log.MinCleanableDirtyRatio != 0.1 ||
		rc.Log.MinCompactionLag != 2*time.Second || rc.Log.MaxCompactionLag != time.Hour ||
		rc.Log.RetentionMs != 7*time.Second || rc.Log.RetentionBytes != 5000 {
		t.Fatalf("compact,delete resolved to %+v", rc.Log)
	}

	// Compaction alone deletes nothing by time or size, whatever they say.
	for _, policy := range []string{"compact", ""} {
		cfg := map[string]string{CleanupPolicy: policy, RetentionMs: "7000", RetentionBytes: "100"}
		rc = Resolve(cfg, testDefaults)
		if rc.Log.Compact != (policy == "compact") || rc.Log.RetentionMs != -1 || rc.Log.RetentionBytes != -1 {
			t.Errorf("policy %q resolved to %+v, want retention off", policy, rc.Log)
		}
		for _, e := range Describe(cfg, testDefaults) {
			if e.Def.Name == RetentionMs && e.Value != "7000" {
				t.Errorf("policy %q: retention.ms described as %q, want the configured 7000", policy, e.Value)
			}
		}
	}
	if compact, del := Policy(nil); compact || !del {
		t.Errorf("default policy: compact %v delete %v", compact, del)
	}
}

func TestResolveDurationsDoNotOverflow(t *testing.T) {
	limit := int64(math.MaxInt64 / int64(time.Millisecond))
	cases := []struct {
		ms   string
		want time.Duration
	}{
		{"9223372036854775807", storage.DefaultMaxCompactionLag},
		{strconv.FormatInt(limit+1, 10), storage.DefaultMaxCompactionLag},
		{strconv.FormatInt(limit, 10), time.Duration(limit) * time.Millisecond},
		{"1", time.Millisecond},
	}
	for _, c := range cases {
		rc := Resolve(map[string]string{CleanupPolicy: "compact", MaxCompactionLagMs: c.ms, SegmentMs: c.ms,
			DeleteRetentionMs: c.ms, RetentionMs: c.ms}, testDefaults)
		if rc.Log.MaxCompactionLag != c.want || rc.Log.SegmentMs != c.want || rc.Log.DeleteRetention != c.want {
			t.Errorf("%s ms resolved to max lag %v, segment %v, delete retention %v; want %v", c.ms, rc.Log.MaxCompactionLag, rc.Log.SegmentMs, rc.Log.DeleteRetention, c.want)
		}
		if err := rc.Log.Validate(); err != nil {
			t.Errorf("%s ms: storage refuses the resolved config: %v", c.ms, err)
		}
	}
	rc := Resolve(map[string]string{RetentionMs: "9223372036854775807"}, testDefaults)
	if rc.Log.RetentionMs != time.Duration(math.MaxInt64) {
		t.Errorf("retention.ms of Long.MAX_VALUE resolved to %v", rc.Log.RetentionMs)
	}
}

func TestDescribe(t *testing.T) {
	entries := Describe(map[string]string{MinInsyncReplicas: "2", DeleteRetentionMs: "5"}, testDefaults)
	if len(entries) != len(Defs) {
		t.Fatalf("%d entries, want %d", len(entries), len(Defs))
	}
	byName := map[string]Entry{}
	for _, e := range entries {
		byName[e.Def.Name] = e
	}
	check := func(name, value string, src Source, synonyms ...Synonym) {
		t.Helper()
		e := byName[name]
		if e.Value != value || e.Source != src || !slices.Equal(e.Synonyms, synonyms) {
			t.Errorf("%s: %q from %d with synonyms %+v; want %q from %d with %+v", name, e.Value, e.Source, e.Synonyms, value, src, synonyms)
		}
	}
	check(MinInsyncReplicas, "2", SourceTopic,
		Synonym{MinInsyncReplicas, "2", SourceTopic}, Synonym{"min.insync.replicas", "1", SourceNode}, Synonym{"min.insync.replicas", "1", SourceDefault})
	check(RetentionMs, "1000", SourceNode,
		Synonym{"log.retention.ms", "1000", SourceNode}, Synonym{"log.retention.ms", "604800000", SourceDefault})
	check(DeleteRetentionMs, "5", SourceTopic,
		Synonym{DeleteRetentionMs, "5", SourceTopic}, Synonym{"log.cleaner.delete.retention.ms", "86400000", SourceDefault})
	check(CleanupPolicy, "delete", SourceDefault, Synonym{"log.cleanup.policy", "delete", SourceDefault})
	check(RemoteStorageEnable, "false", SourceDefault)
	if d := byName["preallocate"].Def.Documentation(); !strings.Contains(d, "Chronik accepts it without effect: segments are not preallocated") {
		t.Errorf("preallocate documentation %q", d)
	}
	if d := byName["compression.zstd.level"].Def.Documentation(); !strings.Contains(d, "Chronik accepts it without effect: the leader recompresses at the codec's default level") {
		t.Errorf("compression.type documentation %q", d)
	}
}

// TestDocs keeps the topic config table of docs/configuration.md in step
// with Defs: one row per config, with its type and default.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "\n## Topic configs")
	if start < 0 {
		t.Fatal("docs/configuration.md has no Topic configs section")
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(section, "\n") {
		if m := regexp.MustCompile("^\\| `([a-z0-9.]+)` \\|").FindStringSubmatch(line); m != nil {
			rows[m[1]] = strings.Split(line, "|")
		}
	}
	for _, d := range Defs {
		cells, ok := rows[d.Name]
		if !ok {
			t.Errorf("docs/configuration.md has no topic config row for %s", d.Name)
			continue
		}
		if len(cells) < 7 {
			t.Errorf("row of %s is short", d.Name)
			continue
		}
		if typ := strings.TrimSpace(cells[2]); typ != d.Type.String() {
			t.Errorf("%s: doc type %s, want %s", d.Name, typ, d.Type)
		}
		wantDef := "`" + d.Default + "`"
		if d.Default == "" {
			wantDef = `""`
		}
		if d.NodeKey != "" {
			wantDef = "`" + d.NodeKey + "`"
		}
		if def := strings.TrimSpace(cells[3]); !strings.HasPrefix(def, wantDef) {
			t.Errorf("%s: doc default %s, want it to start with %s", d.Name, def, wantDef)
		}
		if d.NoEffect != "" && !strings.Contains(subsection(section, "Accepted without effect"), "`"+d.Name+"`") {
			t.Errorf("%s has no effect but is missing from the accepted-without-effect list", d.Name)
		}
		if v, _ := d.Supported(); v != "" && !strings.Contains(subsection(section, "Refused values"), "`"+d.Name) {
			t.Errorf("%s refuses some values but is missing from the refused values", d.Name)
		}
	}
	if len(rows) != len(Defs) {
		t.Errorf("%d topic config rows, want %d", len(rows), len(Defs))
	}
}

// subsection returns the ### subsection of a doc section with the title.
func subsection(section, title string) string {
	start := strings.Index(section, "\n### "+title+"\n")
	if start < 0 {
		return ""
	}
	sub := section[start+1:]
	if end := strings.Index(sub[4:], "\n### "); end >= 0 {
		sub = sub[:end+4]
	}
	return sub
}

// TestResolveTimestamps: message.timestamp.type and the bounds on record
// timestamps reach the replica; the deprecated difference bound applies to
// a side when it is the smaller.
func TestResolveTimestamps(t *testing.T) {
	if rc := Resolve(nil, testDefaults); rc.LogAppendTime || rc.Timestamps != nil || rc.Compression != "producer" {
		t.Fatalf("defaults: append time %v, bounds %+v, compression %q", rc.LogAppendTime, rc.Timestamps, rc.Compression)
	}
	if rc := Resolve(map[string]string{MessageTimestampType: "LogAppendTime"}, testDefaults); !rc.LogAppendTime {
		t.Fatal("message.timestamp.type=LogAppendTime not resolved")
	}
	for _, c := range []struct {
		cfg           map[string]string
		before, after int64
	}{
		{map[string]string{"message.timestamp.before.max.ms": "1000"}, 1000, math.MaxInt64},
		{map[string]string{"message.timestamp.after.max.ms": "0"}, math.MaxInt64, 0},
		{map[string]string{"message.timestamp.difference.max.ms": "500", "message.timestamp.before.max.ms": "100"}, 100, 500},
	} {
		rc := Resolve(c.cfg, testDefaults)
		if rc.Timestamps == nil || rc.Timestamps.BeforeMs != c.before || rc.Timestamps.AfterMs != c.after {
			t.Errorf("%v resolved to %+v, want before %d after %d", c.cfg, rc.Timestamps, c.before, c.after)
		}
	}
	if rc := Resolve(map[string]string{CompressionType: "zstd"}, testDefaults); rc.Compression != "zstd" {
		t.Errorf("compression.type=zstd resolved to %q", rc.Compression)
	}
}
