package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"

	"github.com/chronik-stream/chronik/internal/admin"
	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/replica"
)

// transferTimeout bounds how long a transfer-leader request waits for the
// new leader: raft itself aborts a transfer the target does not complete
// within an election timeout, so this is generous.
const transferTimeout = 10 * time.Second

// registerAdmin adds the JSON admin API (package admin describes it) to
// the metrics HTTP server.
func (n *Node) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/cluster", n.whenStarted(n.handleAdminCluster))
	mux.HandleFunc("GET /admin/partitions", n.whenStarted(n.handleAdminPartitions))
	mux.HandleFunc("POST /admin/partitions/{topic}/{partition}/transfer-leader", n.whenStarted(n.handleAdminTransferLeader))
	mux.HandleFunc("POST /admin/step-down", n.whenStarted(n.handleAdminStepDown))
	mux.HandleFunc("POST /admin/rebalance", n.whenStarted(n.handleAdminRebalance))
	mux.HandleFunc("POST /admin/nodes/{id}/decommission", n.whenStarted(n.handleAdminDecommission))
	mux.HandleFunc("POST /admin/nodes/{id}/replace", n.whenStarted(n.handleAdminReplace))
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		writeAdminError(w, http.StatusNotFound, admin.Error{Message: fmt.Sprintf("no admin endpoint %s %s", r.Method, r.URL.Path)})
	})
}

// whenStarted answers 503 until the node has started: the admin API reads
// parts that do not exist before.
func (n *Node) whenStarted(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !n.started.Load() {
			phase := "starting"
			if p := n.phase.Load(); p != nil && *p != "" {
				phase = *p
			}
			writeAdminError(w, http.StatusServiceUnavailable, admin.Error{Message: fmt.Sprintf("node %d is not serving yet: %s", n.cfg.NodeID, phase)})
			return
		}
		h(w, r)
	}
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeAdminError(w http.ResponseWriter, status int, e admin.Error) {
	writeAdminJSON(w, status, e)
}

func roleName(r raft.StateType) string { return strings.TrimPrefix(r.String(), "State") }

func (n *Node) handleAdminCluster(w http.ResponseWriter, _ *http.Request) {
	st := n.catalog.Group().Status()
	out := admin.ClusterStatus{
		ClusterID:      n.catalog.ClusterID(),
		NodeID:         n.cfg.NodeID,
		Mode:           "standalone",
		MetadataLeader: st.Lead,
		MetadataTerm:   st.Term,
	}
	connected := map[uint64]bool{}
	if n.transport != nil {
		out.Mode = "cluster"
		connected = n.transport.Connected()
	}
	voters := n.metadataVoters()
	live := n.catalog.LiveBrokers()
	brokers := map[uint64]admin.NodeStatus{}
	for _, b := range n.catalog.Brokers() {
		brokers[uint64(b.ID)] = n.nodeStatus(b)
	}
	for _, id := range n.members() {
		ns := brokers[id]
		ns.ID = id
		ns.State = admin.StateUnreachable
		if id == n.cfg.NodeID || connected[id] {
			ns.State = admin.StateAlive
		}
		ns.Live = slices.Contains(live, int32(id))
		ns.MetadataLeader = id == st.Lead
		ns.MetadataVoter = slices.Contains(voters, id)
		ns.AnsweringNode = id == n.cfg.NodeID
		out.Nodes = append(out.Nodes, ns)
	}
	writeAdminJSON(w, http.StatusOK, out)
}

func (n *Node) handleAdminPartitions(w http.ResponseWriter, r *http.Request) {
	out := admin.PartitionsStatus{NodeID: n.cfg.NodeID, Partitions: []admin.PartitionStatus{}}
	if ps, ok := n.metadataStatus(); ok {
		out.Partitions = append(out.Partitions, ps)
	}
	parts := n.replicas.Partitions()
	slices.SortFunc(parts, func(a, b *replica.Partition) int {
		ta, tb := a.TopicPartition(), b.TopicPartition()
		if c := strings.Compare(ta.Topic, tb.Topic); c != 0 {
			return c
		}
		return int(ta.Partition) - int(tb.Partition)
	})
	now := time.Now()
	for _, p := range parts {
		out.Partitions = append(out.Partitions, partitionStatus(p, now))
	}
	writeAdminJSON(w, http.StatusOK, out)
}

// partitionStatus describes one local replica.
func partitionStatus(p *replica.Partition, now time.Time) admin.PartitionStatus {
	v := p.View()
	st := p.Group().Status()
	tp := p.TopicPartition()
	ps := admin.PartitionStatus{
		Topic: tp.Topic, Partition: tp.Partition,
		Role: roleName(st.Role), Leader: st.Lead, Term: st.Term,
		Replicas: nonNil(v.Replicas), ISR: nonNil(v.ISR),
		Commit: st.Commit, Applied: st.Applied, LastIndex: st.LastIndex,
		HighWatermark: p.Log().HighWatermark(), LogEnd: p.Log().NextOffset(),
	}
	if v.Failed != nil {
		ps.Role, ps.Error = admin.RoleFailed, v.Failed.Error()
	}
	if v.IsLeader {
		for _, f := range v.Followers {
			lag := 0.0
			if f.LagEntries > 0 {
				lag = float64(now.Sub(f.CaughtUp)) / float64(time.Millisecond)
			}
			ps.Followers = append(ps.Followers, admin.FollowerStatus{
				ID: f.ID, LagEntries: f.LagEntries, LagMs: lag, InSync: slices.Contains(v.ISR, f.ID),
			})
		}
	}
	return ps
}

// metadataStatus describes the catalog's raft group. Its "ISR" is the set
// of voters raft has heard from recently and that have every committed
// entry, as the leader sees it.
func (n *Node) metadataStatus() (admin.PartitionStatus, bool) {
	g := n.catalog.Group()
	st := g.Status()
	voters := n.metadataVoters()
	ps := admin.PartitionStatus{
		Topic: admin.MetadataTopic, Role: roleName(st.Role), Leader: st.Lead, Term: st.Term,
		Replicas: voters, ISR: []uint64{}, Commit: st.Commit, Applied: st.Applied, LastIndex: st.LastIndex,
		HighWatermark: -1, LogEnd: -1,
	}
	if st.Role != raft.StateLeader {
		return ps, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupQueryTimeout)
	defer cancel()
	rs, err := raftnode.Query(ctx, g, func(l raftnode.Loop) raft.Status { return l.RaftStatus() })
	if err != nil {
		return ps, true // report what we have
	}
	for id, pr := range rs.Progress {
		inSync := id == n.cfg.NodeID || pr.RecentActive && pr.Match >= rs.Commit
		if inSync && !pr.IsLearner {
			ps.ISR = append(ps.ISR, id)
		}
		if id != n.cfg.NodeID {
			ps.Followers = append(ps.Followers, admin.FollowerStatus{
				ID: id, LagEntries: rs.Commit - min(rs.Commit, pr.Match), InSync: inSync,
			})
		}
	}
	slices.Sort(ps.ISR)
	slices.SortFunc(ps.Followers, func(a, b admin.FollowerStatus) int { return int(a.ID) - int(b.ID) })
	return ps, true
}

// nodeStatus describes a registered broker as the catalog has it.
func (n *Node) nodeStatus(b meta.Broker) admin.NodeStatus {
	ns := admin.NodeStatus{ID: uint64(b.ID), KafkaAddr: fmt.Sprintf("%s:%d", b.Host, b.Port), AdminAddr: b.Admin, Decommissioning: b.Decommissioning, Replacing: b.Replacing}
	for _, t := range n.catalog.Topics() {
		for _, p := range t.Partitions {
			if slices.Contains(p.Replicas, b.ID) {
				ns.Replicas++
			}
		}
	}
	return ns
}

func (n *Node) handleAdminRebalance(w http.ResponseWriter, r *http.Request) {
	dry, err := strconv.ParseBool(cmp.Or(r.URL.Query().Get("dry_run"), "false"))
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, admin.Error{Message: fmt.Sprintf("dry_run=%q is not true or false", r.URL.Query().Get("dry_run"))})
		return
	}
	moves, inFlight := n.plan(true)
	out := admin.RebalancePlan{DryRun: dry, Moves: []admin.RebalanceMove{}}
	for _, m := range moves {
		out.Moves = append(out.Moves, admin.RebalanceMove{Topic: m.Topic, Partition: m.Partition, From: m.From, To: m.To})
	}
	if !dry {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if _, errs := n.applyMoves(ctx, moves, inFlight, 0, nil); len(errs) > 0 {
			writeAdminError(w, http.StatusServiceUnavailable, admin.Error{Message: errors.Join(errs...).Error()})
			return
		}
	}
	writeAdminJSON(w, http.StatusOK, out)
}

// pathNodeID reads the {id} of a /admin/nodes/{id}/... request, answering
// 400 if it is not a node id.
func pathNodeID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 32)
	if err != nil || id <= 0 {
		writeAdminError(w, http.StatusBadRequest, admin.Error{Message: fmt.Sprintf("%q is not a node id", r.PathValue("id"))})
		return 0, false
	}
	return id, true
}

// writeNodeStatus answers with node id's entry as the catalog has it.
func (n *Node) writeNodeStatus(w http.ResponseWriter, id int64) {
	for _, b := range n.catalog.Brokers() {
		if int64(b.ID) == id {
			writeAdminJSON(w, http.StatusOK, n.nodeStatus(b))
			return
		}
	}
	writeAdminJSON(w, http.StatusOK, admin.NodeStatus{ID: uint64(id)})
}

func (n *Node) handleAdminDecommission(w http.ResponseWriter, r *http.Request) {
	id, ok := pathNodeID(w, r)
	if !ok {
		return
	}
	cancelIt, err := strconv.ParseBool(cmp.Or(r.URL.Query().Get("cancel"), "false"))
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, admin.Error{Message: fmt.Sprintf("cancel=%q is not true or false", r.URL.Query().Get("cancel"))})
		return
	}
	if !cancelIt {
		if err := n.checkDecommission(int32(id)); err != nil {
			writeAdminError(w, http.StatusConflict, admin.Error{Message: "cannot decommission node " + strconv.FormatInt(id, 10) + ": " + err.Error()})
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := n.catalog.Decommission(ctx, int32(id), cancelIt); err != nil {
		writeAdminError(w, http.StatusServiceUnavailable, admin.Error{Message: fmt.Sprintf("decommission node %d: %v", id, err)})
		return
	}
	n.writeNodeStatus(w, id)
}

func (n *Node) handleAdminReplace(w http.ResponseWriter, r *http.Request) {
	id, ok := pathNodeID(w, r)
	if !ok {
		return
	}
	if id == int64(n.cfg.NodeID) {
		writeAdminError(w, http.StatusBadRequest, admin.Error{Message: fmt.Sprintf("node %d answers this request: it has its data; ask another node to replace a node that lost its own", id)})
		return
	}
	if slices.Contains(n.catalog.LiveBrokers(), int32(id)) {
		writeAdminError(w, http.StatusConflict, admin.Error{Message: fmt.Sprintf("node %d is live: stop it first (a node is replaced only when its data directory is lost)", id)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := n.catalog.Replace(ctx, int32(id)); err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, kerr.BrokerNotAvailable) {
			status = http.StatusNotFound
		}
		writeAdminError(w, status, admin.Error{Message: fmt.Sprintf("replace node %d: %v", id, err)})
		return
	}
	n.writeNodeStatus(w, id)
}

// metadataVoters returns the metadata group's voters as this node knows
// them.
func (n *Node) metadataVoters() []uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), groupQueryTimeout)
	defer cancel()
	voters, _, err := n.catalog.Members(ctx)
	if err != nil {
		voters, _ = metadataMembers(n.members())
	}
	return voters
}

func nonNil(ids []uint64) []uint64 {
	if ids == nil {
		return []uint64{}
	}
	return slices.Clone(ids)
}

// leaderRedirect is the error for a request only the leader can serve:
// it names the leader and its admin address, so the caller can go there.
func (n *Node) leaderRedirect(what string, lead uint64) (int, admin.Error) {
	if lead == 0 {
		return http.StatusServiceUnavailable, admin.Error{
			Message: fmt.Sprintf("node %d does not lead %s and knows no leader (an election is under way); retry shortly", n.cfg.NodeID, what),
		}
	}
	e := admin.Error{
		Message: fmt.Sprintf("node %d does not lead %s; its leader is node %d: send the request there", n.cfg.NodeID, what, lead),
		Leader:  lead,
	}
	for _, b := range n.catalog.Brokers() {
		if uint64(b.ID) == lead {
			e.LeaderAdminAddr = b.Admin
		}
	}
	return http.StatusConflict, e
}

func (n *Node) handleAdminTransferLeader(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	part, err := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	if err != nil || part < 0 {
		writeAdminError(w, http.StatusBadRequest, admin.Error{Message: fmt.Sprintf("partition %q is not a partition number", r.PathValue("partition"))})
		return
	}
	var to uint64
	if s := r.URL.Query().Get("to"); s != "" {
		to, err = strconv.ParseUint(s, 10, 64)
		if err != nil || to == 0 {
			writeAdminError(w, http.StatusBadRequest, admin.Error{Message: fmt.Sprintf("to=%q is not a node id", s)})
			return
		}
	}
	what := fmt.Sprintf("%s/%d", topic, part)
	var (
		group    *raftnode.Group
		replicas []uint64
		isr      []uint64
	)
	if topic == admin.MetadataTopic && part == 0 {
		ps, _ := n.metadataStatus()
		group, replicas, isr = n.catalog.Group(), ps.Replicas, ps.ISR
	} else {
		p := n.replicas.Get(replica.TopicPartition{Topic: topic, Partition: int32(part)})
		if p == nil {
			msg := fmt.Sprintf("node %d hosts no replica of %s", n.cfg.NodeID, what)
			if t := n.catalog.Topic(topic); t == nil || int(part) >= len(t.Partitions) {
				msg = fmt.Sprintf("no partition %s in the cluster", what)
			}
			writeAdminError(w, http.StatusNotFound, admin.Error{Message: msg})
			return
		}
		v := p.View()
		group, replicas, isr = p.Group(), v.Replicas, v.ISR
	}
	st := group.Status()
	if st.Role != raft.StateLeader {
		status, e := n.leaderRedirect(what, st.Lead)
		writeAdminError(w, status, e)
		return
	}
	self := n.cfg.NodeID
	if to == 0 {
		to = n.transferTarget(group)
		if to == 0 || !slices.Contains(isr, to) {
			writeAdminError(w, http.StatusConflict, admin.Error{Message: fmt.Sprintf("%s has no in-sync follower to take the leadership (ISR %v)", what, isr)})
			return
		}
	}
	result := admin.TransferResult{Topic: topic, Partition: int32(part), From: self, Leader: self, Term: st.Term}
	switch {
	case to == self:
		writeAdminJSON(w, http.StatusOK, result)
		return
	case !slices.Contains(replicas, to):
		writeAdminError(w, http.StatusBadRequest, admin.Error{Message: fmt.Sprintf("node %d is not a replica of %s (replicas %v)", to, what, replicas)})
		return
	case !slices.Contains(isr, to):
		writeAdminError(w, http.StatusConflict, admin.Error{Message: fmt.Sprintf("node %d is not in sync for %s (ISR %v); it must catch up first", to, what, isr)})
		return
	}
	n.logger.Info("operator moves leadership", "topic", topic, "partition", part, "to", to, "term", st.Term)
	group.Do(func(l raftnode.Loop) { l.TransferLeader(to) })
	ctx, cancel := context.WithTimeout(r.Context(), transferTimeout)
	defer cancel()
	if err := waitForLeader(ctx, group, to); err != nil {
		now := group.Status()
		writeAdminError(w, http.StatusGatewayTimeout, admin.Error{
			Message: fmt.Sprintf("leadership of %s did not move to node %d: %v (leader now node %d, term %d)", what, to, err, now.Lead, now.Term),
		})
		return
	}
	now := group.Status()
	result.Leader, result.Term = now.Lead, now.Term
	writeAdminJSON(w, http.StatusOK, result)
}

// waitForLeader polls the group until this node sees target as its leader.
func waitForLeader(ctx context.Context, g *raftnode.Group, target uint64) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if g.Status().Lead == target {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not within %v", transferTimeout)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (n *Node) handleAdminStepDown(w http.ResponseWriter, r *http.Request) {
	if n.transport == nil {
		writeAdminError(w, http.StatusConflict, admin.Error{Message: fmt.Sprintf("node %d runs standalone: it has no follower to hand leadership to", n.cfg.NodeID)})
		return
	}
	n.logger.Info("operator asked this node to step down")
	moved, remaining := n.transferLeaderships(r.Context(), "on an operator's step-down")
	out := admin.StepDownResult{NodeID: n.cfg.NodeID, Moved: []admin.TransferResult{}, Remaining: []admin.PartitionRef{}}
	for _, g := range moved {
		topic, part := n.groupName(g)
		st := g.Status()
		out.Moved = append(out.Moved, admin.TransferResult{Topic: topic, Partition: part, From: n.cfg.NodeID, Leader: st.Lead, Term: st.Term})
	}
	for _, g := range remaining {
		topic, part := n.groupName(g)
		out.Remaining = append(out.Remaining, admin.PartitionRef{Topic: topic, Partition: part})
	}
	writeAdminJSON(w, http.StatusOK, out)
}

// groupName names a raft group hosted here as a partition (the catalog's
// group is __cluster_metadata/0).
func (n *Node) groupName(g *raftnode.Group) (string, int32) {
	if t, p, ok := n.resolveGroup(uint64(g.ID())); ok {
		return t, p
	}
	return admin.MetadataTopic, 0
}
