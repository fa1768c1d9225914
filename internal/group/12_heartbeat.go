package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat: v0-4
//
// Behavior:
//   - Unknown group or member: UNKNOWN_MEMBER_ID; a fenced instance id:
//     FENCED_INSTANCE_ID; another generation: ILLEGAL_GENERATION; an Empty
//     group: UNKNOWN_MEMBER_ID.
//   - A valid heartbeat extends the member's session. During
//     PreparingRebalance it is answered with REBALANCE_IN_PROGRESS, which
//     tells the member to rejoin.
//
// Version notes:
//   - v1: throttle time
//   - v3: group instance id
//   - v4: flexible versions
func init() { versions[kmsg.Heartbeat.Int16()] = versionRange{0, 4} }

func (c *Coordinator) handleHeartbeat(req *kmsg.HeartbeatRequest, respond func(kmsg.Response)) {
	reply := func(code int16) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.Version = req.Version
		resp.ErrorCode = code
		respond(resp)
	}
	if !supported(req.Key(), req.Version) {
		reply(kerr.UnsupportedVersion.Code)
		return
	}
	if req.Group == "" {
		reply(kerr.InvalidGroupID.Code)
		return
	}
	c.onGroup(req.Group, reply, func(s *shard) { reply(s.heartbeat(req)) })
}

func (s *shard) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	g := s.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	inst := req.InstanceID
	if req.Version < 3 {
		inst = nil
	}
	m, code := g.validateMember(req.MemberID, inst)
	if code != 0 {
		return code
	}
	if g.state == stateEmpty {
		return kerr.UnknownMemberID.Code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m.seen = time.Now()
	if g.state == statePreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}
