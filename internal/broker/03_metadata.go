package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/meta"
	"github.com/chronik-stream/chronik/internal/wire"
)

// Metadata: v0-12
//
// Behavior:
// * Lists the live brokers (those the metadata leader hears from) and a
// broker that stopped being live while some partition still names it
// leader (no successor has published itself), for at most
// DownBrokerGrace: as Kafka names a dead leader until the broker's
// session expires (LEADER_NOT_AVAILABLE in that window made sarama's
// producer fail records it was retrying). Every leader named is a listed
// broker; a partition whose leader is not listed reports none
// (LEADER_NOT_AVAILABLE). Every node answers alike: leaders, epochs and
// ISRs come from the catalog. Offline replicas are those on brokers not
// live.
// * Topics: all when the request's list is null (or empty before v1);
// else the named ones (by name, or by topic id from v10).
// * An unknown topic is created when auto.create.topics.enable is on and
// the request allows it (always before v4), with num.partitions and the
// default replication factor; the answer waits until its partitions have
// leaders. Otherwise UNKNOWN_TOPIC_OR_PARTITION; an invalid name, one
// that collides with an existing topic once '.' and '_' are equated, and a
// reserved name not yet created (__consumer_offsets is created by
// FindCoordinator) get INVALID_TOPIC_EXCEPTION.
// * A partition with no known leader reports LEADER_NOT_AVAILABLE.
// * The topics found come first, in the request's order, then the
// unknown ones, as Kafka lists them.
// * Authorized operations, when asked for, are every operation Kafka
// supports on a topic (and on the cluster), as a Kafka broker without an
// authorizer answers; not asked for, they are omitted (INT32_MIN).
//
// Version notes:
// * v1 controller id and internal flag, v2 cluster id, v5 offline replicas,
// v7 leader epoch, v8 authorized operations (the cluster's until v10), v9
// flexible, v10 topic ids.
func init() { register(kmsg.Metadata, 0, 12, (*Broker).handleMetadata) }

func (b *Broker) handleMetadata(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	live, listed := b.catalog.LiveBrokers(), b.listedBrokers()
	for _, br := range b.catalog.Brokers() {
		if slices.Contains(listed, br.ID) {
			resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: br.ID, Host: br.Host, Port: br.Port})
		}
	}
	cid := b.catalog.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = b.controllerID()

	var topics []*meta.Topic
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		topics = b.catalog.Topics()
	}
	// Kafka lists the topics it has first and the unknown ones after them,
	// and librdkafka 2.0 depends on it: it keeps an unknown topic in its
	// cache for 100 ms but evicts entries in the order they were listed,
	// so one listed before a known topic is gone at once; a consumer
	// subscribed to a deleted topic rejoins only while that entry is
	// cached, and postponed its rejoin for ever.
	var unknown []kmsg.MetadataResponseTopic
	for _, rt := range req.Topics {
		t, mt := b.lookupMetadataTopic(req, rt)
		if t != nil {
			topics = append(topics, t)
			continue
		}
		unknown = append(unknown, mt)
	}
	for _, t := range topics {
		resp.Topics = append(resp.Topics, b.metadataTopic(t, live))
	}
	resp.Topics = append(resp.Topics, unknown...)
	if req.Version >= 8 && req.Version <= 10 && req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterOperations
	}
	if req.Version >= 8 && req.IncludeTopicAuthorizedOperations {
		for i := range resp.Topics {
			resp.Topics[i].AuthorizedOperations = topicOperations
		}
	}
	respond(resp)
}

// Chronik has no ACLs: any client may do anything, and it is told so with
// the operations Kafka supports on each kind of resource (Kafka's
// AclEntry.supportedOperations), as a Kafka broker without an authorizer
// tells it. Bits are AclOperation codes.
const (
	// topicOperations: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
	// DESCRIBE_CONFIGS, ALTER_CONFIGS.
	topicOperations = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	// clusterOperations: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
	// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
	clusterOperations = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
)

// lookupMetadataTopic finds (or auto-creates) a requested topic. If it
// cannot, it returns the error entry for the response.
func (b *Broker) lookupMetadataTopic(req *kmsg.MetadataRequest, rt kmsg.MetadataRequestTopic) (*meta.Topic, kmsg.MetadataResponseTopic) {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = rt.Topic
	mt.TopicID = rt.TopicID
	if rt.Topic == nil {
		if t := b.catalog.TopicByID(rt.TopicID); t != nil {
			return t, mt
		}
		mt.ErrorCode = kerr.UnknownTopicID.Code
		return nil, mt
	}
	name := *rt.Topic
	if t := b.catalog.Topic(name); t != nil {
		return t, mt
	}
	if err := validateTopicName(name); err != nil {
		mt.ErrorCode = kerr.InvalidTopicException.Code
		return nil, mt
	}
	if err := refuseReserved(name, "create"); err != nil {
		mt.ErrorCode = kerr.InvalidTopicException.Code
		return nil, mt
	}
	allow := req.Version < 4 || req.AllowAutoTopicCreation
	if !b.cfg.AutoCreateTopics || !allow {
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return nil, mt
	}
	tr := &topicRequest{name: name, partitions: -1, rf: -1}
	if err := b.validateTopic(tr); err != nil {
		if t := b.catalog.Topic(name); t != nil { // created meanwhile
			return t, mt
		}
		mt.ErrorCode = b.errCode(err)
		return nil, mt
	}
	ctx, cancel := b.ctx()
	defer cancel()
	t, err := b.createTopic(ctx, tr)
	if err != nil {
		if t := b.catalog.Topic(name); t != nil {
			return t, mt
		}
		mt.ErrorCode = b.errCode(err)
		return nil, mt
	}
	return t, mt
}

func (b *Broker) metadataTopic(t *meta.Topic, live []int32) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	for _, p := range t.Partitions {
		st := b.partitionState(t, p)
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.ID
		mp.Leader = st.leader
		mp.LeaderEpoch = st.epoch
		mp.Replicas = st.replicas
		mp.ISR = st.isr
		mp.OfflineReplicas = offlineReplicas(st.replicas, live)
		if st.leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// controllerID is the node leading the metadata group, or this node.
func (b *Broker) controllerID() int32 {
	if lead := b.catalog.Group().Status().Lead; lead != 0 {
		return int32(lead)
	}
	return b.cfg.NodeID
}
