package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/meta"
)

// RPCs of joining a running cluster.
const (
	// joinMethod: a new node asks any member to add it.
	joinMethod = "meta.join"
	// addMemberMethod: that member has the metadata leader add it.
	addMemberMethod = "meta.add_member"
)

// joinProbeTimeout bounds one join request to one peer: a peer that is not
// up yet must not hold up the start of a new cluster for long.
const joinProbeTimeout = time.Second

type joinRequest struct {
	// Probe asks only whether the node belongs to a formed cluster.
	Probe  bool        `json:"probe,omitempty"`
	Broker meta.Broker `json:"broker"`
}

type joinResponse struct {
	// Formed: the answering node belongs to a cluster that has its id.
	Formed    bool   `json:"formed"`
	ClusterID string `json:"cluster_id,omitempty"`
	// Err says why the cluster did not add the node.
	Err string `json:"err,omitempty"`
}

// joinOrBootstrap decides how a node whose catalog was never started
// begins: it asks its configured peers whether they form a cluster
// already. If one does, the node joins it (the metadata leader adds it as
// a learner and sends it a snapshot of the catalog): a node is never
// started on a configuration of its own beside a running cluster. If a
// majority of the metadata group's voters by its configuration, itself
// among them, answer that they form none, it bootstraps the cluster with
// its peers, as all of them do when a new cluster starts. Otherwise it
// waits: peers that do not answer may form a cluster that refuses this
// node (a node that lost its data is refused until it is replaced).
func (n *Node) joinOrBootstrap(ctx context.Context, self meta.Broker, voters []uint64) (join bool, err error) {
	payload, err := json.Marshal(joinRequest{Broker: self})
	if err != nil {
		return false, err
	}
	var peers []uint64
	for _, id := range n.members() {
		if id != n.cfg.NodeID {
			peers = append(peers, id)
		}
	}
	var lastSaid time.Time
	for {
		formed, joined, unformed, why := n.askToJoin(ctx, peers, payload)
		if joined {
			return true, nil
		}
		agree := 1 // this node forms none either
		for _, id := range unformed {
			if slices.Contains(voters, id) {
				agree++
			}
		}
		if !formed && slices.Contains(voters, n.cfg.NodeID) && agree > len(voters)/2 {
			return false, nil
		}
		if time.Since(lastSaid) > 5*time.Second {
			lastSaid = time.Now()
			switch {
			case formed:
				n.logger.Warn("the cluster did not add this node yet; retrying", "reason", why)
				n.setPhase("joining the cluster")
			case slices.Contains(voters, n.cfg.NodeID):
				// A new cluster forms once a quorum of its voters is up.
				msg := fmt.Sprintf("waiting for quorum (%d/%d nodes)", agree, len(voters))
				n.setPhase(msg)
				n.logger.Info(msg, "answering", agree, "voters", len(voters), "needed", len(voters)/2+1)
			default:
				n.logger.Info("waiting for a member of a running cluster to answer, to join it", "peers", peers)
				n.setPhase("joining the cluster")
			}
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("joining the cluster: %w", ctx.Err())
		case <-n.fatal:
			return false, n.fatalErr
		case <-time.After(time.Second):
		}
	}
}

// askToJoin asks every peer at once whether it belongs to a formed
// cluster, then asks those that do, one by one, to add this node. It
// reports whether a peer belongs to a formed cluster, whether one added
// this node (else why not), and the peers that answered they form none.
func (n *Node) askToJoin(ctx context.Context, peers []uint64, payload []byte) (formed, joined bool, unformed []uint64, why string) {
	var req joinRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return false, false, nil, err.Error()
	}
	req.Probe = true
	probe, err := json.Marshal(req)
	if err != nil {
		return false, false, nil, err.Error()
	}
	answered, ok := make([]bool, len(peers)), make([]bool, len(peers))
	var wg sync.WaitGroup
	for i, id := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp joinResponse
			if err := n.callJoin(ctx, id, joinProbeTimeout, probe, &resp); err == nil {
				answered[i], ok[i] = true, resp.Formed
			}
		}()
	}
	wg.Wait()
	for i, id := range peers {
		if answered[i] && !ok[i] {
			unformed = append(unformed, id)
		}
		if !ok[i] {
			continue
		}
		formed = true
		var resp joinResponse
		switch err := n.callJoin(ctx, id, n.rpcTimeout(), payload, &resp); {
		case err != nil:
			why = fmt.Sprintf("node %d: %v", id, err)
		case resp.Err != "":
			why = fmt.Sprintf("node %d: %s", id, resp.Err)
		case resp.Formed:
			n.logger.Info("joining the running cluster", "via", id, "cluster_id", resp.ClusterID)
			return true, true, nil, ""
		}
	}
	return formed, false, unformed, why
}

func (n *Node) callJoin(ctx context.Context, peer uint64, timeout time.Duration, payload []byte, resp *joinResponse) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := n.transport.Call(ctx, peer, joinMethod, payload)
	if err != nil {
		return err
	}
	return json.Unmarshal(out, resp)
}

func (n *Node) rpcTimeout() time.Duration {
	return time.Duration(n.cfg.Raft.RPCTimeoutMs) * time.Millisecond
}

// answerJoin answers a node asking to join: "not formed" until this node's
// catalog has a cluster id; otherwise it has the metadata leader register
// the node and add it to the metadata group.
func (n *Node) answerJoin(ctx context.Context, from uint64, payload []byte) ([]byte, error) {
	var req joinRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("decode join request: %w", err)
	}
	if uint64(req.Broker.ID) != from {
		return nil, fmt.Errorf("node %d asked to join as node %d", from, req.Broker.ID)
	}
	// The answer goes back on this node's own stream to the new node,
	// which it may not know yet.
	n.learnPeer(from, req.Broker.RaftAddr)
	c := n.catalogRef.Load()
	if c == nil || c.ClusterID() == "" {
		if cid := n.identity.ClusterID; cid != "" {
			// Its data directory belongs to a cluster, whose catalog it is
			// still opening: the asking node must join, not bootstrap.
			return json.Marshal(joinResponse{Formed: true, ClusterID: cid, Err: fmt.Sprintf("node %d is starting", n.cfg.NodeID)})
		}
		return json.Marshal(joinResponse{})
	}
	resp := joinResponse{Formed: true, ClusterID: c.ClusterID()}
	if req.Probe {
		return json.Marshal(resp)
	}
	var err error
	if c.IsLeader() {
		err = n.addMember(ctx, req.Broker)
	} else if lead := c.Group().Status().Lead; lead == 0 {
		err = errors.New("the metadata group has no leader")
	} else {
		var out []byte
		if out, err = n.transport.Call(ctx, lead, addMemberMethod, payload); err == nil && len(out) > 0 {
			err = errors.New(string(out))
		}
	}
	if err != nil {
		resp.Err = err.Error()
	}
	return json.Marshal(resp)
}

// answerAddMember adds a joining node, on the metadata leader; it answers
// nothing on success, else why not.
func (n *Node) answerAddMember(ctx context.Context, _ uint64, payload []byte) ([]byte, error) {
	var req joinRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("decode join request: %w", err)
	}
	if err := n.addMember(ctx, req.Broker); err != nil {
		return []byte(err.Error()), nil
	}
	return nil, nil
}

// addMember registers a joining broker and makes it a member of the
// metadata group; on the metadata leader.
func (n *Node) addMember(ctx context.Context, b meta.Broker) error {
	if inc := n.catalog.Incarnation(b.ID); inc != "" && inc != b.Incarnation {
		return fmt.Errorf("node %d is a member already with another data directory (incarnation %s, this one is %s)", b.ID, inc, b.Incarnation)
	}
	n.learnPeer(uint64(b.ID), b.RaftAddr)
	if n.replacing(b.ID) {
		// Its lost self leaves the metadata group before it joins anew:
		// as that voter it would vote again with none of its state.
		voters, learners, err := n.catalog.Members(ctx)
		if err != nil {
			return err
		}
		if slices.Contains(voters, uint64(b.ID)) || slices.Contains(learners, uint64(b.ID)) {
			if err := n.catalog.RemoveMember(ctx, uint64(b.ID)); err != nil {
				return fmt.Errorf("remove the lost node %d from the metadata group: %w", b.ID, err)
			}
		}
	}
	if err := n.catalog.RegisterBroker(ctx, b); err != nil {
		return fmt.Errorf("register node %d: %w", b.ID, err)
	}
	if err := n.catalog.AddMember(ctx, uint64(b.ID)); err != nil {
		return fmt.Errorf("add node %d to the metadata group: %w", b.ID, err)
	}
	return nil
}

// replacing reports whether node id is being replaced.
func (n *Node) replacing(id int32) bool {
	for _, b := range n.catalog.Brokers() {
		if b.ID == id {
			return b.Replacing
		}
	}
	return false
}

// syncPeers gives the transport the raft address of every broker the
// catalog records that this node's configuration does not name, so
// members that joined after this node was configured are reached. A
// configured address wins: it may be how this node must reach that peer
// (through a proxy, say), not where the peer listens.
func (n *Node) syncPeers() {
	if n.transport == nil {
		return
	}
	for _, b := range n.catalog.Brokers() {
		n.learnPeer(uint64(b.ID), b.RaftAddr)
	}
}

// learnPeer gives the transport peer id's raft address, unless this node's
// configuration names the peer (see syncPeers).
func (n *Node) learnPeer(id uint64, addr string) {
	if addr != "" && id != n.cfg.NodeID && !slices.Contains(n.staticPeers, id) {
		n.transport.SetPeer(id, addr)
	}
}

// promoteMetadataVoter keeps the metadata group at three voters (five in
// a cluster of five or more members, every member in one of fewer than
// three), promoting a caught-up, live learner (lowest id first) when there
// are too few; on the metadata leader.
func (n *Node) promoteMetadataVoter(ctx context.Context) {
	voters, learners, err := n.catalog.Members(ctx)
	if err != nil || len(learners) == 0 {
		return
	}
	want, _ := metadataMembers(slices.Sorted(slices.Values(append(slices.Clone(voters), learners...))))
	if len(voters) >= len(want) {
		return
	}
	live := n.catalog.LiveBrokers()
	for _, id := range learners {
		if !slices.Contains(live, int32(id)) || !n.catalog.CaughtUp(ctx, id) {
			continue
		}
		if err := n.catalog.Promote(ctx, id); err != nil {
			n.logger.Warn("promoting a learner of the metadata group", "node", id, "err", err)
			return
		}
		n.logger.Info("promoted a learner to a voter of the metadata group", "node", id, "voters", len(voters)+1)
		return
	}
}
