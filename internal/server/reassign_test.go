package server

import (
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/quorum"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

func status(commit uint64, voters, outgoing, learners []uint64, match map[uint64]uint64) raft.Status {
	st := raft.Status{Progress: map[uint64]tracker.Progress{}}
	st.Commit = commit
	st.Config.Voters = quorum.JointConfig{quorum.MajorityConfig{}, nil}
	for _, id := range voters {
		st.Config.Voters[0][id] = struct{}{}
	}
	if outgoing != nil {
		st.Config.Voters[1] = quorum.MajorityConfig{}
		for _, id := range outgoing {
			st.Config.Voters[1][id] = struct{}{}
		}
	}
	for _, id := range learners {
		if st.Config.Learners == nil {
			st.Config.Learners = map[uint64]struct{}{}
		}
		st.Config.Learners[id] = struct{}{}
	}
	for id, m := range match {
		st.Progress[id] = tracker.Progress{Match: m, State: tracker.StateReplicate, RecentActive: true}
	}
	return st
}

func TestReassignStep(t *testing.T) {
	type change struct {
		typ raftpb.ConfChangeType
		id  uint64
	}
	for _, c := range []struct {
		name     string
		st       raft.Status
		self     uint64
		target   []uint64
		changes  []change
		transfer uint64
		done     bool
	}{
		{name: "in place", st: status(100, []uint64{1, 2, 3}, nil, nil, nil), self: 1, target: []uint64{1, 2, 3}, done: true},
		{name: "new replica joins as a learner", st: status(100, []uint64{1, 2, 3}, nil, nil, nil), self: 1, target: []uint64{1, 2, 4},
			changes: []change{{raftpb.ConfChangeAddLearnerNode, 4}}},
		{name: "a learner far behind is waited for", st: status(1000, []uint64{1, 2, 3}, nil, []uint64{4}, map[uint64]uint64{4: 10}), self: 1, target: []uint64{1, 2, 4}},
		{name: "a caught-up learner is promoted as the old voter goes", st: status(1000, []uint64{1, 2, 3}, nil, []uint64{4}, map[uint64]uint64{4: 990}), self: 1, target: []uint64{1, 2, 4},
			changes: []change{{raftpb.ConfChangeAddNode, 4}, {raftpb.ConfChangeRemoveNode, 3}}},
		{name: "nothing while joint", st: status(1000, []uint64{1, 2, 4}, []uint64{1, 2, 3}, nil, nil), self: 1, target: []uint64{1, 2, 4}},
		{name: "a leader leaving hands over first", st: status(1000, []uint64{1, 2, 4}, nil, nil, map[uint64]uint64{2: 900, 4: 1000}), self: 1, target: []uint64{2, 4},
			transfer: 4},
		{name: "a learner no longer wanted goes", st: status(1000, []uint64{1, 2, 3}, nil, []uint64{4}, map[uint64]uint64{4: 5}), self: 1, target: []uint64{1, 2, 3},
			changes: []change{{raftpb.ConfChangeRemoveNode, 4}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc, transfer, done := reassignStep(c.st, c.self, c.target)
			var got []change
			for _, ch := range cc.Changes {
				got = append(got, change{ch.Type, ch.NodeID})
			}
			if len(got) != len(c.changes) || transfer != c.transfer || done != c.done {
				t.Fatalf("changes %v, transfer %d, done %v; want %v, %d, %v", got, transfer, done, c.changes, c.transfer, c.done)
			}
			for i := range got {
				if got[i] != c.changes[i] {
					t.Fatalf("changes %v, want %v", got, c.changes)
				}
			}
		})
	}
}
