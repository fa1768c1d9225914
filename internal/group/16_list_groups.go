package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-4
//
// Behavior:
//   - Lists the groups of every offsets partition this node leads (Dead
//     groups are not listed). If a partition is still loading, the error is
//     COORDINATOR_LOAD_IN_PROGRESS and the groups of the loaded partitions
//     are listed anyway, as Kafka does.
//
// Version notes:
//   - v1: throttle time
//   - v3: flexible versions
//   - v4: states filter (case-insensitive; empty = all) and group state
func init() { versions[kmsg.ListGroups.Int16()] = versionRange{0, 4} }

func (c *Coordinator) handleListGroups(req *kmsg.ListGroupsRequest, respond func(kmsg.Response)) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.Version = req.Version
	resp.Groups = []kmsg.ListGroupsResponseGroup{}
	if !supported(req.Key(), req.Version) {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		respond(resp)
		return
	}
	var filter []string
	if req.Version >= 4 {
		filter = req.StatesFilter
	}
	shards := c.allShards()
	parts := make([][]kmsg.ListGroupsResponseGroup, len(shards))
	loading := make([]bool, len(shards))
	gt := newGather(len(shards)+1, func() {
		for i := range shards {
			resp.Groups = append(resp.Groups, parts[i]...)
			if loading[i] {
				resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			}
		}
		respond(resp)
	})
	for i, s := range shards {
		ok := s.q.push(func() {
			defer gt.finish()
			switch s.servable() {
			case 0:
			case kerr.CoordinatorLoadInProgress.Code:
				loading[i] = true
				return
			default:
				return
			}
			parts[i] = s.listGroups(req.Version, filter)
		})
		if !ok {
			gt.finish()
		}
	}
	gt.finish()
}

func (s *shard) listGroups(version int16, filter []string) []kmsg.ListGroupsResponseGroup {
	var out []kmsg.ListGroupsResponseGroup
	for _, g := range s.groups {
		if g.state == stateDead {
			continue
		}
		state := g.state.String()
		if len(filter) > 0 && !slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, state) }) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = g.id
		lg.ProtocolType = g.protocolType
		if version >= 4 {
			lg.GroupState = state
		}
		out = append(out, lg)
	}
	slices.SortFunc(out, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	return out
}
