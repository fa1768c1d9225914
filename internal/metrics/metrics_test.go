package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// everything is a state source that reports one of each kind of series.
type everything struct{}

func (everything) PartitionStats() []PartitionStat {
	return []PartitionStat{{Topic: "t", Partition: 0, IsLeader: true, ISR: 3, Replicas: 3,
		Followers: []FollowerStat{{ID: 2, LagEntries: 1, LagMs: 5}}}}
}

func (everything) GroupStats() []GroupStat {
	return []GroupStat{{Group: "g", State: "Stable", Members: 1, Lag: 7}}
}

func (everything) ClusterStats() ClusterStat       { return ClusterStat{MetadataLeader: 1, Peers: 2} }
func (everything) SnapshotStats() (uint64, uint64) { return 0, 0 }

// fixedBudget is a budget source with fixed figures.
type fixedBudget struct {
	reserved, limit int64
	waits           uint64
}

func (b fixedBudget) Reserved() int64 { return b.reserved }
func (b fixedBudget) Limit() int64    { return b.limit }
func (b fixedBudget) Waits() uint64   { return b.waits }

// exported returns the chronik_* metric families the registry exposes
// once every event has happened once.
func exported(t *testing.T) []string {
	t.Helper()
	m := New()
	m.RegisterState(everything{})
	m.RegisterBudgets(fixedBudget{1, 2, 3}, fixedBudget{4, 5, 6}, fixedBudget{7, 8, 9})
	m.RegisterCleaner(func() CleanerStats { return CleanerStats{Passes: 1, BytesRead: 10, Seconds: 0.5} })
	m.RequestDone(0, 9, 100, 50, time.Millisecond)
	m.ConnectionOpened()
	m.Fsync(time.Millisecond)
	m.Elected(1, time.Second)
	m.Committed(time.Millisecond)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "chronik_") {
			names = append(names, mf.GetName())
		}
	}
	return names
}

var metricName = regexp.MustCompile(`chronik_[a-z_]+[a-z]`)

// mentioned returns the chronik_* names in text, histogram series
// (_bucket, _sum, _count) reduced to their family.
func mentioned(text string) []string {
	var out []string
	for _, n := range metricName.FindAllString(text, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(n, "_ms"+suffix) {
				n = strings.TrimSuffix(n, suffix)
			}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// TestDocsNameEveryMetric keeps docs/monitoring.md and the Grafana
// dashboard in line with the metrics: the docs describe every metric, and
// neither names one that does not exist.
func TestDocsNameEveryMetric(t *testing.T) {
	names := exported(t)
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	inDocs := mentioned(string(docs))
	for _, n := range names {
		if !slices.Contains(inDocs, n) {
			t.Errorf("docs/monitoring.md does not describe %s", n)
		}
	}
	for _, n := range inDocs {
		if !slices.Contains(names, n) {
			t.Errorf("docs/monitoring.md names %s, which is not exported", n)
		}
	}

	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana", "chronik-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			for _, n := range mentioned(tg.Expr) {
				if !slices.Contains(names, n) {
					t.Errorf("dashboard panel %q uses %s, which is not exported", p.Title, n)
				}
			}
		}
	}
	if exprs < 20 {
		t.Errorf("dashboard has only %d queries", exprs)
	}
}

// TestBudgetMetrics: each budget's figures under its label.
func TestBudgetMetrics(t *testing.T) {
	m := New()
	m.RegisterBudgets(fixedBudget{10, 100, 3}, fixedBudget{20, 200, 4}, fixedBudget{30, 300, 5})
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "chronik_kafka_memory_") {
			continue
		}
		for _, mt := range mf.GetMetric() {
			v := mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
			got[mf.GetName()+"/"+mt.GetLabel()[0].GetValue()] = v
		}
	}
	want := map[string]float64{
		"chronik_kafka_memory_reserved_bytes/requests": 10, "chronik_kafka_memory_limit_bytes/requests": 100, "chronik_kafka_memory_waits_total/requests": 3,
		"chronik_kafka_memory_reserved_bytes/fetch": 20, "chronik_kafka_memory_limit_bytes/fetch": 200, "chronik_kafka_memory_waits_total/fetch": 4,
		"chronik_kafka_memory_reserved_bytes/decompress": 30, "chronik_kafka_memory_limit_bytes/decompress": 300, "chronik_kafka_memory_waits_total/decompress": 5,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
