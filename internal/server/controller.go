package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/rebalance"
	"github.com/chronik-stream/chronik/internal/replica"
)

// transferLeaderMethod asks a partition's leader to hand its leadership to
// another replica.
const transferLeaderMethod = "replica.transfer_leader"

// decommissionedMethod tells a node that it was decommissioned and left the
// cluster.
const decommissionedMethod = "node.decommissioned"

// leaderMoveTimeout is how long the controller keeps asking a partition's
// leader to hand over to the replica a rebalance made preferred.
const leaderMoveTimeout = 2 * time.Minute

// controller runs every second on every node and acts on the metadata
// leader: it drains nodes being decommissioned and removes them once
// drained, moves replaced nodes out of and back into their groups, keeps
// the metadata group's voters, and rebalances replicas and leaderships.
type controller struct {
	n           *Node
	lastBalance time.Time
	// brokers is the broker set of the last balance: a change (a node
	// joined or left) makes the next step balance at once.
	brokers []int32
	// leaderMoves are the leaderships a rebalance moved, by partition,
	// until the new preferred replica leads.
	leaderMoves map[replica.TopicPartition]leaderMove
}

type leaderMove struct {
	to           int32
	since, asked time.Time
}

// pass takes one step on the metadata leader; a node that does not lead
// forgets what it tracked.
func (c *controller) pass() {
	if !c.n.catalog.IsLeader() {
		c.brokers = nil
		clear(c.leaderMoves)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.step(ctx, time.Now())
}

func newController(n *Node) *controller {
	return &controller{n: n, leaderMoves: map[replica.TopicPartition]leaderMove{}}
}

// brokerSets splits the registered brokers: those that may take replicas
// (live, not decommissioning), those that are down (they keep theirs), and
// those being decommissioned.
func (n *Node) brokerSets() (active, down, draining []int32) {
	live := n.catalog.LiveBrokers()
	for _, b := range n.catalog.Brokers() {
		switch {
		case b.Decommissioning:
			draining = append(draining, b.ID)
		case slices.Contains(live, b.ID):
			active = append(active, b.ID)
		default:
			down = append(down, b.ID)
		}
	}
	return active, down, draining
}

// plan computes the moves that drain decommissioning nodes and, with
// balance, even out replicas and leaderships over the active nodes. A
// partition being reassigned counts with its target replicas.
func (n *Node) plan(balance bool) (moves []rebalance.Move, inFlight map[replica.TopicPartition]bool) {
	active, down, _ := n.brokerSets()
	inFlight = map[replica.TopicPartition]bool{}
	var parts []rebalance.Partition
	for _, t := range n.catalog.Topics() {
		for _, p := range t.Partitions {
			if p.Reassigning() {
				inFlight[replica.TopicPartition{Topic: t.Name, Partition: p.ID}] = true
			}
			parts = append(parts, rebalance.Partition{Topic: t.Name, Partition: p.ID, Replicas: p.Target()})
		}
	}
	return rebalance.Plan(rebalance.Input{Partitions: parts, Brokers: active, Keep: down, Balance: balance}), inFlight
}

func (c *controller) step(ctx context.Context, now time.Time) {
	n := c.n
	rb := n.cfg.Cluster.Rebalance
	_, down, draining := n.brokerSets()
	var ids []int32
	for _, b := range n.catalog.Brokers() {
		ids = append(ids, b.ID)
	}
	// Balancing waits while a node is down: it may be back soon, and
	// moving its share elsewhere would be wasted.
	balance := rb.Enabled && len(down) == 0 &&
		(now.Sub(c.lastBalance) >= time.Duration(rb.IntervalSecs)*time.Second || !slices.Equal(ids, c.brokers))
	if balance || len(draining) > 0 {
		moves, inFlight := n.plan(balance)
		deferred, _ := n.applyMoves(ctx, moves, inFlight, rb.MaxConcurrentMoves, func(m rebalance.Move) {
			if m.To[0] != m.From[0] {
				c.leaderMoves[replica.TopicPartition{Topic: m.Topic, Partition: m.Partition}] = leaderMove{to: m.To[0], since: now}
			}
		})
		// A balance is done once every move of its plan was started; until
		// then each step starts more as earlier ones finish.
		if balance && deferred == 0 {
			c.lastBalance, c.brokers = now, ids
		}
	}
	c.moveLeaders(ctx, now)
	n.promoteMetadataVoter(ctx)
	for _, id := range draining {
		c.finishDecommission(ctx, id)
	}
	for _, b := range n.catalog.Brokers() {
		if b.Replacing {
			c.advanceReplace(ctx, b)
		}
	}
}

// advanceReplace moves on the replacement of a node that lost its data:
// until the new node registers, its old self leaves the metadata group and
// every partition (those that were being reassigned when the replacement
// began, too); once each group added it back, the replacement is done.
func (c *controller) advanceReplace(ctx context.Context, b meta.Broker) {
	n := c.n
	pending := false
	for _, t := range n.catalog.Topics() {
		for _, p := range t.Partitions {
			switch {
			case p.Restore != nil && slices.Contains(p.Restore, b.ID),
				p.Reassigning() && (slices.Contains(p.Adding, b.ID) || slices.Contains(p.Removing, b.ID)):
				pending = true
			case b.Incarnation == "" && slices.Contains(p.Replicas, b.ID) && len(p.Replicas) > 1 && !p.Reassigning():
				// Left out when the replacement began (it was being
				// reassigned then).
				if err := n.catalog.Replace(ctx, b.ID); err != nil {
					n.logger.Warn("replace: dropping the lost node from a partition", "node", b.ID, "err", err)
				}
				return
			}
		}
	}
	if b.Incarnation == "" {
		voters, learners, err := n.catalog.Members(ctx)
		if err == nil && (slices.Contains(voters, uint64(b.ID)) || slices.Contains(learners, uint64(b.ID))) {
			if err := n.catalog.RemoveMember(ctx, uint64(b.ID)); err != nil {
				n.logger.Warn("replace: removing the lost node from the metadata group", "node", b.ID, "err", err)
			}
		}
		return
	}
	if pending {
		return
	}
	if err := n.catalog.ReplaceDone(ctx, b.ID); err == nil {
		n.logger.Info("node replaced: it is a member of every group again, with its new data directory", "node", b.ID)
	}
}

// applyMoves writes moves into the catalog as reassignments: a new order
// of the same replicas at once (it moves no data), others while fewer
// than limit reassignments are in progress (limit 0: no limit). done is
// called for each move written. It returns how many moves it left for
// later (their partition is being moved, or the limit was reached).
func (n *Node) applyMoves(ctx context.Context, moves []rebalance.Move, inFlight map[replica.TopicPartition]bool, limit int, done func(rebalance.Move)) (deferred int, errs []error) {
	busy := len(inFlight)
	for _, m := range moves {
		tp := replica.TopicPartition{Topic: m.Topic, Partition: m.Partition}
		if inFlight[tp] {
			deferred++
			continue
		}
		reorder := slices.Equal(slices.Sorted(slices.Values(m.From)), slices.Sorted(slices.Values(m.To)))
		if !reorder {
			if limit > 0 && busy >= limit {
				deferred++
				continue
			}
			busy++
		}
		if err := n.catalog.Reassign(ctx, m.Topic, m.Partition, m.To); err != nil {
			errs = append(errs, fmt.Errorf("move %s to %v: %w", tp, m.To, err))
			n.logger.Warn("rebalance: moving a partition", "topic", m.Topic, "partition", m.Partition, "to", m.To, "err", err)
			continue
		}
		n.logger.Info("rebalance: moving a partition", "topic", m.Topic, "partition", m.Partition, "from", m.From, "to", m.To)
		if done != nil {
			done(m)
		}
	}
	return deferred, errs
}

// moveLeaders asks the leaders of partitions a rebalance reordered to hand
// over to the new first replica, once it is in sync.
func (c *controller) moveLeaders(ctx context.Context, now time.Time) {
	for tp, lm := range c.leaderMoves {
		t := c.n.catalog.Topic(tp.Topic)
		if t == nil || int(tp.Partition) >= len(t.Partitions) || now.Sub(lm.since) > leaderMoveTimeout {
			delete(c.leaderMoves, tp)
			continue
		}
		p := t.Partitions[tp.Partition]
		if p.Leader == lm.to || p.Replicas[0] != lm.to {
			delete(c.leaderMoves, tp)
			continue
		}
		if p.Reassigning() || p.Leader < 0 || !slices.Contains(p.ISR, lm.to) || now.Sub(lm.asked) < 2*time.Second {
			continue
		}
		lm.asked = now
		c.leaderMoves[tp] = lm
		if err := c.n.askTransfer(ctx, uint64(p.Leader), tp, uint64(lm.to)); err != nil {
			c.n.logger.Debug("rebalance: moving a leadership", "topic", tp.Topic, "partition", tp.Partition, "to", lm.to, "err", err)
		}
	}
}

type transferRequest struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	To        uint64 `json:"to"`
}

// askTransfer asks node leader to hand tp's leadership to node to.
func (n *Node) askTransfer(ctx context.Context, leader uint64, tp replica.TopicPartition, to uint64) error {
	req, err := json.Marshal(transferRequest{Topic: tp.Topic, Partition: tp.Partition, To: to})
	if err != nil {
		return err
	}
	if leader == n.cfg.NodeID {
		_, err = n.answerTransfer(ctx, leader, req)
		return err
	}
	_, err = n.transport.Call(ctx, leader, transferLeaderMethod, req)
	return err
}

// leaderTransferrer moves leaderships for the broker's ElectLeaders.
type leaderTransferrer struct{ n *Node }

func (lt leaderTransferrer) TransferLeader(ctx context.Context, tp replica.TopicPartition, leader, to int32) error {
	return lt.n.askTransfer(ctx, uint64(leader), tp, uint64(to))
}

// answerTransfer hands a partition's leadership to an in-sync replica, if
// this node leads it.
func (n *Node) answerTransfer(_ context.Context, _ uint64, payload []byte) ([]byte, error) {
	var req transferRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("decode transfer request: %w", err)
	}
	r := n.replicas.Get(replica.TopicPartition{Topic: req.Topic, Partition: req.Partition})
	if r == nil {
		return nil, fmt.Errorf("node %d hosts no replica of %s/%d", n.cfg.NodeID, req.Topic, req.Partition)
	}
	v := r.View()
	if !v.IsLeader || !slices.Contains(v.ISR, req.To) {
		return nil, fmt.Errorf("node %d cannot hand %s/%d to node %d (leader %v, ISR %v)", n.cfg.NodeID, req.Topic, req.Partition, req.To, v.IsLeader, v.ISR)
	}
	n.logger.Info("moving a leadership to the partition's new preferred replica", "topic", req.Topic, "partition", req.Partition, "to", req.To)
	r.Group().Do(func(l raftnode.Loop) { l.TransferLeader(req.To) })
	return nil, nil
}

// finishDecommission removes a node being decommissioned once it holds no
// replica: from the metadata group, then from the catalog's brokers. The
// metadata leader being decommissioned first hands its leadership over.
func (c *controller) finishDecommission(ctx context.Context, id int32) {
	n := c.n
	for _, t := range n.catalog.Topics() {
		for _, p := range t.Partitions {
			if slices.Contains(p.Replicas, id) {
				return
			}
		}
	}
	if uint64(id) == n.cfg.NodeID {
		if target := n.transferTarget(n.catalog.Group()); target != 0 {
			n.logger.Info("decommissioned: handing the metadata group's leadership over", "to", target)
			n.catalog.Group().Do(func(l raftnode.Loop) { l.TransferLeader(target) })
		}
		return
	}
	voters, learners, err := n.catalog.Members(ctx)
	if err != nil {
		return
	}
	if slices.Contains(voters, uint64(id)) || slices.Contains(learners, uint64(id)) {
		if slices.Contains(voters, uint64(id)) && len(voters) <= 1 {
			return
		}
		if err := n.catalog.RemoveMember(ctx, uint64(id)); err != nil {
			n.logger.Warn("decommission: removing the node from the metadata group", "node", id, "err", err)
			return
		}
	}
	switch err := n.catalog.RemoveBroker(ctx, id); {
	case err == nil:
		n.logger.Info("node decommissioned: it holds no replica and left the cluster", "node", id)
		// Tell it, in case it did not learn it left the metadata group
		// (it may also be down: then nobody answers).
		if n.transport != nil {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			n.transport.Call(cctx, uint64(id), decommissionedMethod, nil)
			cancel()
		}
	case errors.Is(err, meta.ErrNotController):
	default:
		n.logger.Warn("decommission: removing the node", "node", id, "err", err)
	}
}

// answerDecommissioned stops this node when the metadata leader says it
// was decommissioned and has left; its own catalog must agree that it was
// being decommissioned.
func (n *Node) answerDecommissioned(context.Context, uint64, []byte) ([]byte, error) {
	self := int32(n.cfg.NodeID)
	for _, b := range n.catalog.Brokers() {
		if b.ID == self && !b.Decommissioning {
			return nil, fmt.Errorf("node %d is not being decommissioned", self)
		}
	}
	n.fail(n.decommissionedErr())
	return nil, nil
}

// checkDecommission refuses to decommission node id when the nodes that
// would remain cannot hold every partition's replicas.
func (n *Node) checkDecommission(id int32) error {
	var remaining int
	found := false
	for _, b := range n.catalog.Brokers() {
		switch {
		case b.ID == id:
			found = true
		case !b.Decommissioning:
			remaining++
		}
	}
	if !found {
		return fmt.Errorf("node %d is not a member of the cluster", id)
	}
	for _, t := range n.catalog.Topics() {
		for _, p := range t.Partitions {
			if rf := len(p.Target()); rf > remaining {
				return fmt.Errorf("topic %s has %d replicas of partition %d, and only %d nodes would remain: lower its replication factor (a reassignment) or add a node first", t.Name, rf, p.ID, remaining)
			}
		}
	}
	return nil
}
