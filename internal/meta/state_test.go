package meta

import "testing"

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
