package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: v0-5
//
// Behavior:
//   - Each group is answered by the shard that owns it (NOT_COORDINATOR or
//     COORDINATOR_LOAD_IN_PROGRESS per group otherwise).
//   - An unknown group is described as Dead with no error (as Kafka before
//     v6).
//   - Members are listed in every state; their metadata (for the selected
//     protocol) and assignment only when the group is Stable, as Kafka does.
//
// Version notes:
//   - v1: throttle time
//   - v3: authorized operations, when asked for: without ACLs, every group
//     operation (READ, DELETE, DESCRIBE)
//   - v4: group instance ids
//   - v5: flexible versions
func init() { versions[kmsg.DescribeGroups.Int16()] = versionRange{0, 5} }

// groupOperations is the bit set of READ (3), DELETE (6) and DESCRIBE (8):
// what any principal may do to a group while Chronik has no ACLs.
const groupOperations = 1<<3 | 1<<6 | 1<<8

func (c *Coordinator) handleDescribeGroups(req *kmsg.DescribeGroupsRequest, respond func(kmsg.Response)) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Version = req.Version
	resp.Groups = make([]kmsg.DescribeGroupsResponseGroup, len(req.Groups))
	for i, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		rg.Members = []kmsg.DescribeGroupsResponseGroupMember{}
		if req.Version >= 3 && req.IncludeAuthorizedOperations {
			rg.AuthorizedOperations = groupOperations
		}
		resp.Groups[i] = rg
	}
	if !supported(req.Key(), req.Version) {
		for i := range resp.Groups {
			resp.Groups[i].ErrorCode = kerr.UnsupportedVersion.Code
		}
		respond(resp)
		return
	}
	gt := newGather(len(req.Groups)+1, func() { respond(resp) })
	for i, id := range req.Groups {
		rg := &resp.Groups[i]
		c.onGroup(id,
			func(code int16) { rg.ErrorCode = code; gt.finish() },
			func(s *shard) { s.describeGroup(id, rg); gt.finish() })
	}
	gt.finish()
}

func (s *shard) describeGroup(id string, rg *kmsg.DescribeGroupsResponseGroup) {
	g := s.groups[id]
	if g == nil {
		rg.State = stateDead.String()
		return
	}
	rg.State = g.state.String()
	rg.ProtocolType = g.protocolType
	stable := g.state == stateStable
	if stable {
		rg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if stable {
			dm.ProtocolMetadata = clone(m.metadata(g.protocol))
			dm.MemberAssignment = clone(m.assignment)
		}
		rg.Members = append(rg.Members, dm)
	}
}
