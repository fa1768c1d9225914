package server

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/replica"
)

// reassignInterval is how often the leader of a partition whose replicas
// are to change takes the next step.
const reassignInterval = 250 * time.Millisecond

// learnerCaughtUp is how far (in entries) a new replica may trail the
// leader's commit index and still be made a voter: close enough that it
// does not hold up the commits of the new configuration for long.
const learnerCaughtUp = 64

// reassignPass moves the replicas of the partitions this node leads to
// what the catalog assigns them (a reassignment, or its cancellation).
func (n *Node) reassignPass() {
	for _, topic := range n.catalog.Topics() {
		for _, p := range topic.Partitions {
			n.stepReassignment(topic, p)
		}
	}
}

// reassignAction is the step a leader takes next.
type reassignAction int

const (
	reassignNone    reassignAction = iota // not leading, or nothing to do
	reassignWaiting                       // a change is under way
	reassignDone                          // the group's voters are the target
)

// stepReassignment takes the next step of moving partition p (of topic)
// to its target replicas, if this node leads it: new replicas join as
// learners; once they have caught up they become voters and the replicas
// no longer wanted are removed, in one joint-consensus change (raft leaves
// the joint configuration on its own); a leader that is itself to go first
// hands its leadership to a new voter, which removes it. When the group's
// voters are exactly the target, the catalog is told, and nodes no longer
// assigned the partition remove their replicas.
func (n *Node) stepReassignment(topic *meta.Topic, p meta.Partition) {
	tp := replica.TopicPartition{Topic: topic.Name, Partition: p.ID}
	r := n.replicas.Get(tp)
	if r == nil || r.Identity().TopicID != topic.ID {
		return
	}
	v := r.View()
	if !v.IsLeader {
		return
	}
	target := make([]uint64, 0, len(p.Replicas))
	for _, id := range p.Target() {
		target = append(target, uint64(id))
	}
	slices.Sort(target)
	if !p.Reassigning() && slices.Equal(v.Replicas, target) && len(v.Followers) == len(target)-1 {
		return // the common case: nothing to move
	}
	self := n.cfg.NodeID
	ctx, cancel := context.WithTimeout(context.Background(), groupQueryTimeout)
	defer cancel()
	action, err := raftnode.Query(ctx, r.Group(), func(l raftnode.Loop) reassignAction {
		st := l.RaftStatus()
		if st.RaftState != raft.StateLeader {
			return reassignNone
		}
		cc, transfer, done := reassignStep(st, self, target)
		switch {
		case done:
			return reassignDone
		case transfer != 0:
			if st.LeadTransferee != transfer {
				n.logger.Info("handing leadership to a new replica before leaving the partition", "topic", tp.Topic, "partition", tp.Partition, "to", transfer)
				l.TransferLeader(transfer)
			}
		case len(cc.Changes) > 0:
			n.logger.Info("changing a partition's replicas", "topic", tp.Topic, "partition", tp.Partition, "changes", cc.String())
			if err := l.ProposeConfChange(cc); err != nil {
				n.logger.Warn("proposing a replica change", "topic", tp.Topic, "partition", tp.Partition, "err", err)
			}
		}
		return reassignWaiting
	})
	if err != nil || action != reassignDone || !p.Reassigning() {
		return
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	switch err := n.catalog.ReassignDone(cctx, tp.Topic, tp.Partition, p.Target()); {
	case err == nil:
		n.logger.Info("partition reassignment done", "topic", tp.Topic, "partition", tp.Partition, "replicas", p.Target())
	case errors.Is(err, kerr.NoReassignmentInProgress):
		// Changed or cancelled meanwhile: the next pass follows the new target.
	default:
		n.logger.Warn("recording a finished reassignment", "topic", tp.Topic, "partition", tp.Partition, "err", err)
	}
}

// reassignStep decides, on the leader (self) of a group with status st,
// the next step towards voters target: a configuration change to propose,
// a voter to hand leadership to, or done. It proposes nothing while the
// group is in a joint configuration (raft leaves it by itself) or a
// learner is still catching up.
func reassignStep(st raft.Status, self uint64, target []uint64) (cc raftpb.ConfChangeV2, transfer uint64, done bool) {
	cfg := st.Config
	if len(cfg.Voters[1]) > 0 || len(cfg.LearnersNext) > 0 {
		return cc, 0, false
	}
	voters := slices.Sorted(maps.Keys(cfg.Voters[0]))
	learners := slices.Sorted(maps.Keys(cfg.Learners))
	// New replicas first join as learners: they get the log (or a
	// snapshot of its start) without counting for commits.
	for _, id := range target {
		if !slices.Contains(voters, id) && !slices.Contains(learners, id) {
			cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddLearnerNode, NodeID: id})
		}
	}
	if len(cc.Changes) > 0 {
		return cc, 0, false
	}
	for _, id := range learners {
		if pr, ok := st.Progress[id]; slices.Contains(target, id) && (!ok || !caughtUp(pr, st.Commit)) {
			return cc, 0, false
		}
	}
	for _, id := range learners {
		if slices.Contains(target, id) {
			cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddNode, NodeID: id})
		} else {
			cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
		}
	}
	leaving := false
	for _, id := range voters {
		if slices.Contains(target, id) {
			continue
		}
		if id == self {
			leaving = true
			continue
		}
		cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
	}
	if len(cc.Changes) > 0 {
		return cc, 0, false
	}
	if leaving {
		// The leader goes last, after handing over to the most caught-up
		// new voter.
		var bestMatch uint64
		for _, id := range target {
			if pr, ok := st.Progress[id]; ok && pr.RecentActive && (transfer == 0 || pr.Match > bestMatch) {
				transfer, bestMatch = id, pr.Match
			}
		}
		return cc, transfer, false
	}
	return cc, 0, true
}

// caughtUp reports whether a learner is close enough to commit to vote.
func caughtUp(pr tracker.Progress, commit uint64) bool {
	return pr.State == tracker.StateReplicate && pr.Match+learnerCaughtUp >= commit
}
