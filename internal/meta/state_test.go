package meta

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestRegisterBrokerKeepsItsIncarnation(t *testing.T) {
	s := newState()
	reg := func(b Broker) error { return s.apply(&Command{Op: opRegisterBroker, Broker: &b}).Err }
	// A peer registers node 3 before it starts: no incarnation yet.
	if err := reg(Broker{ID: 3, Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if err := reg(Broker{ID: 3, Host: "h", Port: 1, Admin: "h:2", Incarnation: "a"}); err != nil {
		t.Fatal(err)
	}
	// Registration on its behalf again keeps what the node said.
	if err := reg(Broker{ID: 3, Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if b := s.Brokers[3]; b.Incarnation != "a" || b.Admin != "h:2" {
		t.Fatalf("broker 3 is %+v", b)
	}
	// Another data directory under the same id is refused.
	if err := reg(Broker{ID: 3, Host: "h", Port: 1, Incarnation: "b"}); err == nil {
		t.Fatal("a second incarnation of node 3 was registered")
	}
	if s.Brokers[3].Incarnation != "a" {
		t.Fatal("the refused registration changed the broker")
	}
}

func TestReassignment(t *testing.T) {
	s := newState()
	apply := func(c Command) error { return s.apply(&c).Err }
	if err := apply(Command{Op: opCreateTopic, Topic: "t", Assignment: [][]int32{{1, 2, 3}}}); err != nil {
		t.Fatal(err)
	}
	part := func() Partition { return s.Topics["t"].Partitions[0] }
	eq := func(a, b []int32) bool { return slices.Equal(a, b) }
	if err := apply(Command{Op: opReassign, Topic: "t", Replicas: nil}); !errors.Is(err, kerr.NoReassignmentInProgress) {
		t.Fatalf("cancel with none in progress: %v", err)
	}
	if err := apply(Command{Op: opReassign, Topic: "t", Replicas: []int32{4, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	p := part()
	if !eq(p.Replicas, []int32{4, 2, 3, 1}) || !eq(p.Adding, []int32{4}) || !eq(p.Removing, []int32{1}) || !eq(p.Initial, []int32{1, 2, 3}) || !eq(p.Target(), []int32{4, 2, 3}) {
		t.Fatalf("reassigning: %+v", p)
	}
	// A new target replaces the one in progress, counted from the
	// original replicas.
	if err := apply(Command{Op: opReassign, Topic: "t", Replicas: []int32{5, 1}}); err != nil {
		t.Fatal(err)
	}
	if p = part(); !eq(p.Replicas, []int32{5, 1, 2, 3}) || !eq(p.Adding, []int32{5}) || !eq(p.Removing, []int32{2, 3}) {
		t.Fatalf("changed target: %+v", p)
	}
	// A report for the earlier target is stale.
	if err := apply(Command{Op: opReassignDone, Topic: "t", Replicas: []int32{4, 2, 3}}); !errors.Is(err, kerr.NoReassignmentInProgress) {
		t.Fatalf("stale report: %v", err)
	}
	// Cancelled: back to the original replicas.
	if err := apply(Command{Op: opReassign, Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	if p = part(); !eq(p.Replicas, []int32{1, 2, 3}) || p.Reassigning() {
		t.Fatalf("cancelled: %+v", p)
	}
	// A cancel goes back to the original order too (the preferred
	// leader), although a reassignment lists the removed replicas last.
	if err := apply(Command{Op: opReassign, Topic: "t", Replicas: []int32{4, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(Command{Op: opReassign, Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	if p = part(); !eq(p.Replicas, []int32{1, 2, 3}) || p.Reassigning() {
		t.Fatalf("cancelled after removing the first replica: %+v", p)
	}
	if err := apply(Command{Op: opReassign, Topic: "t", Replicas: []int32{2, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(Command{Op: opReassignDone, Topic: "t", Replicas: []int32{2, 3}}); err != nil {
		t.Fatal(err)
	}
	if p = part(); !eq(p.Replicas, []int32{2, 3}) || p.Reassigning() || !eq(p.InitialVoters(), []int32{1, 2, 3}) {
		t.Fatalf("done: %+v", p)
	}
	// An unknown partition is refused.
	if err := apply(Command{Op: opReassign, Topic: "t", Partition: 1, Replicas: []int32{1}}); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown partition: %v", err)
	}
}

func TestDecommissionAndRemove(t *testing.T) {
	s := newState()
	apply := func(c Command) error { return s.apply(&c).Err }
	for id := int32(1); id <= 3; id++ {
		if err := apply(Command{Op: opRegisterBroker, Broker: &Broker{ID: id, Incarnation: "i"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(Command{Op: opCreateTopic, Topic: "t", Assignment: [][]int32{{1, 3}}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(Command{Op: opRemoveBroker, Node: 3}); err == nil {
		t.Fatal("a node not being decommissioned was removed")
	}
	if err := apply(Command{Op: opDecommission, Node: 3}); err != nil || !s.Brokers[3].Decommissioning {
		t.Fatalf("decommission: %v %+v", err, s.Brokers[3])
	}
	// Registering again (a restart) keeps the flag.
	if err := apply(Command{Op: opRegisterBroker, Broker: &Broker{ID: 3, Incarnation: "i"}}); err != nil || !s.Brokers[3].Decommissioning {
		t.Fatalf("re-registered: %v %+v", err, s.Brokers[3])
	}
	if err := apply(Command{Op: opRemoveBroker, Node: 3}); err == nil {
		t.Fatal("a node holding a replica was removed")
	}
	if err := apply(Command{Op: opReassign, Topic: "t", Replicas: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(Command{Op: opReassignDone, Topic: "t", Replicas: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(Command{Op: opRemoveBroker, Node: 3}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Brokers[3]; ok {
		t.Fatal("node 3 is still a broker")
	}
	// A peer's configuration naming node 3 does not bring it back...
	if err := apply(Command{Op: opRegisterBroker, Broker: &Broker{ID: 3, Host: "h"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Brokers[3]; ok {
		t.Fatal("a peer registered the removed node 3 again")
	}
	// ...but the node joining again (a new data directory) does.
	if err := apply(Command{Op: opRegisterBroker, Broker: &Broker{ID: 3, Incarnation: "j"}}); err != nil {
		t.Fatal(err)
	}
	if b, ok := s.Brokers[3]; !ok || b.Decommissioning || slices.Contains(s.Removed, 3) {
		t.Fatalf("node 3 joined again as %+v (removed %v)", b, s.Removed)
	}
}

func TestReplaceNode(t *testing.T) {
	s := newState()
	apply := func(c Command) error { return s.apply(&c).Err }
	for id := int32(1); id <= 3; id++ {
		if err := apply(Command{Op: opRegisterBroker, Broker: &Broker{ID: id, Incarnation: "old"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(Command{Op: opCreateTopic, Topic: "t", Assignment: [][]int32{{3, 1, 2}, {1, 2, 3}, {3}}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(Command{Op: opReplace, Node: 3}); err != nil {
		t.Fatal(err)
	}
	if b := s.Brokers[3]; !b.Replacing || b.Incarnation != "" {
		t.Fatalf("broker 3: %+v", b)
	}
	p0 := s.Topics["t"].Partitions[0]
	if !slices.Equal(p0.Target(), []int32{1, 2}) || !slices.Equal(p0.Restore, []int32{3, 1, 2}) {
		t.Fatalf("partition 0: %+v", p0)
	}
	// A partition whose only replica was on the node cannot drop it.
	if p2 := s.Topics["t"].Partitions[2]; p2.Reassigning() {
		t.Fatalf("partition 2: %+v", p2)
	}
	// Dropping the node done, it is added back, in its place.
	if err := apply(Command{Op: opReassignDone, Topic: "t", Partition: 0, Replicas: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	p0 = s.Topics["t"].Partitions[0]
	if !slices.Equal(p0.Target(), []int32{3, 1, 2}) || !slices.Equal(p0.Adding, []int32{3}) || p0.Restore != nil {
		t.Fatalf("partition 0 after the node left: %+v", p0)
	}
	// The node registers with its new directory.
	if err := apply(Command{Op: opRegisterBroker, Broker: &Broker{ID: 3, Incarnation: "new"}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(Command{Op: opReplaceDone, Node: 3}); err != nil || s.Brokers[3].Replacing {
		t.Fatalf("replace done: %v %+v", err, s.Brokers[3])
	}
}
