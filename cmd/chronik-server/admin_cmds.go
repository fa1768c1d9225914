package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronik-stream/chronik/internal/admin"
)

// adminFlags are the flags every command of the admin HTTP API takes.
type adminFlags struct {
	addr    string
	timeout time.Duration
	output  *string
}

func addAdminFlags(cmd *cobra.Command) *adminFlags {
	f := &adminFlags{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.addr, "admin-addr", "localhost:8080", "metrics/admin HTTP address (host:port) of the node to ask; a cluster node's is :<8080+id-1> by default")
	pf.DurationVar(&f.timeout, "timeout", 15*time.Second, "how long to wait for the node")
	f.output = addOutputFlag(cmd)
	return f
}

// prepare checks the flags and returns the output format, a client of
// --admin-addr and a context bounded by --timeout.
func (f *adminFlags) prepare() (outputFormat, *admin.Client, context.Context, context.CancelFunc, error) {
	out, err := parseOutputFormat(*f.output)
	if err != nil {
		return "", nil, nil, nil, usageError{err}
	}
	addr, err := normalizeAdminAddr(f.addr)
	if err != nil {
		return "", nil, nil, nil, usageError{err}
	}
	if f.timeout <= 0 {
		return "", nil, nil, nil, usageError{fmt.Errorf("--timeout must be positive")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	return out, admin.NewClient(addr, f.timeout), ctx, cancel, nil
}

// normalizeAdminAddr accepts host:port, :port (localhost) or an
// http:// URL of a node's admin server.
func normalizeAdminAddr(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "http://"), "/")
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("--admin-addr %q: want host:port (%v)", s, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("--admin-addr %q: bad port %q", s, port)
	}
	if host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port), nil
}

func newClusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect the cluster and decommission nodes through a node's admin API",
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List the nodes, which ones the asked node reaches, and the metadata leader",
		Long: `Ask one node (--admin-addr) for the cluster as it sees it: the cluster id, the
leader of the metadata (catalog) raft group, and every member with its Kafka
and admin addresses, whether the asked node has a working raft connection to
it (alive/unreachable) and whether the metadata leader last recorded it live.`,
		Example: `  chronik-server cluster status
  chronik-server cluster status --admin-addr node2:8081 --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, cl, ctx, cancel, err := f.prepare()
			if err != nil {
				return err
			}
			defer cancel()
			st, err := cl.Cluster(ctx)
			if err != nil {
				return err
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			return writeClusterTable(cmd.OutOrStdout(), st)
		},
	})
	cmd.AddCommand(newDecommissionCommand(f), newReplaceCommand(f))
	return cmd
}

func newReplaceCommand(f *adminFlags) *cobra.Command {
	var nodeID uint64
	cmd := &cobra.Command{
		Use:   "replace",
		Short: "Let a node that lost its data directory come back empty under its id",
		Long: `A node whose data directory was lost (a dead disk, a wiped volume) is
refused by its peers when it starts again: under its old id, with none of
its raft state, it could vote twice in a term or be counted for entries it
no longer holds. Run this (against another node, with the lost node
stopped) to give it the way back: every raft group it was in drops it and
then adds it again as a new, empty member, which catches up from the others
and then votes. Start the node on its empty data directory (same node id,
peers naming the live members) once this returns; it joins the cluster.

Partitions with a single replica, on the lost node, lost their data; they
come back empty. A cluster status shows "replacing" until every group took
the node back.`,
		Example: `  chronik-server cluster replace --node-id 3 --admin-addr node1:8080`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodeID == 0 {
				return usageError{errors.New("--node-id is required (the node that lost its data)")}
			}
			out, cl, ctx, cancel, err := f.prepare()
			if err != nil {
				return err
			}
			defer cancel()
			st, err := cl.Replace(ctx, nodeID)
			if err != nil {
				return err
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Node %d is being replaced: start it on its empty data directory; it rejoins every group it held (%d partitions).\n", nodeID, st.Replicas)
			return nil
		},
	}
	cmd.Flags().Uint64Var(&nodeID, "node-id", 0, "the node that lost its data directory")
	return cmd
}

func newDecommissionCommand(f *adminFlags) *cobra.Command {
	var nodeID uint64
	var cancelIt, wait bool
	cmd := &cobra.Command{
		Use:   "decommission",
		Short: "Move every replica and leadership off a node, then remove it from the cluster",
		Long: `Ask the cluster (through the node at --admin-addr) to decommission node
--node-id: the metadata leader moves each of its replicas to another node
(as reassignments, at most cluster.rebalance.max_concurrent_moves at once,
throttled by cluster.rebalance.throttle_bytes_per_sec), its leaderships go
with them, and once it holds none it leaves the metadata group and the
broker list. The node then stops on its own with a message saying so.

It is refused, with the reason, when the nodes that would remain cannot hold
every partition's replicas (a topic with 3 replicas needs 3 other nodes).
--cancel stops a decommission in progress (replicas already moved stay).
--wait waits (up to --timeout) until the node has left.`,
		Example: `  chronik-server cluster decommission --node-id 4
  chronik-server cluster decommission --node-id 4 --wait --timeout 30m
  chronik-server cluster decommission --node-id 4 --cancel`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodeID == 0 {
				return usageError{errors.New("--node-id is required (the node to decommission)")}
			}
			out, cl, ctx, cancel, err := f.prepare()
			if err != nil {
				return err
			}
			defer cancel()
			st, err := cl.Decommission(ctx, nodeID, cancelIt)
			if err != nil {
				return err
			}
			for wait && !cancelIt {
				cs, err := cl.Cluster(ctx)
				if err != nil {
					return err
				}
				i := slices.IndexFunc(cs.Nodes, func(n admin.NodeStatus) bool { return n.ID == nodeID && n.KafkaAddr != "" })
				if i < 0 {
					st = admin.NodeStatus{ID: nodeID}
					break
				}
				st = cs.Nodes[i]
				select {
				case <-ctx.Done():
					return fmt.Errorf("node %d still holds %d replicas: %w", nodeID, st.Replicas, ctx.Err())
				case <-time.After(time.Second):
				}
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			w := cmd.OutOrStdout()
			switch {
			case cancelIt:
				fmt.Fprintf(w, "Node %d is no longer being decommissioned; it holds %d replicas.\n", nodeID, st.Replicas)
			case st.KafkaAddr == "":
				fmt.Fprintf(w, "Node %d was decommissioned and left the cluster.\n", nodeID)
			default:
				fmt.Fprintf(w, "Node %d is being decommissioned; %d replicas still to move.\n", nodeID, st.Replicas)
			}
			return nil
		},
	}
	cmd.Flags().Uint64Var(&nodeID, "node-id", 0, "the node to decommission")
	cmd.Flags().BoolVar(&cancelIt, "cancel", false, "stop a decommission in progress")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the node has left the cluster")
	return cmd
}

func newRaftRebalanceCommand(f *adminFlags) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "rebalance",
		Short: "Show and apply the moves that balance replicas and leaderships",
		Long: `Ask the node at --admin-addr for the moves that give every live node as many
replicas, and as many preferred leaderships, as the others (within one), and
drain the nodes being decommissioned; without --dry-run they are applied at
once as partition reassignments (the first replica of each is its preferred
leader, which leadership moves to). The metadata leader does the same on its
own every cluster.rebalance.interval_secs and when a node joins, unless
cluster.rebalance.enabled = false.`,
		Example: `  chronik-server raft rebalance --dry-run
  chronik-server raft rebalance --admin-addr node2:8081 --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, cl, ctx, cancel, err := f.prepare()
			if err != nil {
				return err
			}
			defer cancel()
			plan, err := cl.Rebalance(ctx, dryRun)
			if err != nil {
				return err
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), plan)
			}
			w := cmd.OutOrStdout()
			if len(plan.Moves) == 0 {
				fmt.Fprintln(w, "The cluster is balanced: nothing to move.")
				return nil
			}
			t := newTable("TOPIC", "PARTITION", "FROM", "TO")
			for _, m := range plan.Moves {
				t.add(m.Topic, m.Partition, fmt.Sprint(m.From), fmt.Sprint(m.To))
			}
			verb := "Moving"
			if plan.DryRun {
				verb = "Would move (dry run)"
			}
			fmt.Fprintf(w, "%s %d partition(s):\n\n", verb, len(plan.Moves))
			return t.write(w)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only show the plan")
	return cmd
}

func writeClusterTable(w io.Writer, st admin.ClusterStatus) error {
	lead := "none (election under way)"
	if st.MetadataLeader != 0 {
		lead = fmt.Sprintf("node %d (term %d)", st.MetadataLeader, st.MetadataTerm)
	}
	fmt.Fprintf(w, "Cluster %s (%s), as node %d sees it; metadata leader: %s\n\n", st.ClusterID, st.Mode, st.NodeID, lead)
	t := newTable("NODE", "KAFKA", "ADMIN", "STATE", "LIVE", "METADATA", "REPLICAS")
	for _, n := range st.Nodes {
		role := "-"
		switch {
		case n.MetadataLeader:
			role = "leader"
		case n.MetadataVoter:
			role = "voter"
		default:
			role = "learner"
		}
		id := strconv.FormatUint(n.ID, 10)
		if n.AnsweringNode {
			id += "*"
		}
		state := n.State
		if n.Decommissioning {
			state += ", decommissioning"
		}
		if n.Replacing {
			state += ", replacing"
		}
		t.add(id, n.KafkaAddr, n.AdminAddr, state, n.Live, role, n.Replicas)
	}
	return t.write(w)
}

func newRaftCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "raft",
		Short: "Inspect and move raft leaderships through a node's admin API",
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(newRaftStatusCommand(f), newRaftStepDownCommand(f), newRaftTransferCommand(f), newRaftRebalanceCommand(f))
	return cmd
}

func newRaftStatusCommand(f *adminFlags) *cobra.Command {
	var nodeID uint64
	var topic string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Role, term, commit index and ISR of every raft group on a node",
		Long: `Show every raft group hosted on a node: the catalog (__cluster_metadata/0)
and each partition replica, with this replica's role, the leader, the term,
the commit and applied indexes, the replicas and the ISR, and for the groups
it leads how many entries each follower is behind.

The node is the one at --admin-addr, or with --node-id N the cluster member N,
whose admin address is looked up in the cluster status of --admin-addr.`,
		Example: `  chronik-server raft status
  chronik-server raft status --node-id 2
  chronik-server raft status --admin-addr localhost:8081 --topic orders -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, cl, ctx, cancel, err := f.prepare()
			if err != nil {
				return err
			}
			defer cancel()
			if cmd.Flags().Changed("node-id") {
				if nodeID == 0 {
					return usageError{errors.New("--node-id must be a node id (1 or more)")}
				}
				if cl, err = resolveNode(ctx, cl, nodeID, f.timeout); err != nil {
					return err
				}
			}
			st, err := cl.Partitions(ctx)
			if err != nil {
				return err
			}
			if topic != "" {
				st.Partitions = slices.DeleteFunc(st.Partitions, func(p admin.PartitionStatus) bool { return p.Topic != topic })
			}
			if out == outputJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			return writeRaftTable(cmd.OutOrStdout(), cl.Addr, st)
		},
	}
	cmd.Flags().Uint64Var(&nodeID, "node-id", 0, "show cluster member N instead of the node at --admin-addr")
	cmd.Flags().StringVar(&topic, "topic", "", "only this topic's partitions")
	return cmd
}

// resolveNode finds node id's admin address in the cluster status of the
// node cl talks to. A node that never registered one (it has not started
// since it was configured) gets the cluster default, its Kafka host and
// port 8080+id-1.
func resolveNode(ctx context.Context, cl *admin.Client, id uint64, timeout time.Duration) (*admin.Client, error) {
	st, err := cl.Cluster(ctx)
	if err != nil {
		return nil, fmt.Errorf("looking up node %d: %w", id, err)
	}
	var ids []string
	for _, n := range st.Nodes {
		ids = append(ids, strconv.FormatUint(n.ID, 10))
		if n.ID != id {
			continue
		}
		addr := n.AdminAddr
		if addr == "" {
			host, _, err := net.SplitHostPort(n.KafkaAddr)
			if err != nil {
				return nil, fmt.Errorf("node %d has no admin address and a bad Kafka address %q", id, n.KafkaAddr)
			}
			addr = net.JoinHostPort(host, strconv.FormatUint(8080+id-1, 10))
		}
		return admin.NewClient(addr, timeout), nil
	}
	return nil, usageError{fmt.Errorf("--node-id %d: the cluster has no such node (nodes %s)", id, strings.Join(ids, ", "))}
}

func writeRaftTable(w io.Writer, addr string, st admin.PartitionsStatus) error {
	fmt.Fprintf(w, "Node %d (%s)\n\n", st.NodeID, addr)
	t := newTable("TOPIC", "PARTITION", "ROLE", "LEADER", "TERM", "COMMIT", "APPLIED", "REPLICAS", "ISR", "FOLLOWER LAG")
	var failed []admin.PartitionStatus
	for _, p := range st.Partitions {
		leader := "-"
		if p.Leader != 0 {
			leader = strconv.FormatUint(p.Leader, 10)
		}
		t.add(p.Topic, p.Partition, p.Role, leader, p.Term, p.Commit, p.Applied, p.Replicas, p.ISR, followerLag(p.Followers))
		if p.Error != "" {
			failed = append(failed, p)
		}
	}
	if err := t.write(w); err != nil {
		return err
	}
	for _, p := range failed {
		fmt.Fprintf(w, "\n%s/%d failed: %s\n", p.Topic, p.Partition, p.Error)
	}
	return nil
}

// followerLag writes a leader's followers as id:entries, with "!" after a
// follower out of sync: "2:0 3:15!".
func followerLag(fs []admin.FollowerStatus) string {
	if len(fs) == 0 {
		return "-"
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%d:%d", f.ID, f.LagEntries)
		if !f.InSync {
			parts[i] += "!"
		}
	}
	return strings.Join(parts, " ")
}

// partitionArgs are --topic and --partition, which go together.
type partitionArgs struct {
	topic     string
	partition int32
}

func (p *partitionArgs) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.topic, "topic", "", "topic of the partition")
	cmd.Flags().Int32Var(&p.partition, "partition", 0, "partition number")
}

// check returns whether a partition was named, and a usage error when
// only one of the two flags was given.
func (p *partitionArgs) check(cmd *cobra.Command, required bool) (bool, error) {
	topicSet, partSet := cmd.Flags().Changed("topic"), cmd.Flags().Changed("partition")
	switch {
	case topicSet != partSet:
		return false, usageError{errors.New("--topic and --partition go together: give both or neither")}
	case !topicSet && required:
		return false, usageError{errors.New("--topic and --partition are required")}
	case topicSet && p.topic == "":
		return false, usageError{errors.New("--topic must not be empty")}
	case partSet && p.partition < 0:
		return false, usageError{fmt.Errorf("--partition %d: must be 0 or more", p.partition)}
	}
	return topicSet, nil
}

func newRaftStepDownCommand(f *adminFlags) *cobra.Command {
	var pa partitionArgs
	cmd := &cobra.Command{
		Use:   "step-down",
		Short: "Hand the node's leaderships to in-sync followers",
		Long: `Ask the node at --admin-addr to hand every raft leadership it holds (its
partitions and, if it leads it, the catalog) to in-sync followers, and wait
until they moved (at most 5 s). With --topic and --partition, only that
partition's leadership moves, to its most caught-up in-sync follower.

It exits non-zero when a leadership could not move (no in-sync follower).
With preferred-leader balancing on (raft.advanced.enable_leadership_transfer),
partitions whose preferred replica is this node move back to it once it is in
sync again: step down right before a restart or maintenance.`,
		Example: `  chronik-server raft step-down --admin-addr localhost:8081
  chronik-server raft step-down --topic orders --partition 0`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			one, err := pa.check(cmd, false)
			if err != nil {
				return err
			}
			out, cl, ctx, cancel, err := f.prepare()
			if err != nil {
				return err
			}
			defer cancel()
			if one {
				return runTransfer(ctx, cmd.OutOrStdout(), out, cl, pa, 0, false)
			}
			res, err := cl.StepDown(ctx)
			if err != nil {
				return err
			}
			if out == outputJSON {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				writeStepDown(cmd.OutOrStdout(), res)
			}
			if len(res.Remaining) > 0 {
				var names []string
				for _, p := range res.Remaining {
					names = append(names, fmt.Sprintf("%s/%d", p.Topic, p.Partition))
				}
				return fmt.Errorf("node %d still leads %s: no in-sync follower took them", res.NodeID, strings.Join(names, ", "))
			}
			return nil
		},
	}
	pa.add(cmd)
	return cmd
}

func writeStepDown(w io.Writer, res admin.StepDownResult) {
	if len(res.Moved) == 0 && len(res.Remaining) == 0 {
		fmt.Fprintf(w, "Node %d leads nothing.\n", res.NodeID)
		return
	}
	t := newTable("TOPIC", "PARTITION", "NEW LEADER", "TERM")
	for _, m := range res.Moved {
		t.add(m.Topic, m.Partition, m.Leader, m.Term)
	}
	for _, p := range res.Remaining {
		t.add(p.Topic, p.Partition, fmt.Sprintf("still %d", res.NodeID), "-")
	}
	fmt.Fprintf(w, "Node %d handed over %d leadership(s):\n\n", res.NodeID, len(res.Moved))
	t.write(w)
}

func newRaftTransferCommand(f *adminFlags) *cobra.Command {
	var pa partitionArgs
	var to uint64
	cmd := &cobra.Command{
		Use:   "transfer-leader",
		Short: "Move one partition's leadership to a given in-sync replica",
		Long: `Move the leadership of --topic/--partition to replica --to (any in-sync one if
--to is not given). The request goes to --admin-addr; if that node does not
lead the partition, it is sent once more to the leader it names. It fails,
saying why, when --to is not a replica or not in sync.`,
		Example: `  chronik-server raft transfer-leader --topic orders --partition 0 --to 2`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := pa.check(cmd, true); err != nil {
				return err
			}
			if cmd.Flags().Changed("to") && to == 0 {
				return usageError{errors.New("--to must be a node id (1 or more)")}
			}
			out, cl, ctx, cancel, err := f.prepare()
			if err != nil {
				return err
			}
			defer cancel()
			return runTransfer(ctx, cmd.OutOrStdout(), out, cl, pa, to, true)
		},
	}
	pa.add(cmd)
	cmd.Flags().Uint64Var(&to, "to", 0, "node id of the replica to lead (default: the most caught-up in-sync follower)")
	return cmd
}

// runTransfer asks cl to move pa's leadership to to; with follow, a node
// that names another leader is asked again at that leader.
func runTransfer(ctx context.Context, w io.Writer, out outputFormat, cl *admin.Client, pa partitionArgs, to uint64, follow bool) error {
	res, err := cl.TransferLeader(ctx, pa.topic, pa.partition, to)
	var ne *admin.NodeError
	if follow && errors.As(err, &ne) && ne.API != nil && ne.API.LeaderAdminAddr != "" {
		res, err = admin.NewClient(ne.API.LeaderAdminAddr, cl.HTTP.Timeout).TransferLeader(ctx, pa.topic, pa.partition, to)
	}
	if err != nil {
		return err
	}
	if out == outputJSON {
		return writeJSON(w, res)
	}
	if res.Leader == res.From {
		fmt.Fprintf(w, "%s/%d: node %d already leads it (term %d)\n", res.Topic, res.Partition, res.Leader, res.Term)
		return nil
	}
	fmt.Fprintf(w, "%s/%d: leadership moved from node %d to node %d (term %d)\n", res.Topic, res.Partition, res.From, res.Leader, res.Term)
	return nil
}
