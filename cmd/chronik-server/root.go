package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// globalFlags are accepted before the subcommand, as the roadmap writes
// them: chronik-server --node-id 1 --advertised-addr localhost:9092 standalone.
type globalFlags struct {
	configFile string
	// overrides maps flag names to config keys.
	keys map[string]string
}

// usageError marks errors in the command line (exit code 2).
type usageError struct{ error }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newRootCommand() *cobra.Command {
	g := &globalFlags{keys: map[string]string{
		"node-id":         "node_id",
		"advertised-addr": "advertised_addr",
		"listen":          "listen_addr",
		"data-dir":        "data_dir",
		"metrics-addr":    "metrics_addr",
		"log-level":       "log_level",
		"log-format":      "log_format",
		"peers":           "cluster.peers",
	}}
	root := &cobra.Command{
		Use:   "chronik-server",
		Short: "A Kafka-compatible streaming server",
		Long: `chronik-server speaks the Kafka wire protocol, so every Kafka client works
unchanged. It runs as a single node on a local durable log (the default, no
set-up), or as a member of a cluster in which every partition is its own Raft
group.

Settings come from flags, then CHRONIK_* environment variables, then the
TOML file given by --config, then built-in defaults (docs/configuration.md).`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "TOML configuration file")
	pf.Uint64("node-id", 1, "this node's id, unique in the cluster (node_id)")
	pf.String("advertised-addr", "localhost:9092", "host:port clients use to reach this node (advertised_addr)")
	pf.String("listen", "", "address the Kafka listener binds (listen_addr; default :<advertised port>)")
	pf.String("data-dir", "./data", "data directory (data_dir; in cluster mode default ./data/node-<id>)")
	pf.String("metrics-addr", ":8080", "address of /metrics, /health, /ready and /admin/ (metrics_addr; in cluster mode default :<8080+id-1>; empty disables)")
	pf.String("log-level", "info", "debug, info, warn or error (log_level)")
	pf.String("log-format", "text", "text or json (log_format)")
	pf.String("peers", "", "cluster members: host:port,... in node-id order, or id@host:port,... (cluster.peers)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	operator := []*cobra.Command{newClusterCommand(), newRaftCommand(), newTopicCommand(), newGroupCommand()}
	for _, c := range operator {
		hideServerFlagsInHelp(c, g)
	}
	root.AddCommand(operator...)
	root.AddCommand(newStandaloneCommand(g), newBenchCommand(), newVersionCommand())
	return root
}

// hideServerFlagsInHelp keeps the server's global flags (--data-dir,
// --peers, ...) out of the help of an operator command, which does not
// read them.
func hideServerFlagsInHelp(cmd *cobra.Command, g *globalFlags) {
	parentHelp := cmd.HelpFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		server := c.Root().PersistentFlags()
		var hidden []*pflag.Flag
		server.VisitAll(func(f *pflag.Flag) {
			if _, isServer := g.keys[f.Name]; (isServer || f.Name == "config") && !f.Hidden {
				f.Hidden = true
				hidden = append(hidden, f)
			}
		})
		defer func() {
			for _, f := range hidden {
				f.Hidden = false
			}
		}()
		parentHelp(c, args)
	})
}

// load builds the configuration from the file, the environment and the
// flags the operator set, then applies the cluster-mode defaults that
// depend on the node id.
func (g *globalFlags) load(cmd *cobra.Command, extra map[string]string) (config.Config, error) {
	overrides := map[string]string{}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if key, ok := g.keys[f.Name]; ok {
			overrides[key] = f.Value.String()
		}
	})
	for k, v := range extra {
		overrides[k] = v
	}
	cfg, err := config.Load(g.configFile, os.LookupEnv, overrides)
	if err != nil {
		return cfg, err
	}
	if cfg.Cluster.Enabled {
		def := config.Default()
		_, envData := os.LookupEnv(config.EnvName("data_dir"))
		_, envMetrics := os.LookupEnv(config.EnvName("metrics_addr"))
		if _, set := overrides["data_dir"]; !set && !envData && cfg.DataDir == def.DataDir {
			cfg.DataDir = strings.TrimSuffix(def.DataDir, "/") + "/node-" + strconv.FormatUint(cfg.NodeID, 10)
		}
		if _, set := overrides["metrics_addr"]; !set && !envMetrics && cfg.MetricsAddr == def.MetricsAddr {
			cfg.MetricsAddr = ":" + strconv.FormatUint(8080+cfg.NodeID-1, 10)
		}
		if err := cfg.Validate(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h).With("node", cfg.NodeID)
}

func newStandaloneCommand(g *globalFlags) *cobra.Command {
	var raft bool
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run the server",
		Long: `Run the server. Without --raft it is a single node on its local durable log,
serving Kafka on the advertised port with its data in ./data. With --raft it
joins the cluster described by --peers, CHRONIK_CLUSTER_PEERS or the config
file's [cluster.peers]; every partition is then a Raft group over its replicas.

SIGTERM or SIGINT stops it gracefully: it stops accepting requests, answers
the ones in flight, flushes and exits 0. A second signal exits at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			extra := map[string]string{}
			if raft {
				extra["cluster.enabled"] = "true"
			}
			cfg, err := g.load(cmd, extra)
			if err != nil {
				return usageError{err}
			}
			return run(cfg)
		},
	}
	cmd.Flags().BoolVar(&raft, "raft", false, "run as a member of a Raft cluster (cluster.enabled)")
	return cmd
}

func run(cfg config.Config) error {
	logger := newLogger(cfg)
	for _, w := range cfg.Warnings() {
		logger.Warn("configuration: " + w)
	}
	for _, name := range config.UnknownEnv(os.Environ()) {
		logger.Warn("ignoring unknown environment variable", "name", name)
	}
	setMemoryLimit(cfg, logger)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sigs
		cancel()
	}()
	node, err := server.Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-node.Fatal():
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		node.Shutdown(sctx)
		return node.Err()
	}
	go func() {
		<-sigs
		logger.Warn("second signal: exiting at once")
		os.Exit(1)
	}()
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := node.Shutdown(sctx); err != nil {
		return err
	}
	logger.Info("stopped cleanly")
	return nil
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "chronik-server", version)
		},
	}
}
