package topicconfig

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefsAreSortedForLookup(t *testing.T) {
	if !slices.IsSortedFunc(Defs, func(a, b Def) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("Defs must be sorted by name")
	}
	for _, d := range Defs {
		if _, ok := Lookup(d.Name); !ok {
			t.Fatalf("lookup of %s failed", d.Name)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name, value string
		ok          bool
	}{
		{RetentionMs, "-1", true},
		{RetentionMs, "abc", false},
		{RetentionMs, "-2", false},
		{SegmentBytes, "100", false},
		{SegmentBytes, "1048576", true},
		{CleanupPolicy, "compact", false},
		{CleanupPolicy, "delete", true},
		{MinInsyncReplicas, "0", false},
		{"no.such.config", "1", false},
		{MessageTimestampType, "LogAppendTime", false},
	}
	for _, c := range cases {
		err := Validate(c.name, c.value)
		if (err == nil) != c.ok {
			t.Errorf("Validate(%s, %s) = %v, want ok=%v", c.name, c.value, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), c.name) {
			t.Errorf("error %q does not name %s", err, c.name)
		}
	}
}

func TestResolveAndDescribe(t *testing.T) {
	d := Defaults{RetentionMs: 1000, RetentionBytes: -1, SegmentBytes: 1 << 20, SegmentMs: 5000, MaxMessageBytes: 100, MinInsyncReplicas: 1}
	rc := Resolve(map[string]string{RetentionMs: "-1", MinInsyncReplicas: "2"}, d)
	if rc.Log.RetentionMs >= 0 || rc.MinInsyncReplicas != 2 || rc.Log.SegmentBytes != 1<<20 || rc.Log.SegmentMs != 5*time.Second || rc.MaxMessageBytes != 100 {
		t.Fatalf("resolved %+v", rc)
	}
	for _, e := range Describe(map[string]string{MinInsyncReplicas: "2"}, d) {
		if e.Def.Name == MinInsyncReplicas && (e.IsDefault || e.Value != "2") {
			t.Fatalf("describe %+v", e)
		}
		if e.Def.Name == RetentionMs && (!e.IsDefault || e.Value != "1000") {
			t.Fatalf("describe %+v", e)
		}
	}
}
