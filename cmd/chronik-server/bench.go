package main

import (
	"context"
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
	pf.IntVar(&o.Size, "size", 1024, "message size in bytes")
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
	pf.StringVar(&group, "group", "", "consumer group (consume; default a new one per run)")
	pf.BoolVar(&asJSON, "json", false, "print the result as JSON")

	run := func(mode string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			o.Bootstrap = strings.Split(bootstrap, ",")
			if o.Size < 1 {
				return usageError{fmt.Errorf("--size must be at least 1")}
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
			var err error
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
	return cmd
}
