// Package meta is the cluster catalog: brokers, topics, partition
// assignments, topic configs and producer id allocation, kept as a state
// machine on the metadata raft group so that every node sees the same
// catalog in the same order.
package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Broker is a registered node.
type Broker struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
	// Admin is the node's metrics/admin HTTP address (host:port), as the
	// node itself registered it; "" when a peer registered it on its
	// behalf before it started.
	Admin string `json:"admin,omitempty"`
	// RaftAddr is the address other nodes reach its raft transport on
	// ("" for a node registered before it was recorded: peers then use
	// their configuration).
	RaftAddr string `json:"raft_addr,omitempty"`
	// Incarnation identifies the data directory the node joined with ("" until
	// the node registers itself). A node whose directory was wiped or
	// replaced presents another and is refused.
	Incarnation string `json:"incarnation,omitempty"`
	// Decommissioning: the node's replicas are being moved off it, and it
	// is removed once it holds none.
	Decommissioning bool `json:"decommissioning,omitempty"`
	// Replacing: the node lost its data directory and comes back empty
	// under its id; each raft group drops it and adds it back as a new
	// member (see Partition.Restore).
	Replacing bool `json:"replacing,omitempty"`
}

// Partition is one partition's assignment and, as its leader last
// published it, its leadership and in-sync replicas.
type Partition struct {
	ID       int32   `json:"id"`
	Replicas []int32 `json:"replicas"`
	// Group is the partition's raft group id, never reused.
	Group uint64 `json:"group"`
	// Leader is the last leader that published itself (-1: none yet), for
	// its Epoch (raft term); ISR is the in-sync set it published.
	Leader int32   `json:"leader"`
	Epoch  int32   `json:"epoch"`
	ISR    []int32 `json:"isr,omitempty"`
	// A reassignment in progress (Kafka's KIP-455): Replicas are then the
	// target replicas followed by Removing; Adding are the targets not in
	// the replicas it started from.
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
	// Original are the replicas, in their order, before the reassignment
	// in progress: a cancel goes back to them.
	Original []int32 `json:"original,omitempty"`
	// Initial are the voters the partition's raft group was created with
	// (nil: Replicas, as no reassignment ever changed them). A new replica
	// starts its group on them and replays the configuration changes
	// since from the leader's log.
	Initial []int32 `json:"initial,omitempty"`
	// Restore are the replicas to go back to once the reassignment in
	// progress (one dropping a node being replaced) is done: the node then
	// joins the group again as a new member.
	Restore []int32 `json:"restore,omitempty"`
}

// Reassigning reports whether a reassignment is in progress.
func (p *Partition) Reassigning() bool { return len(p.Adding) > 0 || len(p.Removing) > 0 }

// Target returns the replicas the partition is to have: Replicas without
// those a reassignment removes.
func (p *Partition) Target() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(id int32) bool { return slices.Contains(p.Removing, id) })
}

// InitialVoters returns the voters the partition's raft group started on.
func (p *Partition) InitialVoters() []int32 {
	if p.Initial != nil {
		return p.Initial
	}
	return p.Replicas
}

// Topic is a topic in the catalog.
type Topic struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
}

func (t *Topic) clone() *Topic {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	for i := range c.Partitions {
		c.Partitions[i].Replicas = slices.Clone(t.Partitions[i].Replicas)
		c.Partitions[i].ISR = slices.Clone(t.Partitions[i].ISR)
		c.Partitions[i].Adding = slices.Clone(t.Partitions[i].Adding)
		c.Partitions[i].Removing = slices.Clone(t.Partitions[i].Removing)
		c.Partitions[i].Initial = slices.Clone(t.Partitions[i].Initial)
		c.Partitions[i].Restore = slices.Clone(t.Partitions[i].Restore)
		c.Partitions[i].Original = slices.Clone(t.Partitions[i].Original)
	}
	c.Configs = maps.Clone(t.Configs)
	return &c
}

// State is the catalog. It is changed only by apply.
type State struct {
	ClusterID      string            `json:"cluster_id"`
	Brokers        map[int32]Broker  `json:"brokers"`
	Topics         map[string]*Topic `json:"topics"`
	NextGroupID    uint64            `json:"next_group_id"`
	NextProducerID int64             `json:"next_producer_id"`
	// Live lists the brokers the metadata leader last heard from; nil
	// until it first says.
	Live []int32 `json:"live"`
	// Removed lists the brokers decommissioned: a peer's configuration
	// that still names one does not register it again.
	Removed []int32 `json:"removed,omitempty"`
}

// MetadataGroupID is the raft group of the catalog itself.
const MetadataGroupID = 1

// firstPartitionGroup is the first raft group id given to a partition.
const firstPartitionGroup = 100

func newState() *State {
	return &State{Brokers: map[int32]Broker{}, Topics: map[string]*Topic{}, NextGroupID: firstPartitionGroup}
}

// Command is one catalog change, as stored in the metadata log.
type Command struct {
	Op string `json:"op"`

	ClusterID string  `json:"cluster_id,omitempty"`
	Broker    *Broker `json:"broker,omitempty"`

	Topic      string            `json:"topic,omitempty"`
	TopicID    [16]byte          `json:"topic_id,omitempty"`
	Assignment [][]int32         `json:"assignment,omitempty"` // replicas of new partitions
	Configs    map[string]string `json:"configs,omitempty"`
	Delete     []string          `json:"delete,omitempty"`  // config keys to remove
	Replace    bool              `json:"replace,omitempty"` // AlterConfigs: configs replace all
	Internal   bool              `json:"internal,omitempty"`

	Count int64 `json:"count,omitempty"`

	Partition int32   `json:"partition,omitempty"`
	Leader    int32   `json:"leader,omitempty"`
	Epoch     int32   `json:"epoch,omitempty"`
	ISR       []int32 `json:"isr,omitempty"`
	Live      []int32 `json:"live,omitempty"`
	// Replicas is a reassignment's target (nil cancels the reassignment
	// in progress), or the target a finished one reached.
	Replicas []int32 `json:"replicas,omitempty"`
	// Node is the broker a decommission, replacement or removal is about;
	// Cancel stops a decommission.
	Node   int32 `json:"node,omitempty"`
	Cancel bool  `json:"cancel,omitempty"`
}

// Command ops.
const (
	opInit             = "init"
	opRegisterBroker   = "register_broker"
	opCreateTopic      = "create_topic"
	opDeleteTopic      = "delete_topic"
	opCreatePartitions = "create_partitions"
	opAlterConfigs     = "alter_configs"
	opAllocProducerIDs = "alloc_producer_ids"
	opPartitionState   = "partition_state"
	opLiveBrokers      = "live_brokers"
	opReassign         = "reassign"
	opReassignDone     = "reassign_done"
	opDecommission     = "decommission"
	opRemoveBroker     = "remove_broker"
	opReplace          = "replace"
	opReplaceDone      = "replace_done"
)

// Result is what applying a command gives back to its proposer.
type Result struct {
	Err   error
	Value int64
}

// apply changes the state; it must be deterministic.
func (s *State) apply(c *Command) Result {
	switch c.Op {
	case opInit:
		if s.ClusterID == "" {
			s.ClusterID = c.ClusterID
		}
	case opRegisterBroker:
		if c.Broker == nil {
			return Result{Err: fmt.Errorf("register_broker without broker")}
		}
		b := *c.Broker
		if slices.Contains(s.Removed, b.ID) {
			if b.Incarnation == "" {
				return Result{} // a peer's stale configuration: not a member
			}
			// The node itself joins again, as a new member.
			s.Removed = slices.DeleteFunc(s.Removed, func(id int32) bool { return id == b.ID })
		}
		old, ok := s.Brokers[b.ID]
		// A peer registering a node on its behalf knows neither the node's
		// admin address nor its incarnation: keep the node's own.
		if ok && b.Admin == "" {
			b.Admin = old.Admin
		}
		if ok && b.Incarnation == "" {
			b.Incarnation = old.Incarnation
		}
		if ok && b.RaftAddr == "" {
			b.RaftAddr = old.RaftAddr
		}
		b.Decommissioning = ok && old.Decommissioning
		b.Replacing = ok && old.Replacing
		if ok && old.Incarnation != "" && b.Incarnation != old.Incarnation {
			return Result{Err: fmt.Errorf("node %d joined with data directory incarnation %s; incarnation %s is another directory", b.ID, old.Incarnation, b.Incarnation)}
		}
		s.Brokers[b.ID] = b
	case opCreateTopic:
		if _, ok := s.Topics[c.Topic]; ok {
			return Result{Err: kerr.TopicAlreadyExists}
		}
		t := &Topic{Name: c.Topic, ID: c.TopicID, Configs: maps.Clone(c.Configs), Internal: c.Internal}
		for i, reps := range c.Assignment {
			t.Partitions = append(t.Partitions, Partition{ID: int32(i), Replicas: slices.Clone(reps), Group: s.NextGroupID, Leader: -1, Epoch: -1})
			s.NextGroupID++
		}
		s.Topics[c.Topic] = t
	case opDeleteTopic:
		if _, ok := s.Topics[c.Topic]; !ok {
			return Result{Err: kerr.UnknownTopicOrPartition}
		}
		delete(s.Topics, c.Topic)
	case opCreatePartitions:
		t, ok := s.Topics[c.Topic]
		if !ok {
			return Result{Err: kerr.UnknownTopicOrPartition}
		}
		t = t.clone()
		for _, reps := range c.Assignment {
			t.Partitions = append(t.Partitions, Partition{ID: int32(len(t.Partitions)), Replicas: slices.Clone(reps), Group: s.NextGroupID, Leader: -1, Epoch: -1})
			s.NextGroupID++
		}
		s.Topics[c.Topic] = t
	case opAlterConfigs:
		t, ok := s.Topics[c.Topic]
		if !ok {
			return Result{Err: kerr.UnknownTopicOrPartition}
		}
		t = t.clone()
		if c.Replace || t.Configs == nil {
			t.Configs = map[string]string{}
		}
		for k, v := range c.Configs {
			t.Configs[k] = v
		}
		for _, k := range c.Delete {
			delete(t.Configs, k)
		}
		s.Topics[c.Topic] = t
	case opPartitionState:
		t, ok := s.Topics[c.Topic]
		if !ok || c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
			return Result{Err: kerr.UnknownTopicOrPartition}
		}
		// A leader of an older term never overwrites a newer one.
		if cur := t.Partitions[c.Partition]; c.Epoch < cur.Epoch {
			return Result{Err: kerr.FencedLeaderEpoch}
		}
		t = t.clone()
		p := &t.Partitions[c.Partition]
		p.Leader, p.Epoch, p.ISR = c.Leader, c.Epoch, slices.Clone(c.ISR)
		s.Topics[c.Topic] = t
	case opReassign, opReassignDone:
		t, ok := s.Topics[c.Topic]
		if !ok || c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
			return Result{Err: kerr.UnknownTopicOrPartition}
		}
		t = t.clone()
		p := &t.Partitions[c.Partition]
		var err error
		if c.Op == opReassign {
			err = p.reassign(c.Replicas)
		} else {
			err = p.reassignDone(c.Replicas)
		}
		if err != nil {
			return Result{Err: err}
		}
		s.Topics[c.Topic] = t
	case opDecommission, opReplace, opReplaceDone, opRemoveBroker:
		b, ok := s.Brokers[c.Node]
		if !ok {
			return Result{Err: kerr.BrokerNotAvailable}
		}
		return s.applyToBroker(c, b)
	case opLiveBrokers:
		s.Live = slices.Clone(c.Live)
	case opAllocProducerIDs:
		first := s.NextProducerID
		s.NextProducerID += max(c.Count, 1)
		return Result{Value: first}
	default:
		return Result{Err: fmt.Errorf("unknown catalog command %q", c.Op)}
	}
	return Result{}
}

// applyToBroker applies a membership command to registered broker b.
func (s *State) applyToBroker(c *Command, b Broker) Result {
	switch c.Op {
	case opDecommission:
		b.Decommissioning = !c.Cancel
		s.Brokers[b.ID] = b
	case opReplace:
		if !b.Replacing {
			// The directory the node comes back with is a new one.
			b.Replacing, b.Incarnation = true, ""
			s.Brokers[b.ID] = b
		}
		if b.Incarnation != "" {
			// The new node joined: its groups are adding it back.
			return Result{}
		}
		// In name order: apply must be deterministic.
		for _, name := range slices.Sorted(maps.Keys(s.Topics)) {
			t := s.Topics[name]
			changed := false
			for i, p := range t.Partitions {
				if p.Reassigning() || p.Restore != nil || !slices.Contains(p.Replicas, b.ID) || len(p.Replicas) < 2 {
					continue
				}
				if !changed {
					t, changed = t.clone(), true
				}
				q := &t.Partitions[i]
				restore := slices.Clone(q.Replicas)
				if err := q.reassign(slices.DeleteFunc(slices.Clone(q.Replicas), func(id int32) bool { return id == b.ID })); err != nil {
					return Result{Err: err}
				}
				q.Restore = restore
			}
			if changed {
				s.Topics[name] = t
			}
		}
	case opReplaceDone:
		b.Replacing = false
		s.Brokers[b.ID] = b
	case opRemoveBroker:
		if !b.Decommissioning {
			return Result{Err: fmt.Errorf("node %d is not being decommissioned", b.ID)}
		}
		for _, t := range s.Topics {
			for _, p := range t.Partitions {
				if slices.Contains(p.Replicas, b.ID) {
					return Result{Err: fmt.Errorf("node %d still holds a replica of %s/%d", b.ID, t.Name, p.ID)}
				}
			}
		}
		delete(s.Brokers, b.ID)
		s.Live = slices.DeleteFunc(s.Live, func(id int32) bool { return id == b.ID })
		s.Removed = append(s.Removed, b.ID)
	}
	return Result{}
}

func encodeCommand(c *Command) ([]byte, error) { return json.Marshal(c) }

// wireResult is a Result as it travels back to a forwarding node.
type wireResult struct {
	Value int64  `json:"value"`
	Code  int16  `json:"code,omitempty"`
	Msg   string `json:"msg,omitempty"`
}

// EncodeResult encodes r for the node that forwarded the command.
func EncodeResult(r Result) []byte {
	w := wireResult{Value: r.Value}
	if r.Err != nil {
		var ke *kerr.Error
		if errors.As(r.Err, &ke) {
			w.Code = ke.Code
		} else {
			w.Msg = r.Err.Error()
		}
	}
	b, _ := json.Marshal(w)
	return b
}

// DecodeResult is the inverse of EncodeResult.
func DecodeResult(b []byte) (Result, error) {
	var w wireResult
	if err := json.Unmarshal(b, &w); err != nil {
		return Result{}, fmt.Errorf("decode forwarded result: %w", err)
	}
	r := Result{Value: w.Value}
	switch {
	case w.Code != 0:
		r.Err = kerr.ErrorForCode(w.Code)
	case w.Msg != "":
		r.Err = errors.New(w.Msg)
	}
	return r, nil
}

func decodeCommand(b []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode catalog command: %w", err)
	}
	return &c, nil
}

// reassign starts moving p to target, or, with target nil, cancels the
// reassignment in progress (back to the replicas it started from). A new
// target replaces one in progress; what counts as added and removed is
// always against the replicas before any reassignment, as in Kafka.
func (p *Partition) reassign(target []int32) error {
	orig := p.Original
	if !p.Reassigning() || orig == nil {
		orig = slices.DeleteFunc(slices.Clone(p.Replicas), func(id int32) bool { return slices.Contains(p.Adding, id) })
	}
	if target == nil {
		if !p.Reassigning() {
			return kerr.NoReassignmentInProgress
		}
		target = orig
	}
	if p.Initial == nil {
		p.Initial = slices.Clone(p.Replicas)
	}
	p.Adding, p.Removing, p.Restore, p.Original = nil, nil, nil, nil
	for _, id := range target {
		if !slices.Contains(orig, id) {
			p.Adding = append(p.Adding, id)
		}
	}
	for _, id := range orig {
		if !slices.Contains(target, id) {
			p.Removing = append(p.Removing, id)
		}
	}
	p.Replicas = append(slices.Clone(target), p.Removing...)
	if p.Reassigning() {
		p.Original = orig
	}
	return nil
}

// reassignDone ends the reassignment to target once the partition's raft
// group has exactly the target replicas as voters. A report for another
// target (the reassignment was changed or cancelled meanwhile) is refused.
func (p *Partition) reassignDone(target []int32) error {
	if !p.Reassigning() || !slices.Equal(p.Target(), target) {
		return kerr.NoReassignmentInProgress
	}
	p.Replicas, p.Adding, p.Removing, p.Original = slices.Clone(target), nil, nil, nil
	if restore := p.Restore; restore != nil {
		// The node being replaced has left the group: it joins again.
		p.Restore = nil
		return p.reassign(restore)
	}
	return nil
}
