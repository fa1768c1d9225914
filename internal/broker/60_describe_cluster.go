package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// DescribeCluster: v0-1
//
// Behavior:
// * The cluster id, the controller (the metadata group's leader) and every
// live broker.
// * Authorized operations, when asked for, are every operation Kafka
// supports on the cluster (no ACLs); else omitted (INT32_MIN).
//
// Version notes:
// * v1 endpoint type (brokers only).
func init() { register(kmsg.DescribeCluster, 0, 1, (*Broker).handleDescribeCluster) }

func (b *Broker) handleDescribeCluster(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = b.catalog.ClusterID()
	resp.ControllerID = b.controllerID()
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	live := b.catalog.LiveBrokers()
	for _, br := range b.catalog.Brokers() {
		if slices.Contains(live, br.ID) {
			resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: br.ID, Host: br.Host, Port: br.Port})
		}
	}
	respond(resp)
}
