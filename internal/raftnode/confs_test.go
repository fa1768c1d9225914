package raftnode

import (
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func TestConfHistory(t *testing.T) {
	c123 := raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	bare, err := c123.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// A bare configuration (earlier releases, saved snapshots) is in force
	// from the log's start on.
	confs, err := decodeConfs(bare)
	if err != nil || len(confs) != 1 || !slices.Equal(confs[0].conf.Voters, c123.Voters) {
		t.Fatalf("bare configuration decoded as %v, %v", confs, err)
	}
	learner := raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	joint := raftpb.ConfState{Voters: []uint64{2, 3, 4}, VotersOutgoing: []uint64{1, 2, 3}}
	final := raftpb.ConfState{Voters: []uint64{2, 3, 4}}
	confs = withConf(confs, 10, learner, 1)
	confs = withConf(confs, 20, joint, 1)
	confs = withConf(confs, 21, final, 1)
	b, err := encodeConfs(confs)
	if err != nil {
		t.Fatal(err)
	}
	if confs, err = decodeConfs(b); err != nil || len(confs) != 4 {
		t.Fatalf("history decoded as %v, %v", confs, err)
	}
	for _, c := range []struct {
		index  uint64
		voters []uint64
	}{{0, c123.Voters}, {9, c123.Voters}, {10, learner.Voters}, {19, learner.Voters}, {20, joint.Voters}, {500, final.Voters}} {
		cs, ok := confAtIndex(confs, c.index)
		if !ok || !slices.Equal(cs.Voters, c.voters) {
			t.Errorf("configuration at %d: %v, want voters %v", c.index, cs, c.voters)
		}
	}
	if cs, _ := confAtIndex(confs, 19); !slices.Equal(cs.Learners, []uint64{4}) {
		t.Errorf("learners at 19: %v", cs.Learners)
	}
	// Once the log starts after index 20, only the configuration in force
	// at its start and the later ones are kept.
	confs = withConf(confs, 30, c123, 25)
	if len(confs) != 2 || confs[0].index != 21 || confs[1].index != 30 {
		t.Fatalf("after the log start moved: %v", confs)
	}
	// A change at an index the history passes (a replaced tail) replaces
	// what followed.
	confs = withConf(confs, 25, learner, 25)
	if len(confs) != 2 || confs[1].index != 25 {
		t.Fatalf("after a replaced tail: %v", confs)
	}
	if _, err := decodeConfs([]byte{confsMagic, 5, 1}); err == nil {
		t.Fatal("a truncated history decoded")
	}
}
