package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAuthorizedOperations: a client that asks for authorized operations
// gets those Kafka supports on a topic and on the cluster (there are no
// ACLs); one that does not ask gets them omitted (INT32_MIN). Chronik
// answered INT32_MIN even when asked, which a Kafka broker never does, and
// kafka-python 2.3's admin client (it always asks) failed decoding bit 31 as
// an operation.
func TestAuthorizedOperations(t *testing.T) {
	n := startStandalone(t)
	n.createTopic(t, "ops", nil)
	const omitted = -2147483648
	for _, ask := range []bool{true, false} {
		for v := int16(8); v <= 12; v++ {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("ops")}}
			req.IncludeClusterAuthorizedOperations = ask
			req.IncludeTopicAuthorizedOperations = ask
			resp := n.handle(t, req, v).(*kmsg.MetadataResponse)
			wantTopic, wantCluster := int32(omitted), int32(omitted)
			if ask {
				// READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS
				wantTopic = 0b1101_1111_1000
				if v <= 10 {
					// CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE
					wantCluster = 0b1_1111_1010_0000
				}
			}
			if len(resp.Topics) != 1 || resp.Topics[0].AuthorizedOperations != wantTopic {
				t.Errorf("Metadata v%d asked %v: topics %+v, want authorized operations %b", v, ask, resp.Topics, wantTopic)
			}
			if resp.AuthorizedOperations != wantCluster {
				t.Errorf("Metadata v%d asked %v: cluster authorized operations %b, want %b", v, ask, resp.AuthorizedOperations, wantCluster)
			}
		}
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeClusterAuthorizedOperations = ask
		resp := n.handle(t, req, 0).(*kmsg.DescribeClusterResponse)
		want := int32(omitted)
		if ask {
			want = 0b1_1111_1010_0000
		}
		if resp.ClusterAuthorizedOperations != want {
			t.Errorf("DescribeCluster asked %v: authorized operations %b, want %b", ask, resp.ClusterAuthorizedOperations, want)
		}
	}
}
