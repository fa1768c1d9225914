package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronik-stream/chronik/internal/bench"
)

func point(system, acks string, size int, maxRate, halfP99 float64) Point {
	return Point{System: system, Acks: acks, Size: size,
		Max:    bench.Result{MsgsPerSec: maxRate, MBPerSec: maxRate * float64(size) / 1e6, LatencyP99: 20, Samples: 10},
		Half:   bench.Result{MsgsPerSec: maxRate / 2, LatencyP99: halfP99, Samples: 10},
		Common: bench.Result{MsgsPerSec: 5000, LatencyP99: halfP99 + 1, Samples: 10}}
}

func sampleReport() Report {
	return Report{
		Machine: Machine{CPU: "Test CPU", Cores: 2, MemoryGiB: 8, Kernel: "6.1", Go: "go1.26", Date: "2026-01-01 00:00 UTC"},
		Command: "make benchmarks",
		Points: []Point{
			point("kfake", "all", 100, 100000, 1),
			point("standalone", "all", 100, 70000, 4.5),
			point("cluster", "all", 100, 30000, 12),
		},
	}
}

func TestTargets(t *testing.T) {
	got := map[string]Target{}
	for _, tg := range sampleReport().Targets() {
		got[tg.Goal] = tg
	}
	for goal, want := range map[string]string{
		"standalone ≥ 0.6 × kfake, acks=all, 100 B":             "met",     // 0.70
		"cluster ≥ 0.5 × standalone, acks=all, 100 B":           "not met", // 0.43
		"cluster ≥ 0.8 × standalone, acks=all, 100 B (stretch)": "not met", // 0.43
		"standalone p99 < 5 ms at 50% load, acks=all, 100 B":    "met",     // 4.5
		"cluster p99 < 10 ms at 50% load, acks=all, 100 B":      "not met", // 12
	} {
		tg, ok := got[goal]
		if !ok {
			t.Errorf("no target %q; have %v", goal, got)
			continue
		}
		if tg.Status != want {
			t.Errorf("%s: %s (%s), want %s", goal, tg.Status, tg.Measured, want)
		}
	}
	if m := got["standalone ≥ 0.6 × kfake, acks=all, 100 B"].Measured; m != "0.70 (70000 / 100000 msgs/s)" {
		t.Errorf("measured = %q", m)
	}
}

// A system that was not run is "not measured", never "met".
func TestTargetsNotMeasured(t *testing.T) {
	r := sampleReport()
	r.Points = r.Points[1:2] // standalone only
	for _, tg := range r.Targets() {
		if strings.Contains(tg.Goal, "kfake") || strings.HasPrefix(tg.Goal, "cluster") {
			if tg.Status != "not measured" || tg.Measured != "-" {
				t.Errorf("%s: %s %q", tg.Goal, tg.Status, tg.Measured)
			}
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	r := sampleReport()
	r.Smoke = true
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b, "benchmarks.png"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"**Smoke run.**",
		"| CPU | Test CPU |",
		"```sh\nmake benchmarks\n```",
		"| standalone | all | 100 B | 70000 | 7.0 | 0% | 0.00 | 0.00 | 20.00 | 0.00 | 0.00 | 35000 | 0% | 0.00 | 0.00 | 4.50 | 0.00 | 0.00 | - | 0 |",
		"| all | 100 B | 0.70 | 0.43 |",
		"| cluster ≥ 0.5 × standalone, acks=all, 100 B | 0.43 (30000 / 70000 msgs/s) | not met |",
		"![throughput and latency](benchmarks.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Every table row has as many cells as its header.
	header := "| system | acks | size |"
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| standalone | all") && strings.Count(line, "|") != 21 {
			t.Errorf("row has %d cells: %s", strings.Count(line, "|")-1, line)
		}
	}
	if !strings.Contains(md, header) {
		t.Errorf("no results header")
	}
}

func TestSizeLabel(t *testing.T) {
	for size, want := range map[int]string{100: "100 B", 1024: "1 KiB", 1000: "1000 B", 4096: "4 KiB"} {
		if got := sizeLabel(size); got != want {
			t.Errorf("sizeLabel(%d) = %q, want %q", size, got, want)
		}
	}
}

func TestWriteChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.png")
	if err := sampleReport().WriteChart(path); err != nil {
		t.Fatal(err)
	}
	if err := (Report{}).WriteChart(path); err == nil {
		t.Fatal("a chart without points was drawn")
	}
}

func TestCPUBusy(t *testing.T) {
	a, err := parseCPUTimes("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n")
	if err != nil {
		t.Fatal(err)
	}
	// 300 more ticks, 60 of them idle or waiting for I/O: 80% busy.
	b, err := parseCPUTimes("cpu  280 0 110 850 60 0 0 0 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := busyPercent(a, b); got != 80 {
		t.Fatalf("busy %.1f%%, want 80%%", got)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5"} {
		if _, err := parseCPUTimes(bad); err == nil {
			t.Errorf("parseCPUTimes(%q) accepted", bad)
		}
	}
	if _, err := readCPUTimes(); err != nil {
		t.Fatalf("this machine's /proc/stat: %v", err)
	}
}

func kafkaReport() Report {
	r := sampleReport()
	r.KafkaVersion = "4.1.1"
	r.Machine.Java = `openjdk version "17.0.15" 2025-04-15`
	r.Points = append(r.Points,
		point("kafka", "all", 100, 140000, 3),
		point("kafka-flush", "all", 100, 35000, 9),
		point("kafka-cluster", "all", 100, 60000, 6),
		// No 50% run: its p99 ratio is not measured, not 0 or infinite.
		Point{System: "kafka-cluster-flush", Acks: "all", Size: 100, Max: bench.Result{MsgsPerSec: 15000, Samples: 10}},
	)
	return r
}

func TestKafkaRatios(t *testing.T) {
	var b bytes.Buffer
	if err := kafkaReport().WriteMarkdown(&b, "benchmarks.png"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| Java | openjdk version \"17.0.15\" 2025-04-15 |",
		"* **kafka**: Apache Kafka 4.1.1 from Maven Central's jars",
		"* **kafka-cluster-flush**:",
		"## Chronik against Kafka",
		"one rate for both systems (5000 msgs/s)",
		// standalone 70000 msgs/s, p99 4.5 ms (5.5 at 5000 msgs/s); kafka
		// 140000, 3 ms (4); kafka-flush 35000, 9 ms (10).
		"### One node: standalone / kafka\n\n| acks | size | throughput vs defaults | p99 vs defaults | p99 same load vs defaults | throughput vs flush per batch | p99 vs flush per batch | p99 same load vs flush per batch |\n|---|---|--:|--:|--:|--:|--:|--:|\n| all | 100 B | 0.50 | 1.50 | 1.38 | 2.00 | 0.50 | 0.55 |\n",
		// cluster 30000 msgs/s, p99 12 ms (13); kafka-cluster 60000, 6 ms
		// (7); kafka-cluster-flush 15000, no latency runs.
		"### Three nodes: cluster / kafka-cluster\n\n| acks | size | throughput vs defaults | p99 vs defaults | p99 same load vs defaults | throughput vs flush per batch | p99 vs flush per batch | p99 same load vs flush per batch |\n|---|---|--:|--:|--:|--:|--:|--:|\n| all | 100 B | 0.50 | 2.00 | 1.86 | 2.00 | - | - |\n",
		"kfake, which writes nothing to disk, is in the tables only",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if err := kafkaReport().WriteChart(filepath.Join(t.TempDir(), "c.png")); err != nil {
		t.Fatal(err)
	}
}

// Without Kafka points the report has no Kafka section and no Java row.
func TestNoKafkaSection(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteMarkdown(&b, ""); err != nil {
		t.Fatal(err)
	}
	for _, unwanted := range []string{"Chronik against Kafka", "| Java |", "**kafka"} {
		if strings.Contains(b.String(), unwanted) {
			t.Errorf("markdown has %q:\n%s", unwanted, b.String())
		}
	}
}

// A chart of kfake alone has nothing to draw: kfake is in the tables only.
func TestChartLeavesKfakeOut(t *testing.T) {
	r := sampleReport()
	r.Points = r.Points[:1]
	if err := r.WriteChart(filepath.Join(t.TempDir(), "c.png")); err == nil {
		t.Fatal("a chart of kfake alone was drawn")
	}
}
