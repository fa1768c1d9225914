// Command chronik-benchreport measures franz-go's in-memory kfake, a
// standalone chronik-server, a 3-node chronik cluster and Apache Kafka (one
// and three nodes, with its defaults and with a flush per batch) on this
// machine, one system at a time, and writes docs/BENCHMARKS.md with a
// chart. `make benchmarks` runs it; see the flags for a quick smoke run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chronik-stream/chronik/internal/bench"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type binaries struct {
	server, kfake string
	kafka         kafkaDist
}

type settings struct {
	systems, acks       []string
	sizes               []int
	warmup, maxDuration time.Duration
	startWarmup         time.Duration
	latencyDuration     time.Duration
	commonRate          float64
	partitions          int
	producers           int
	retentionBytes      int64
	segmentBytes        int64
	out, chart, jsonOut string
	binDir              string
	kafkaLib, kafkaHeap string
	smoke               bool
}

// allSystems are the systems measured by default, in order.
const allSystems = "kfake,standalone,cluster,kafka,kafka-flush,kafka-cluster,kafka-cluster-flush"

func main() {
	var s settings
	var systems, acks, sizes string
	flag.StringVar(&systems, "systems", allSystems, "systems to measure, in order")
	flag.StringVar(&acks, "acks", "1,all", "acks values")
	flag.StringVar(&sizes, "sizes", "100,1024", "message sizes in bytes")
	flag.DurationVar(&s.warmup, "warmup", 3*time.Second, "warm-up before each maximum-throughput run")
	flag.DurationVar(&s.startWarmup, "start-warmup", 12*time.Second, "warm-up of each system right after it starts, over every acks × size (with --smoke: --warmup unless given)")
	flag.DurationVar(&s.maxDuration, "duration", 10*time.Second, "length of each maximum-throughput run")
	flag.DurationVar(&s.latencyDuration, "latency-duration", 10*time.Second, "length of each run at 50% of the maximum")
	flag.Float64Var(&s.commonRate, "common-rate", 5000, "msgs/s of a latency run every system does at the same load (0: none)")
	flag.IntVar(&s.partitions, "partitions", 3, "partitions of each bench topic")
	flag.IntVar(&s.producers, "producers", 1, "producer clients")
	flag.Int64Var(&s.retentionBytes, "retention-bytes", 256<<20, "retention.bytes of the bench topics (per partition), so the disk cannot fill")
	flag.Int64Var(&s.segmentBytes, "segment-bytes", 64<<20, "segment.bytes of the bench topics")
	flag.StringVar(&s.out, "out", "docs/BENCHMARKS.md", "report to write")
	flag.StringVar(&s.chart, "chart", "docs/benchmarks.png", "chart to write (PNG; empty: none)")
	flag.StringVar(&s.jsonOut, "json", "docs/benchmarks.json", "raw results to write (empty: none)")
	flag.StringVar(&s.binDir, "bin-dir", "", "directory with prebuilt chronik-server and kfake-server (default: build them)")
	flag.StringVar(&s.kafkaLib, "kafka-lib", "test/clients/java/target/lib", "directory with Apache Kafka's jars (`make deps-java` puts them there)")
	flag.StringVar(&s.kafkaHeap, "kafka-heap", "1g", "JVM heap of each Kafka node (-Xms and -Xmx)")
	flag.BoolVar(&s.smoke, "smoke", false, "mark the report as a smoke run (short points, not the real benchmark)")
	flag.Parse()
	if s.smoke && !flagSet("start-warmup") {
		s.startWarmup = s.warmup
	}
	s.systems = splitList(systems)
	for _, name := range s.systems {
		if !knownSystem(name) {
			fmt.Fprintf(os.Stderr, "chronik-benchreport: --systems: unknown system %q (use %s)\n", name, allSystems)
			os.Exit(2)
		}
	}
	s.acks = splitList(acks)
	for _, v := range splitList(sizes) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 8 {
			fmt.Fprintf(os.Stderr, "chronik-benchreport: --sizes: %q is not a size of at least 8 bytes\n", v)
			os.Exit(2)
		}
		s.sizes = append(s.sizes, n)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, s, strings.Join(os.Args[1:], " "))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chronik-benchreport:", err)
		os.Exit(1)
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func knownSystem(name string) bool {
	return name == "kfake" || name == "standalone" || name == "cluster" || isKafkaSystem(name)
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// tempPrefix names the run's temp dir; a dir whose owner is gone (a run
// killed with SIGKILL) is removed by the next run.
const tempPrefix = "chronik-benchreport-"

func run(ctx context.Context, s settings, args string) error {
	removeStaleTempDirs()
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	// Always removed, also on failure and interrupt (the context ends and
	// every step returns): benchmark data must never stay on the disk.
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	// The Kafka reference is checked first: a missing jar fails the run
	// before anything is measured.
	var kafka kafkaDist
	for _, name := range s.systems {
		if isKafkaSystem(name) {
			if kafka, err = findKafka(ctx, s.kafkaLib, s.kafkaHeap); err != nil {
				return err
			}
			break
		}
	}
	bins, err := buildBinaries(ctx, s.binDir, dir)
	if err != nil {
		return err
	}
	bins.kafka = kafka
	rep := Report{Machine: describeMachine(time.Now()), Smoke: s.smoke, Command: "make benchmarks",
		KafkaVersion: kafka.version}
	rep.Machine.Java = kafka.java
	if args != "" {
		rep.Command = "go run ./cmd/chronik-benchreport " + args
	}
	rep.Settings = [][2]string{
		{"warm-up of each system after it starts", s.startWarmup.String()},
		{"warm-up per point", s.warmup.String()},
		{"maximum-throughput run", s.maxDuration.String()},
		{"latency run at 50%", s.latencyDuration.String()},
		{"latency run at the same load for every system", fmt.Sprintf("%.0f msgs/s for %v", s.commonRate, s.latencyDuration)},
		{"partitions", strconv.Itoa(s.partitions)},
		{"producer clients", strconv.Itoa(s.producers)},
		{"topic retention.bytes / segment.bytes", fmt.Sprintf("%d / %d", s.retentionBytes, s.segmentBytes)},
	}
	if kafka.version != "" {
		rep.Settings = append(rep.Settings, [2]string{"Kafka JVM heap per node", kafka.heap})
	}
	for _, name := range s.systems {
		points, err := measureSystem(ctx, s, bins, dir, name)
		rep.Points = append(rep.Points, points...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return writeOutputs(s, rep)
}

func writeOutputs(s settings, rep Report) error {
	chartName := ""
	if s.chart != "" {
		if err := rep.WriteChart(s.chart); err != nil {
			return err
		}
		rel, err := filepath.Rel(filepath.Dir(s.out), s.chart)
		if err != nil {
			rel = s.chart
		}
		chartName = rel
	}
	f, err := os.Create(s.out)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := rep.WriteMarkdown(f, chartName); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", s.out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if s.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(s.jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("results: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", strings.Join(nonEmpty(s.out, s.chart, s.jsonOut), ", "))
	return nil
}

func nonEmpty(vs ...string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// removeStaleTempDirs removes temp dirs of earlier runs whose process is
// gone.
func removeStaleTempDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		fmt.Fprintf(os.Stderr, "removing %s, left by an earlier run (pid %d)\n", d, pid)
		os.RemoveAll(d)
	}
}

func buildBinaries(ctx context.Context, binDir, tmp string) (binaries, error) {
	if binDir != "" {
		return binaries{server: filepath.Join(binDir, "chronik-server"), kfake: filepath.Join(binDir, "kfake-server")}, nil
	}
	b := binaries{server: filepath.Join(tmp, "chronik-server"), kfake: filepath.Join(tmp, "kfake-server")}
	for out, pkg := range map[string]string{b.server: "./cmd/chronik-server", b.kfake: "./cmd/kfake-server"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s (run from the repository root): %w\n%s", pkg, err, msg)
		}
	}
	return b, nil
}

// measureSystem starts one system, measures every acks × size point on it
// and stops it (so the next system has the machine to itself).
func measureSystem(ctx context.Context, s settings, bins binaries, dir, name string) ([]Point, error) {
	sysDir := filepath.Join(dir, name)
	if err := os.MkdirAll(sysDir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(sysDir)
	var sys *system
	var err error
	switch name {
	case "kfake":
		sys, err = startKfake(ctx, bins, sysDir)
	case "standalone":
		sys, err = startStandalone(ctx, bins, sysDir)
	case "cluster":
		sys, err = startCluster(ctx, bins, sysDir)
	default:
		sys, err = startKafka(ctx, bins.kafka, sysDir, name)
	}
	if err != nil {
		return nil, err
	}
	defer sys.stop()
	if err := warmUpSystem(ctx, s, sys); err != nil {
		return nil, err
	}
	var points []Point
	for _, acks := range s.acks {
		for _, size := range s.sizes {
			p, err := measurePoint(ctx, s, sys, acks, size)
			if err != nil {
				return points, fmt.Errorf("acks=%s size=%d: %w", acks, size, err)
			}
			points = append(points, p)
		}
	}
	return points, nil
}

// benchTopic creates a bench topic on sys with the run's retention and
// the system's own topic configs, and returns the load's options and a
// function that deletes the topic with its data.
func benchTopic(ctx context.Context, s settings, sys *system, topic, acks string, size int) (bench.Options, func(), error) {
	retention, segment := strconv.FormatInt(s.retentionBytes, 10), strconv.FormatInt(s.segmentBytes, 10)
	configs := map[string]*string{"retention.bytes": &retention, "segment.bytes": &segment}
	for k, v := range sys.topicConfigs {
		configs[k] = &v
	}
	o := bench.Options{
		Bootstrap: sys.bootstrap, Topic: topic,
		Partitions: int32(s.partitions), Replication: sys.replication, Size: size, Acks: acks,
		Producers: s.producers, Compression: "none", Progress: os.Stderr, TopicConfigs: configs,
	}
	// A cluster may still be electing partition leaders for its catalog
	// right after it reports ready: retry creation briefly.
	err := waitUntil(ctx, "the bench topic to be created", 30*time.Second, sys.procs, func() error { return bench.EnsureTopic(ctx, o) })
	if err != nil {
		return o, nil, err
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := bench.DeleteTopic(dctx, o.Bootstrap, o.Topic); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
		}
	}
	// The broker asked may learn of the new topic a moment after its
	// creation is answered.
	err = waitUntil(ctx, "the bench topic's configs", 30*time.Second, sys.procs, func() error {
		return checkTopicConfigs(ctx, o.Bootstrap, o.Topic, sys.topicConfigs)
	})
	if err != nil {
		drop()
		return o, nil, err
	}
	return o, drop, nil
}

// warmUpSystem produces to a throwaway topic right after a system starts,
// every acks × size in turn, so that no point pays for a cold start (the
// JVM's just-in-time compilation above all; Go's code runs compiled from
// the first request).
func warmUpSystem(ctx context.Context, s settings, sys *system) error {
	n := len(s.acks) * len(s.sizes)
	if s.startWarmup <= 0 || n == 0 {
		return nil
	}
	fmt.Fprintf(os.Stderr, "== %s: warm-up after start, %v\n", sys.name, s.startWarmup)
	for _, acks := range s.acks {
		for _, size := range s.sizes {
			o, drop, err := benchTopic(ctx, s, sys, fmt.Sprintf("bench-%s-start-acks%s-%d", sys.name, acks, size), acks, size)
			if err != nil {
				return fmt.Errorf("warm-up after start: %w", err)
			}
			o.Duration = s.startWarmup / time.Duration(n)
			_, err = bench.Produce(ctx, o)
			drop()
			if err != nil {
				return fmt.Errorf("warm-up after start: %w", err)
			}
		}
	}
	return nil
}

func measurePoint(ctx context.Context, s settings, sys *system, acks string, size int) (Point, error) {
	o, drop, err := benchTopic(ctx, s, sys, fmt.Sprintf("bench-%s-acks%s-%d", sys.name, acks, size), acks, size)
	if err != nil {
		return Point{}, err
	}
	// The topic goes with its data, whatever happened to the point.
	defer drop()
	p := Point{System: sys.name, Acks: acks, Size: size}
	fmt.Fprintf(os.Stderr, "== %s acks=%s size=%d: warm-up %v\n", sys.name, acks, size, s.warmup)
	o.Duration = s.warmup
	if _, err := bench.Produce(ctx, o); err != nil {
		return p, fmt.Errorf("warm-up: %w", err)
	}
	fmt.Fprintf(os.Stderr, "== %s acks=%s size=%d: maximum throughput, %v\n", sys.name, acks, size, s.maxDuration)
	o.Duration = s.maxDuration
	settleDisk()
	if p.Max, p.MaxCPUBusy, err = produceMeasuringCPU(ctx, o); err != nil {
		return p, fmt.Errorf("maximum throughput: %w", err)
	}
	if p.Max.Messages == 0 {
		return p, fmt.Errorf("maximum throughput: no message acknowledged (first error: %s)", p.Max.FirstError)
	}
	o.Rate = p.Max.MsgsPerSec / 2
	fmt.Fprintf(os.Stderr, "== %s acks=%s size=%d: latency at %.0f msgs/s (50%%), %v\n", sys.name, acks, size, o.Rate, s.latencyDuration)
	o.Duration = s.latencyDuration
	settleDisk()
	var before produceBuckets
	if len(sys.metrics) > 0 {
		if before, err = scrapeProduceBuckets(ctx, sys.metrics); err != nil {
			return p, err
		}
	}
	if p.Half, p.HalfCPUBusy, err = produceMeasuringCPU(ctx, o); err != nil {
		return p, fmt.Errorf("latency at 50%%: %w", err)
	}
	if len(sys.metrics) > 0 {
		after, err := scrapeProduceBuckets(ctx, sys.metrics)
		if err != nil {
			return p, err
		}
		p.ServerP99Bound, _ = quantileBound(before, after, 0.99)
	}
	// The same load for every system, if it can carry it: p99s compared
	// at one rate.
	if s.commonRate > 0 && s.commonRate < p.Max.MsgsPerSec {
		o.Rate = s.commonRate
		fmt.Fprintf(os.Stderr, "== %s acks=%s size=%d: latency at %.0f msgs/s (the same for every system), %v\n", sys.name, acks, size, o.Rate, s.latencyDuration)
		settleDisk()
		if p.Common, err = bench.Produce(ctx, o); err != nil {
			return p, fmt.Errorf("latency at %.0f msgs/s: %w", o.Rate, err)
		}
	}
	if ctx.Err() != nil {
		return p, ctx.Err()
	}
	bench.WriteTable(os.Stderr, p.Max, p.Half)
	return p, nil
}

// produceMeasuringCPU runs a produce load and measures how busy the
// machine's CPUs were meanwhile.
func produceMeasuringCPU(ctx context.Context, o bench.Options) (bench.Result, float64, error) {
	before, err := readCPUTimes()
	if err != nil {
		return bench.Result{}, 0, err
	}
	r, err := bench.Produce(ctx, o)
	if err != nil {
		return r, 0, err
	}
	after, err := readCPUTimes()
	if err != nil {
		return r, 0, err
	}
	return r, busyPercent(before, after), nil
}

// settleDisk writes back every dirty page on the machine before a measured
// run, so the run does not pay for the previous one's data (gigabytes at
// full speed, deleted or not yet written back) and every run starts alike.
func settleDisk() { syscall.Sync() }

// checkTopicConfigs verifies that the topic has the configs a system's
// figures depend on (Kafka's flush.messages), so a setting the broker
// ignored cannot pass unnoticed.
func checkTopicConfigs(ctx context.Context, bootstrap []string, topic string, want map[string]string) error {
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		return err
	}
	defer cl.Close()
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe the configs of %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("describe the configs of %s: %w", topic, err)
	}
	for k, v := range want {
		got := "(unset)"
		for _, c := range rc.Configs {
			if c.Key == k {
				got = c.MaybeValue()
			}
		}
		if got != v {
			return fmt.Errorf("topic %s has %s=%s, want %s", topic, k, got, v)
		}
	}
	return nil
}
