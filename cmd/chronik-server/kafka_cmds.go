package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaFlags are the flags of the commands that speak Kafka to any node.
type kafkaFlags struct {
	bootstrap string
	timeout   time.Duration
	output    *string
}

func addKafkaFlags(cmd *cobra.Command) *kafkaFlags {
	f := &kafkaFlags{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.bootstrap, "bootstrap", "localhost:9092", "comma-separated Kafka addresses of any nodes")
	pf.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the cluster")
	f.output = addOutputFlag(cmd)
	return f
}

// connect checks the flags and returns the output format, an admin client
// (closed by the returned func) and a context bounded by --timeout.
func (f *kafkaFlags) connect() (outputFormat, *kadm.Client, context.Context, func(), error) {
	out, err := parseOutputFormat(*f.output)
	if err != nil {
		return "", nil, nil, nil, usageError{err}
	}
	seeds := splitList(f.bootstrap)
	if len(seeds) == 0 {
		return "", nil, nil, nil, usageError{errors.New("--bootstrap: give at least one host:port")}
	}
	if f.timeout <= 0 {
		return "", nil, nil, nil, usageError{errors.New("--timeout must be positive")}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RetryTimeout(f.timeout))
	if err != nil {
		return "", nil, nil, nil, usageError{fmt.Errorf("--bootstrap %q: %w", f.bootstrap, err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	return out, kadm.NewClient(cl), ctx, func() { cancel(); cl.Close() }, nil
}

// kafkaError names the nodes asked when a request found none of them.
func (f *kafkaFlags) kafkaError(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer from %s within %v", what, f.bootstrap, f.timeout)
	}
	return fmt.Errorf("%s (via %s): %w", what, f.bootstrap, err)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseConfigs turns the key=value pairs given to flag into topic configs.
func parseConfigs(flag string, pairs []string) (map[string]*string, error) {
	out := map[string]*string{}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--%s %q: want key=value", flag, kv)
		}
		out[strings.TrimSpace(k)] = &v
	}
	return out, nil
}

func newTopicCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe and delete topics (speaks Kafka to any node)",
	}
	f := addKafkaFlags(cmd)
	cmd.AddCommand(newTopicCreateCommand(f), newTopicListCommand(f), newTopicDescribeCommand(f), newTopicDeleteCommand(f))
	return cmd
}

func newTopicCreateCommand(f *kafkaFlags) *cobra.Command {
	var partitions int32
	var rf int16
	var configs []string
	cmd := &cobra.Command{
		Use:     "create TOPIC",
		Short:   "Create a topic",
		Example: `  chronik-server topic create orders --partitions 6 --replication-factor 3 --config retention.ms=86400000`,
		Args:    exactArgs(1, "a topic name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if partitions < 1 {
				return usageError{fmt.Errorf("--partitions %d: must be 1 or more", partitions)}
			}
			if rf == 0 || rf < -1 {
				return usageError{fmt.Errorf("--replication-factor %d: must be 1 or more (-1: the cluster default)", rf)}
			}
			cfgs, err := parseConfigs("config", configs)
			if err != nil {
				return usageError{err}
			}
			out, adm, ctx, done, err := f.connect()
			if err != nil {
				return err
			}
			defer done()
			res, err := adm.CreateTopic(ctx, partitions, rf, cfgs, args[0])
			if err == nil {
				err = res.Err
			}
			if err != nil {
				return f.kafkaError("create topic "+args[0], err)
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{
					"topic": res.Topic, "partitions": res.NumPartitions, "replication_factor": res.ReplicationFactor,
				})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created topic %s (%d partitions, replication factor %d)\n", res.Topic, res.NumPartitions, res.ReplicationFactor)
			return nil
		},
	}
	cmd.Flags().Int32Var(&partitions, "partitions", 1, "number of partitions")
	cmd.Flags().Int16Var(&rf, "replication-factor", -1, "replicas per partition (-1: the cluster default)")
	cmd.Flags().StringArrayVar(&configs, "config", nil, "topic config key=value (repeatable)")
	return cmd
}

// exactArgs is cobra.ExactArgs with a message that says what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s (got %d arguments)", cmd.CommandPath(), what, len(args))}
		}
		return nil
	}
}

// noArgs is cobra.NoArgs as a usage error (exit code 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments (got %q)", cmd.CommandPath(), args)}
	}
	return nil
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("%s takes %s", cmd.CommandPath(), what)}
		}
		return nil
	}
}

// topicRow is one topic in `topic list`.
type topicRow struct {
	Topic             string `json:"topic"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

func newTopicListCommand(f *kafkaFlags) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, adm, ctx, done, err := f.connect()
			if err != nil {
				return err
			}
			defer done()
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			tds, err := list(ctx)
			if err != nil {
				return f.kafkaError("list topics", err)
			}
			rows := []topicRow{}
			for _, td := range tds.Sorted() {
				if td.Err != nil {
					continue
				}
				rf := 0
				for _, p := range td.Partitions {
					rf = max(rf, len(p.Replicas))
				}
				rows = append(rows, topicRow{Topic: td.Topic, Partitions: len(td.Partitions), ReplicationFactor: rf, Internal: td.IsInternal})
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			t := newTable("TOPIC", "PARTITIONS", "REPLICATION")
			for _, r := range rows {
				t.add(r.Topic, r.Partitions, r.ReplicationFactor)
			}
			return t.write(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics (__consumer_offsets)")
	return cmd
}

// partitionRow is one partition in `topic describe`.
type partitionRow struct {
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	StartOffset int64   `json:"start_offset"`
	EndOffset   int64   `json:"end_offset"`
	Error       string  `json:"error,omitempty"`
}

func newTopicDescribeCommand(f *kafkaFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "describe TOPIC...",
		Short:   "Show each partition's leader, replicas, ISR and offsets",
		Example: `  chronik-server topic describe orders --bootstrap node1:9092,node2:9093`,
		Args:    minArgs(1, "one or more topic names"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, adm, ctx, done, err := f.connect()
			if err != nil {
				return err
			}
			defer done()
			tds, err := adm.ListTopicsWithInternal(ctx, args...)
			if err != nil {
				return f.kafkaError("describe topics", err)
			}
			for _, name := range args {
				if td, ok := tds[name]; !ok || td.Err != nil {
					why := "not found"
					if ok {
						why = td.Err.Error()
					}
					return fmt.Errorf("topic %s: %s", name, why)
				}
			}
			starts, serr := adm.ListStartOffsets(ctx, args...)
			ends, eerr := adm.ListEndOffsets(ctx, args...)
			if err := errors.Join(serr, eerr); err != nil {
				return f.kafkaError("list offsets", err)
			}
			rows := []partitionRow{}
			for _, td := range tds.Sorted() {
				for _, p := range td.Partitions.Sorted() {
					r := partitionRow{Topic: p.Topic, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
						Replicas: nonNilInt32(p.Replicas), ISR: nonNilInt32(p.ISR), StartOffset: -1, EndOffset: -1}
					if o, ok := starts.Lookup(p.Topic, p.Partition); ok && o.Err == nil {
						r.StartOffset = o.Offset
					}
					if o, ok := ends.Lookup(p.Topic, p.Partition); ok && o.Err == nil {
						r.EndOffset = o.Offset
					}
					if p.Err != nil {
						r.Error = p.Err.Error()
					}
					rows = append(rows, r)
				}
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			t := newTable("TOPIC", "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "START", "END")
			for _, r := range rows {
				t.add(r.Topic, r.Partition, r.Leader, r.LeaderEpoch, r.Replicas, r.ISR, r.StartOffset, r.EndOffset)
			}
			return t.write(cmd.OutOrStdout())
		},
	}
}

func nonNilInt32(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

func newTopicDeleteCommand(f *kafkaFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TOPIC...",
		Short: "Delete topics and their data",
		Args:  minArgs(1, "one or more topic names"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, adm, ctx, done, err := f.connect()
			if err != nil {
				return err
			}
			defer done()
			res, err := adm.DeleteTopics(ctx, args...)
			if err != nil {
				return f.kafkaError("delete topics", err)
			}
			var errs []error
			deleted := []string{}
			for _, r := range res.Sorted() {
				if r.Err != nil {
					errs = append(errs, fmt.Errorf("delete topic %s: %w", r.Topic, r.Err))
					continue
				}
				deleted = append(deleted, r.Topic)
			}
			if out == outputJSON {
				if err := writeJSON(cmd.OutOrStdout(), map[string]any{"deleted": deleted}); err != nil {
					return err
				}
			} else {
				for _, t := range deleted {
					fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", t)
				}
			}
			return errors.Join(errs...)
		},
	}
}

func newGroupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List and describe consumer groups (speaks Kafka to any node)",
	}
	f := addKafkaFlags(cmd)
	cmd.AddCommand(newGroupListCommand(f), newGroupDescribeCommand(f))
	return cmd
}

// groupRow is one group in `group list`.
type groupRow struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

func newGroupListCommand(f *kafkaFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List consumer groups",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, adm, ctx, done, err := f.connect()
			if err != nil {
				return err
			}
			defer done()
			gs, err := adm.ListGroups(ctx)
			if err != nil {
				return f.kafkaError("list groups", err)
			}
			rows := []groupRow{}
			for _, g := range gs.Sorted() {
				rows = append(rows, groupRow{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator})
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			t := newTable("GROUP", "STATE", "PROTOCOL TYPE", "COORDINATOR")
			for _, r := range rows {
				t.add(r.Group, r.State, r.ProtocolType, r.Coordinator)
			}
			return t.write(cmd.OutOrStdout())
		},
	}
}

// groupDescription is one group in `group describe`.
type groupDescription struct {
	Group       string        `json:"group"`
	State       string        `json:"state"`
	Protocol    string        `json:"protocol"`
	Coordinator int32         `json:"coordinator"`
	Members     []groupMember `json:"members"`
	Offsets     []groupOffset `json:"offsets"`
	TotalLag    int64         `json:"total_lag"`
}

type groupMember struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	Host     string `json:"host"`
}

type groupOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"`
}

func newGroupDescribeCommand(f *kafkaFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show a group's state, members, committed offsets and lag",
		Args:  minArgs(1, "one or more group names"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, adm, ctx, done, err := f.connect()
			if err != nil {
				return err
			}
			defer done()
			lags, err := adm.Lag(ctx, args...)
			if err != nil {
				return f.kafkaError("describe groups", err)
			}
			descs := []groupDescription{}
			for _, name := range args {
				l, ok := lags[name]
				if !ok {
					return fmt.Errorf("group %s: no answer", name)
				}
				if err := l.Error(); err != nil {
					return fmt.Errorf("group %s: %w", name, err)
				}
				descs = append(descs, describeGroup(l))
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), descs)
			}
			for i, d := range descs {
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				writeGroupDescription(cmd.OutOrStdout(), d)
			}
			return nil
		},
	}
}

func describeGroup(l kadm.DescribedGroupLag) groupDescription {
	d := groupDescription{Group: l.Group, State: l.State, Protocol: l.Protocol, Coordinator: l.Coordinator.NodeID,
		Members: []groupMember{}, Offsets: []groupOffset{}}
	for _, m := range l.Members {
		d.Members = append(d.Members, groupMember{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost})
	}
	for _, ml := range l.Lag.Sorted() {
		o := groupOffset{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			o.Member = ml.Member.MemberID
		}
		if ml.Lag > 0 {
			d.TotalLag += ml.Lag
		}
		d.Offsets = append(d.Offsets, o)
	}
	sort.SliceStable(d.Offsets, func(i, j int) bool {
		a, b := d.Offsets[i], d.Offsets[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	slices.SortFunc(d.Members, func(a, b groupMember) int { return strings.Compare(a.ID, b.ID) })
	return d
}

func writeGroupDescription(w io.Writer, d groupDescription) {
	fmt.Fprintf(w, "Group %s: %s, protocol %s, coordinator node %d, %d member(s), total lag %d\n\n",
		d.Group, d.State, cellText(d.Protocol), d.Coordinator, len(d.Members), d.TotalLag)
	t := newTable("TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER")
	for _, o := range d.Offsets {
		t.add(o.Topic, o.Partition, o.Committed, o.End, o.Lag, o.Member)
	}
	t.write(w)
}
