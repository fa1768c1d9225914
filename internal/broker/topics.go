package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/topicconfig"
	"github.com/chronik-stream/chronik/internal/topicname"
)

// OffsetsTopic is the internal topic holding consumer group state.
const OffsetsTopic = topicname.ConsumerOffsets

// validateTopicName applies Kafka's rules for topic names.
func validateTopicName(name string) error {
	if err := topicname.Validate(name); err != nil {
		return describe(kerr.InvalidTopicException, "%v", err)
	}
	return nil
}

// refuseReserved is the error for a client operation on a name the server
// reserves (what names the operation: "write to", "delete", ...).
func refuseReserved(name, what string) error {
	if !topicname.Reserved(name) {
		return nil
	}
	return describe(kerr.InvalidTopicException, "cannot %s %s: the name is reserved for the server's internal use", what, name)
}

// checkCollision refuses a name that equals an existing topic's once '.'
// and '_' are made equal, as Kafka does.
func (b *Broker) checkCollision(name string) error {
	key := topicname.CollisionKey(name)
	for _, t := range b.catalog.Topics() {
		if t.Name != name && topicname.CollisionKey(t.Name) == key {
			return describe(kerr.InvalidTopicException, "topic %q collides with existing topic %q: names that differ only in '.' and '_' are not allowed together", name, t.Name)
		}
	}
	return nil
}

// brokerIDs lists every cluster member (registered broker).
func (b *Broker) brokerIDs() []int32 {
	var ids []int32
	for _, br := range b.catalog.Brokers() {
		ids = append(ids, br.ID)
	}
	return ids
}

// placementBrokers lists the brokers new replicas go to: the live ones when
// there are enough of them for rf, else every member. A member that is down
// may get replicas: raft needs only a quorum of them, and the member
// catches up when it returns (checkQuorumLive refuses what could not work).
func (b *Broker) placementBrokers(rf int) []int32 {
	all := b.brokerIDs()
	var live []int32
	for _, id := range b.catalog.LiveBrokers() {
		if slices.Contains(all, id) {
			live = append(live, id)
		}
	}
	if len(live) >= rf {
		return live
	}
	return all
}

// checkQuorumLive refuses an assignment whose partitions could not elect a
// leader now: each needs a majority of its replicas live.
func (b *Broker) checkQuorumLive(assignment [][]int32) error {
	live := b.catalog.LiveBrokers()
	for i, reps := range assignment {
		up := 0
		for _, r := range reps {
			if slices.Contains(live, r) {
				up++
			}
		}
		if up < len(reps)/2+1 {
			return describe(kerr.InvalidReplicationFactor, "partition %d would have %d of its %d replicas live (brokers live: %v); a majority is needed", i, up, len(reps), live)
		}
	}
	return nil
}

// maxPartitions bounds the partitions of one topic, so that a request
// cannot make the node allocate (or the catalog hold) unbounded state.
const maxPartitions = 100000

// topicRequest is a topic to create.
type topicRequest struct {
	name       string
	partitions int32 // -1: the default
	rf         int16 // -1: the default
	assignment [][]int32
	configs    map[string]string
	internal   bool
}

// validateTopic checks a creation and fills in defaults and the assignment.
func (b *Broker) validateTopic(t *topicRequest) error {
	if err := validateTopicName(t.name); err != nil {
		return err
	}
	if !t.internal {
		if err := refuseReserved(t.name, "create"); err != nil {
			return err
		}
	}
	if b.catalog.Topic(t.name) != nil {
		return describe(kerr.TopicAlreadyExists, "topic %q already exists", t.name)
	}
	if err := b.checkCollision(t.name); err != nil {
		return err
	}
	brokers := b.brokerIDs()
	if len(t.assignment) > 0 {
		if t.partitions != -1 || t.rf != -1 {
			return describe(kerr.InvalidRequest, "a replica assignment excludes a partition count and replication factor")
		}
		t.partitions, t.rf = int32(len(t.assignment)), int16(len(t.assignment[0]))
		for i, reps := range t.assignment {
			if len(reps) != int(t.rf) {
				return describe(kerr.InvalidReplicaAssignment, "partition %d has %d replicas, partition 0 has %d", i, len(reps), t.rf)
			}
			seen := map[int32]bool{}
			for _, r := range reps {
				if !slices.Contains(brokers, r) {
					return describe(kerr.InvalidReplicaAssignment, "partition %d names unknown broker %d", i, r)
				}
				if seen[r] {
					return describe(kerr.InvalidReplicaAssignment, "partition %d names broker %d twice", i, r)
				}
				seen[r] = true
			}
		}
	} else {
		if t.partitions == -1 {
			t.partitions = b.cfg.NumPartitions
		}
		if t.rf == -1 {
			t.rf = b.cfg.DefaultReplicationFactor
		}
		if t.partitions < 1 {
			return describe(kerr.InvalidPartitions, "partition count %d must be at least 1", t.partitions)
		}
		if t.partitions > maxPartitions {
			return describe(kerr.InvalidPartitions, "partition count %d is above the limit of %d", t.partitions, maxPartitions)
		}
		if t.rf < 1 || int(t.rf) > len(brokers) {
			return describe(kerr.InvalidReplicationFactor, "replication factor %d must be between 1 and the number of brokers (%d)", t.rf, len(brokers))
		}
		placed := b.placementBrokers(int(t.rf))
		t.assignment = meta.Assign(placed, int(t.partitions), int(t.rf), b.assignmentStart(len(placed)))
	}
	if err := b.checkQuorumLive(t.assignment); err != nil {
		return err
	}
	if err := topicconfig.ValidateAll(t.configs, b.cfg.TopicDefaults); err != nil {
		return describe(kerr.InvalidConfig, "%v", err)
	}
	return nil
}

// assignmentStart spreads new topics' first replicas: it continues the
// rotation where the catalog's partitions leave it.
func (b *Broker) assignmentStart(brokers int) int {
	n := 0
	for _, t := range b.catalog.Topics() {
		n += len(t.Partitions)
	}
	return n % max(brokers, 1)
}

// createTopic creates a validated topic and waits (until ctx ends) for its
// partitions to have leaders, so clients can use it at once.
func (b *Broker) createTopic(ctx context.Context, t *topicRequest) (*meta.Topic, error) {
	if _, err := b.catalog.CreateTopic(ctx, t.name, t.assignment, t.configs, t.internal); err != nil {
		return nil, err
	}
	b.logger.Info("created topic", "topic", t.name, "partitions", t.partitions, "replication_factor", t.rf)
	b.waitForLeaders(ctx, t.name)
	return b.catalog.Topic(t.name), nil
}

// waitForLeaders polls until every partition of topic has a leader or ctx
// ends. The catalog's topics are copied on write, so it reads the topic
// afresh each time.
func (b *Broker) waitForLeaders(ctx context.Context, name string) {
	for {
		topic := b.catalog.Topic(name)
		if topic == nil {
			return
		}
		all := true
		for _, p := range topic.Partitions {
			if st := b.partitionState(topic, p); st.leader < 0 {
				all = false
				break
			}
		}
		if all {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// partitionState is what Metadata reports of one partition.
type partitionState struct {
	leader   int32
	epoch    int32
	replicas []int32
	isr      []int32
}

// partitionState is what every node reports: the leader, epoch and ISR the
// partition's leader published to the catalog, with no leader once that
// broker is no longer listed (see listedBrokers). A ready leader here
// answers from its own, fresher, view.
func (b *Broker) partitionState(t *meta.Topic, p meta.Partition) partitionState {
	st := partitionState{leader: -1, epoch: -1, replicas: p.Replicas, isr: p.ISR}
	if len(st.isr) == 0 {
		st.isr = p.Replicas
	}
	if r := b.replicas.Get(replica.TopicPartition{Topic: t.Name, Partition: p.ID}); r != nil && sameReplica(r, t, p) {
		v := r.View()
		if v.IsLeader && v.Ready {
			st.leader, st.epoch, st.isr = b.cfg.NodeID, int32(v.Term), toInt32s(v.ISR)
			return st
		}
		if v.Failed != nil && p.Leader == b.cfg.NodeID {
			// This replica published itself as leader, then failed and
			// handed over: its successor will publish itself shortly.
			return st
		}
	}
	if p.Leader >= 0 && slices.Contains(b.listedBrokers(), p.Leader) {
		st.leader, st.epoch = p.Leader, p.Epoch
	}
	return st
}

// listedBrokers are the brokers Metadata lists: the live ones and, for
// DownBrokerGrace, those that stopped being live but are still named
// the leader of a partition whose successor has not published itself.
// Listed no longer than needed: a client that caches the broker list
// (kafka-python's admin client asks every listed broker for its groups)
// keeps trying a dead broker it was given.
func (b *Broker) listedBrokers() []int32 {
	return b.catalog.LiveOrSucceeding(b.cfg.DownBrokerGrace)
}

func toInt32s(ids []uint64) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// ensureOffsetsTopic creates __consumer_offsets on first use.
func (b *Broker) ensureOffsetsTopic(ctx context.Context) error {
	if b.catalog.Topic(OffsetsTopic) != nil {
		return nil
	}
	rf := min(b.cfg.OffsetsReplicationFactor, int16(len(b.brokerIDs())))
	t := &topicRequest{name: OffsetsTopic, partitions: b.cfg.OffsetsTopicPartitions, rf: max(rf, 1), internal: true,
		configs: map[string]string{topicconfig.RetentionMs: "-1", topicconfig.SegmentBytes: fmt.Sprint(100 << 20)}}
	if err := b.validateTopic(t); err != nil {
		if b.catalog.Topic(OffsetsTopic) != nil {
			return nil // created meanwhile
		}
		return err
	}
	_, err := b.createTopic(ctx, t)
	if err != nil && b.catalog.Topic(OffsetsTopic) != nil {
		return nil
	}
	return err
}

func cloneConfigs(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
