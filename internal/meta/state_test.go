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
