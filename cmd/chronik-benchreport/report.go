package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/chronik-stream/chronik/internal/bench"
)

// Point is one measured configuration: the maximum throughput run and the
// latency run at half of that rate.
type Point struct {
	System string       `json:"system"`
	Acks   string       `json:"acks"`
	Size   int          `json:"message_bytes"`
	Max    bench.Result `json:"max"`
	Half   bench.Result `json:"half_load"`
	// Common is the run at the rate every system does (--common-rate),
	// empty if the system could not carry it.
	Common bench.Result `json:"common_load"`
	// ServerP99Bound bounds the servers' own p99 Produce latency (ms) in
	// the 50% run, from their request-latency histogram (whose buckets
	// double); 0 when not measured (kfake has no such metric).
	ServerP99Bound float64 `json:"server_produce_p99_bound_ms,omitempty"`
	// MaxCPUBusy and HalfCPUBusy are the share of the machine's CPU time
	// (both cores; servers and load generator together) in use during the
	// maximum and the 50% run, in percent.
	MaxCPUBusy  float64 `json:"max_cpu_busy_percent"`
	HalfCPUBusy float64 `json:"half_load_cpu_busy_percent"`
}

// Machine describes where the figures were taken.
type Machine struct {
	CPU       string  `json:"cpu"`
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
	// Java is the JVM that ran Kafka (empty when Kafka was not measured).
	Java string `json:"java,omitempty"`
	Date string `json:"date"`
}

// Report is everything BENCHMARKS.md is written from.
type Report struct {
	Machine Machine `json:"machine"`
	// Command reruns this exact measurement.
	Command string `json:"command"`
	Smoke   bool   `json:"smoke"`
	// KafkaVersion is the Apache Kafka release measured, if any.
	KafkaVersion string  `json:"kafka_version,omitempty"`
	Points       []Point `json:"points"`
	// Settings lists the run's parameters, in order, for the header.
	Settings [][2]string `json:"settings"`
}

func (r Report) point(system, acks string, size int) (Point, bool) {
	for _, p := range r.Points {
		if p.System == system && p.Acks == acks && p.Size == size {
			return p, true
		}
	}
	return Point{}, false
}

// sizes lists the message sizes measured, in order of first appearance.
func (r Report) sizes() []int {
	var out []int
	seen := map[int]bool{}
	for _, p := range r.Points {
		if !seen[p.Size] {
			seen[p.Size] = true
			out = append(out, p.Size)
		}
	}
	return out
}

func (r Report) acksValues() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range r.Points {
		if !seen[p.Acks] {
			seen[p.Acks] = true
			out = append(out, p.Acks)
		}
	}
	return out
}

// Target is one goal with its measured value.
type Target struct {
	Goal     string
	Measured string
	// Status is "met", "not met" or "not measured".
	Status string
}

// ratioTarget compares the maximum throughput of two systems.
func (r Report) ratioTarget(goal, num, den, acks string, size int, atLeast float64) Target {
	t := Target{Goal: goal, Status: "not measured", Measured: "-"}
	a, okA := r.point(num, acks, size)
	b, okB := r.point(den, acks, size)
	if !okA || !okB || b.Max.MsgsPerSec <= 0 {
		return t
	}
	ratio := a.Max.MsgsPerSec / b.Max.MsgsPerSec
	t.Measured = fmt.Sprintf("%.2f (%.0f / %.0f msgs/s)", ratio, a.Max.MsgsPerSec, b.Max.MsgsPerSec)
	t.Status = verdict(ratio >= atLeast)
	return t
}

// latencyTarget checks p99 at half load.
func (r Report) latencyTarget(goal, system, acks string, size int, belowMs float64) Target {
	t := Target{Goal: goal, Status: "not measured", Measured: "-"}
	p, ok := r.point(system, acks, size)
	if !ok || p.Half.Samples == 0 {
		return t
	}
	t.Measured = fmt.Sprintf("%.2f ms at %.0f msgs/s", p.Half.LatencyP99, p.Half.MsgsPerSec)
	t.Status = verdict(p.Half.LatencyP99 < belowMs)
	return t
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "not met"
}

// Targets evaluates the project's goals for every message size measured. Throughput goals compare acks=all runs, where durability
// is what differs between the systems.
func (r Report) Targets() []Target {
	var out []Target
	for _, size := range r.sizes() {
		sz := sizeLabel(size)
		out = append(out,
			r.ratioTarget("standalone ≥ 0.6 × kfake, acks=all, "+sz, "standalone", "kfake", "all", size, 0.6),
			r.ratioTarget("cluster ≥ 0.5 × standalone, acks=all, "+sz, "cluster", "standalone", "all", size, 0.5),
			r.ratioTarget("cluster ≥ 0.8 × standalone, acks=all, "+sz+" (stretch)", "cluster", "standalone", "all", size, 0.8),
		)
		for _, acks := range r.acksValues() {
			out = append(out,
				r.latencyTarget(fmt.Sprintf("standalone p99 < 5 ms at 50%% load, acks=%s, %s", acks, sz), "standalone", acks, size, 5),
				r.latencyTarget(fmt.Sprintf("cluster p99 < 10 ms at 50%% load, acks=%s, %s", acks, sz), "cluster", acks, size, 10),
			)
		}
	}
	return out
}

func sizeLabel(size int) string {
	if size >= 1024 && size%1024 == 0 {
		return fmt.Sprintf("%d KiB", size/1024)
	}
	return fmt.Sprintf("%d B", size)
}

// WriteMarkdown writes BENCHMARKS.md.
func (r Report) WriteMarkdown(w io.Writer, chartName string) error {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("<!-- Generated by cmd/chronik-benchreport (`make benchmarks`); do not edit by hand. -->\n\n")
	if r.Smoke {
		b.WriteString("> **Smoke run.** These figures come from a short run (a few seconds per point) on a\n" +
			"> shared machine, to show the report's form. They are not the project's benchmark;\n" +
			"> regenerate with `make benchmarks` (the full run) on a quiet machine.\n\n")
	}
	b.WriteString("Produced by `chronik-benchreport`, which builds `chronik-server` and `kfake-server`, then\n" +
		"runs each system alone on loopback (the others stopped, so they do not compete for\n" +
		"the cores). The load generator (`internal/bench`, franz-go) runs in the\n" +
		"`chronik-benchreport` process on the same machine, so its CPU use is part of every\n" +
		"figure:\n\n")
	for _, sys := range r.systemsIn() {
		b.WriteString(r.describeSystem(sys))
	}
	b.WriteString("\nEach system is warmed up right after it starts (every acks and size in turn, on throwaway\n" +
		"topics, so that the JVM has compiled Kafka's code before it is measured). Then, for each\n" +
		"acks and message size: a warm-up, then the **maximum throughput**\n" +
		"(producing as fast as possible for a fixed time), then **latency at 50% load** (a\n" +
		"rate-limited run at half that maximum). Latency is from send (max) or from each\n" +
		"message's intended send time (50% load, so stalls are not hidden) to the\n" +
		"acknowledgement; every sample is kept in an HDR histogram. Bench topics are created\n" +
		"with small `retention.bytes`/`segment.bytes` and deleted after each point; data\n" +
		"directories live in a temp dir that is removed at the end. Before each measured run\n" +
		"the machine's dirty pages are written back (sync(2)), so a run does not pay for the\n" +
		"previous one's gigabytes.\n\n")

	m := r.Machine
	b.WriteString("## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPU | %s |\n| cores | %d |\n| memory | %.1f GiB |\n| kernel | %s |\n| Go | %s |\n",
		m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.Go)
	if m.Java != "" {
		fmt.Fprintf(&b, "| Java | %s |\n", m.Java)
	}
	fmt.Fprintf(&b, "| date | %s |\n\n", m.Date)

	b.WriteString("## Rerun\n\n```sh\n" + r.Command + "\n```\n\n")
	if len(r.Settings) > 0 {
		b.WriteString("| setting | value |\n|---|---|\n")
		for _, s := range r.Settings {
			fmt.Fprintf(&b, "| %s | %s |\n", s[0], s[1])
		}
		b.WriteString("\n")
	}

	b.WriteString("## Results\n\n")
	b.WriteString("| system | acks | size | max msgs/s | max MB/s | CPU | p50 | p95 | p99 | p99.9 | max | 50% msgs/s | CPU | p50 | p95 | p99 | p99.9 | max | server p99 | errors |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range r.Points {
		server := "-"
		if p.ServerP99Bound > 0 {
			server = "≤ " + ms(p.ServerP99Bound)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.1f | %.0f%% | %s | %s | %s | %s | %s | %.0f | %.0f%% | %s | %s | %s | %s | %s | %s | %d |\n",
			p.System, p.Acks, sizeLabel(p.Size), p.Max.MsgsPerSec, p.Max.MBPerSec, p.MaxCPUBusy,
			ms(p.Max.LatencyP50), ms(p.Max.LatencyP95), ms(p.Max.LatencyP99), ms(p.Max.LatencyP999), ms(p.Max.LatencyMax),
			p.Half.MsgsPerSec, p.HalfCPUBusy, ms(p.Half.LatencyP50), ms(p.Half.LatencyP95), ms(p.Half.LatencyP99), ms(p.Half.LatencyP999), ms(p.Half.LatencyMax),
			server, p.Max.Errors+p.Half.Errors)
	}
	b.WriteString("\nLatencies in milliseconds, as the client sees them; the first group at maximum throughput, the second at 50% of it. " +
		"\"server p99\" bounds Chronik's servers' own p99 time to answer a Produce request during the 50% run (from their " +
		"`chronik_kafka_request_latency_ms` histogram, whose buckets double, so it is the bucket bound, not an estimate). " +
		"\"CPU\" is the share of the machine's CPU time (all cores, servers and load generator together, from /proc/stat) in use during the run: " +
		"half the throughput is not half the CPU, because smaller batches cost more per message, and at this utilisation records queue. " +
		"The gap to the client's p99 is time spent in the load generator, which shares the cores with the servers: " +
		"records wait in the client's buffers while it builds and sends the previous requests. " +
		"[performance.md](performance.md) explains these figures (CPU, batching regimes, the page cache) " +
		"and gives latencies measured on a quiet node.\n\n")

	b.WriteString("## Ratios (maximum throughput)\n\n| acks | size | standalone / kfake | cluster / standalone |\n|---|---|--:|--:|\n")
	for _, acks := range r.acksValues() {
		for _, size := range r.sizes() {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", acks, sizeLabel(size),
				r.ratio("standalone", "kfake", acks, size), r.ratio("cluster", "standalone", acks, size))
		}
	}
	r.writeKafkaRatios(&b)
	b.WriteString("\n## Targets\n\nThroughput goals compare acks=all runs, where durability is what differs between the systems; " +
		"\"stretch\" marks the cluster's longer-term goal.\n\n" +
		"| target | measured | status |\n|---|---|---|\n")
	for _, t := range r.Targets() {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Goal, t.Measured, t.Status)
	}
	if chartName != "" {
		fmt.Fprintf(&b, "\n## Chart\n\n![throughput and latency](%s)\n", chartName)
		if r.hasSystem("kfake") {
			b.WriteString("\nkfake, which writes nothing to disk, is in the tables only: it bounds what the client and the protocol path reach on this machine, and is no server to compare with.\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// systemsIn lists the systems of the report in the order they were
// measured.
func (r Report) systemsIn() []string {
	var out []string
	for _, p := range r.Points {
		if !slices.Contains(out, p.System) {
			out = append(out, p.System)
		}
	}
	return out
}

func (r Report) hasSystem(name string) bool { return slices.Contains(r.systemsIn(), name) }

func (r Report) hasKafka() bool { return slices.ContainsFunc(r.systemsIn(), isKafkaSystem) }

// describeSystem is a system's bullet in the report's introduction.
func (r Report) describeSystem(name string) string {
	kafka := "Apache Kafka"
	if r.KafkaVersion != "" {
		kafka += " " + r.KafkaVersion
	}
	switch name {
	case "kfake":
		return "* **kfake**: franz-go's in-memory fake Kafka (`cmd/kfake-server`), no disk: the ceiling of\n" +
			"  the protocol path and of the client on this machine.\n"
	case "standalone":
		return "* **standalone**: `chronik-server standalone`, one node, fsynced log.\n"
	case "cluster":
		return "* **cluster**: three `chronik-server standalone --raft` nodes, replication factor 3,\n" +
			"  min.insync.replicas 2, on the same machine (so the cluster does three times the disk\n" +
			"  work of a standalone node on the same cores).\n"
	case "kafka":
		return "* **kafka**: " + kafka + " from Maven Central's jars, one node in KRaft mode (broker and\n" +
			"  controller in one JVM), Kafka's defaults: a batch is acknowledged once it is in the page\n" +
			"  cache, and the kernel writes it to disk later (no fsync per batch).\n"
	case "kafka-flush":
		return "* **kafka-flush**: the same node, its bench topics created with `flush.messages=1`: every\n" +
			"  batch is fsynced before it is acknowledged, the durability Chronik gives every batch.\n"
	case "kafka-cluster":
		return "* **kafka-cluster**: three such Kafka nodes (each broker and controller), replication\n" +
			"  factor 3, min.insync.replicas 2, Kafka's defaults.\n"
	case "kafka-cluster-flush":
		return "* **kafka-cluster-flush**: the same three nodes with `flush.messages=1` on the bench\n" +
			"  topics: each replica fsyncs every batch it appends.\n"
	}
	return "* **" + name + "**\n"
}

// writeKafkaRatios compares Chronik with the Kafka reference: maximum
// throughput, and p99 at 50% of each system's own maximum.
func (r Report) writeKafkaRatios(b *strings.Builder) {
	if !r.hasKafka() {
		return
	}
	b.WriteString("\n## Chronik against Kafka\n\n" +
		"Chronik's figure divided by Kafka's, for the same acks and message size. **Throughput** is the maximum " +
		"(above 1: Chronik is faster); **p99** is the client's p99 latency at 50% load (below 1: Chronik's is lower), " +
		"each system running at half its own maximum, so at different rates (they are in the Results table). " +
		"**p99 same load** compares the p99s at one rate for both systems (" + r.commonRateLabel() + "). " +
		"\"defaults\" is Kafka acknowledging from the page cache; \"flush per batch\" is Kafka with " +
		"`flush.messages=1`, which, like Chronik, acknowledges a batch only once it is fsynced.\n")
	for _, cmp := range []struct{ title, chronik, kafka, flush string }{
		{"One node: standalone / kafka", "standalone", "kafka", "kafka-flush"},
		{"Three nodes: cluster / kafka-cluster", "cluster", "kafka-cluster", "kafka-cluster-flush"},
	} {
		fmt.Fprintf(b, "\n### %s\n\n", cmp.title)
		b.WriteString("| acks | size | throughput vs defaults | p99 vs defaults | p99 same load vs defaults | throughput vs flush per batch | p99 vs flush per batch | p99 same load vs flush per batch |\n" +
			"|---|---|--:|--:|--:|--:|--:|--:|\n")
		for _, acks := range r.acksValues() {
			for _, size := range r.sizes() {
				fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", acks, sizeLabel(size),
					r.ratio(cmp.chronik, cmp.kafka, acks, size), r.p99Ratio(cmp.chronik, cmp.kafka, acks, size),
					r.commonP99Ratio(cmp.chronik, cmp.kafka, acks, size),
					r.ratio(cmp.chronik, cmp.flush, acks, size), r.p99Ratio(cmp.chronik, cmp.flush, acks, size),
					r.commonP99Ratio(cmp.chronik, cmp.flush, acks, size))
			}
		}
	}
}

// p99Ratio divides num's p99 at 50% load by den's.
func (r Report) p99Ratio(num, den, acks string, size int) string {
	a, okA := r.point(num, acks, size)
	b, okB := r.point(den, acks, size)
	if !okA || !okB || a.Half.Samples == 0 || b.Half.Samples == 0 || b.Half.LatencyP99 <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a.Half.LatencyP99/b.Half.LatencyP99)
}

// commonP99Ratio divides num's p99 at the common rate by den's.
func (r Report) commonP99Ratio(num, den, acks string, size int) string {
	a, okA := r.point(num, acks, size)
	b, okB := r.point(den, acks, size)
	if !okA || !okB || a.Common.Samples == 0 || b.Common.Samples == 0 || b.Common.LatencyP99 <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a.Common.LatencyP99/b.Common.LatencyP99)
}

// commonRateLabel is the common rate as the runs measured it.
func (r Report) commonRateLabel() string {
	for _, p := range r.Points {
		if p.Common.Samples > 0 {
			return fmt.Sprintf("%.0f msgs/s", p.Common.MsgsPerSec)
		}
	}
	return "not measured"
}

func (r Report) ratio(num, den, acks string, size int) string {
	a, okA := r.point(num, acks, size)
	b, okB := r.point(den, acks, size)
	if !okA || !okB || b.Max.MsgsPerSec <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a.Max.MsgsPerSec/b.Max.MsgsPerSec)
}

func ms(v float64) string { return fmt.Sprintf("%.2f", v) }

// describeMachine reads the CPU model, memory and kernel from /proc (Linux).
func describeMachine(now time.Time) Machine {
	m := Machine{CPU: "unknown", Kernel: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(), Date: now.UTC().Format("2006-01-02 15:04 UTC")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %f kB", &kb); err == nil {
				m.MemoryGiB = kb / (1 << 20)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
