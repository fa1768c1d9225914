package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronik-stream/chronik/internal/bench"
)

func newBenchCommand() *cobra.Command {
	var o bench.Options
	var bootstrap, group string
	var topicConfigs []string
	var asJSON, create bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure any Kafka-compatible cluster with franz-go producers and consumers",
		Long: `Load tool. "produce" measures throughput and send-to-acknowledgement latency,
"consume" read throughput, "e2e" the latency from each message's intended send
time to its receipt by a consumer. Every latency sample is kept (HDR
histogram). With --rate, latency counts from each message's intended send
time, so stalls are not hidden by coordinated omission.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&bootstrap, "bootstrap", "localhost:9092", "comma-separated seed brokers")
	pf.StringVar(&o.Topic, "topic", "chronik-bench", "topic")
	pf.Int32Var(&o.Partitions, "partitions", 3, "partitions when the topic is created")
	pf.Int16Var(&o.Replication, "replication", 1, "replication factor when the topic is created")
	pf.BoolVar(&create, "create", true, "create the topic if it does not exist")
	pf.StringArrayVar(&topicConfigs, "topic-config", nil, "topic config key=value when the topic is created (repeatable)")
	pf.IntVar(&o.Size, "size", 1024, "message size in bytes")
	pf.IntVar(&o.Keys, "keys", 0, "distinct message keys, given in turn (0: no key; a compacted topic needs keys)")
	pf.Int64Var(&o.Count, "count", 0, "messages (0: run for --duration)")
	pf.DurationVar(&o.Duration, "duration", 30*time.Second, "run length when --count is 0")
	pf.Float64Var(&o.Rate, "rate", 0, "messages per second over all producers (0: as fast as possible; e2e default 1000)")
	pf.StringVar(&o.Acks, "acks", "all", "all, 1 or 0")
	pf.StringVar(&o.Compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	pf.IntVar(&o.Producers, "producers", 1, "producer clients")
	pf.IntVar(&o.Consumers, "consumers", 1, "consumer clients (consume)")
	pf.BoolVar(&o.Idempotent, "idempotent", false, "idempotent producers (acks=all only)")
	pf.DurationVar(&o.Linger, "linger", 0, "producer linger")
	pf.Int32Var(&o.BatchBytes, "batch-bytes", 0, "producer batch size limit (0: franz-go's default, 1 MB)")
	pf.IntVar(&o.Inflight, "inflight", 5, "produce requests in flight per broker for non-idempotent producers")
	pf.StringVar(&group, "group", "", "consumer group (consume; default a new one per run)")
	pf.BoolVar(&asJSON, "json", false, "print the result as JSON")

	run := func(mode string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			o.Bootstrap = strings.Split(bootstrap, ",")
			if o.Size < 1 {
				return usageError{fmt.Errorf("--size must be at least 1")}
			}
			if o.Keys < 0 {
				return usageError{fmt.Errorf("--keys must not be negative")}
			}
			var err error
			if o.TopicConfigs, err = parseConfigs("topic-config", topicConfigs); err != nil {
				return usageError{err}
			}
			if !asJSON {
				o.Progress = os.Stderr
			}
			ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer cancel()
			if create {
				if err := bench.EnsureTopic(ctx, o); err != nil {
					return err
				}
			}
			var r bench.Result
			switch mode {
			case "produce":
				r, err = bench.Produce(ctx, o)
			case "consume":
				g := group
				if g == "" {
					g = fmt.Sprintf("chronik-bench-%d", time.Now().UnixNano())
				}
				r, err = bench.Consume(ctx, o, g)
			case "e2e":
				r, err = bench.E2E(ctx, o)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return bench.WriteJSON(cmd.OutOrStdout(), r)
			}
			bench.WriteTable(cmd.OutOrStdout(), r)
			return nil
		}
	}
	for _, mode := range []string{"produce", "consume", "e2e"} {
		cmd.AddCommand(&cobra.Command{Use: mode, Short: mode + " load", Args: cobra.NoArgs, RunE: run(mode)})
	}
	cmd.AddCommand(newBenchSustainedCommand(&o, &bootstrap, &topicConfigs, &create, &asJSON))
	return cmd
}

// Sustained-run defaults, where they differ from the other bench modes: the
// roadmap's 100K msg/s (for an hour there; 10 minutes here), with 100-byte
// messages so that the run's data (rate × size × duration × replicas, all
// kept until it is read back) fits on a small disk: 6 GB per replica.
const (
	sustainedRateDefault     = 100000
	sustainedDurationDefault = 10 * time.Minute
	sustainedSizeDefault     = 100
	sustainedTopicDefault    = "chronik-sustained"
)

func newBenchSustainedCommand(o *bench.Options, bootstrap *string, topicConfigs *[]string, create, asJSON *bool) *cobra.Command {
	var metricsAddrs string
	var interval, verifyTimeout time.Duration
	var deleteTopic bool
	cmd := &cobra.Command{
		Use:   "sustained",
		Short: "Produce at a fixed rate with acks=all for a long time, then verify zero loss",
		Long: `Produces at --rate (default 100000 msgs/s) with acks=all and idempotence for
--duration (default 10m), printing throughput and p99 latency every --interval.
Every message's key carries the run id and a sequence number. At the end the
topic is read back from where the run started and every acknowledged message
must be there exactly once; the command fails otherwise. With --metrics-addrs
(the servers' metrics addresses) it reads process_resident_memory_bytes before
the load and every second, and reports the median over the first and the last
window (a tenth of the run, 10 s to 1 minute), the growth between them and the
trend.

Data is kept until it is read back: rate × size × duration × replication
bytes of disk (6 GB per replica with the defaults). --delete-topic (default
on) deletes the topic afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			if !f.Changed("rate") {
				o.Rate = sustainedRateDefault
			}
			if !f.Changed("duration") {
				o.Duration = sustainedDurationDefault
			}
			if !f.Changed("size") {
				o.Size = sustainedSizeDefault
			}
			if !f.Changed("topic") {
				o.Topic = sustainedTopicDefault
			}
			if !f.Changed("idempotent") {
				// Exactly once is checked: retries must not duplicate.
				o.Idempotent = true
			}
			if f.Changed("acks") && o.Acks != "all" && o.Acks != "-1" {
				return usageError{fmt.Errorf("sustained runs use acks=all (zero loss is only promised for acknowledged-by-quorum writes)")}
			}
			if f.Changed("count") {
				return usageError{fmt.Errorf("sustained runs are bounded by --duration, not --count")}
			}
			if o.Rate <= 0 || o.Duration <= 0 || o.Size < 1 {
				return usageError{fmt.Errorf("--rate, --duration and --size must be positive")}
			}
			var err error
			if o.TopicConfigs, err = parseConfigs("topic-config", *topicConfigs); err != nil {
				return usageError{err}
			}
			o.Bootstrap = strings.Split(*bootstrap, ",")
			ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer cancel()
			if *create {
				if err := bench.EnsureTopic(ctx, *o); err != nil {
					return err
				}
			}
			so := bench.SustainedOptions{Options: *o, Interval: interval, VerifyTimeout: verifyTimeout, Out: cmd.ErrOrStderr()}
			if metricsAddrs != "" {
				so.MetricsAddrs = strings.Split(metricsAddrs, ",")
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "sustained: %.0f msgs/s of %d bytes for %v to %s (about %.1f GB per replica, kept until read back)\n",
				o.Rate, o.Size, o.Duration, o.Topic, o.Rate*float64(o.Size)*o.Duration.Seconds()/1e9)
			r, err := bench.Sustained(ctx, so)
			if deleteTopic {
				// A fresh context: an interrupted run still frees its disk.
				dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
				if derr := bench.DeleteTopic(dctx, o.Bootstrap, o.Topic); derr != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "sustained: %v\n", derr)
				}
				dcancel()
			}
			if err != nil {
				return err
			}
			if *asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				bench.WriteSustained(cmd.OutOrStdout(), r)
			}
			if !r.OK() {
				return fmt.Errorf("delivery check failed: %d acknowledged messages missing, %d duplicates", r.Delivery.Missing, r.Delivery.Duplicates)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&metricsAddrs, "metrics-addrs", "", "comma-separated metrics addresses (host:port) of the servers, for their RSS")
	cmd.Flags().DurationVar(&interval, "interval", 10*time.Second, "report throughput and p99 this often")
	cmd.Flags().DurationVar(&verifyTimeout, "verify-timeout", 5*time.Minute, "time allowed to read everything back")
	cmd.Flags().BoolVar(&deleteTopic, "delete-topic", true, "delete the topic at the end, to free the disk")
	return cmd
}
