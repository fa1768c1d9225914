package group

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is the state of a classic group, as in Kafka.
//
//	Empty ──join──► PreparingRebalance ──all joined / timeout──► CompletingRebalance
//	  ▲                 ▲        │ (no member left)                    │ leader's SyncGroup
//	  └─────────────────┼────────┘                                     ▼ written
//	                    └──────── member joins, leaves, expires ◄──── Stable
//	Empty ──DeleteGroups / expiry──► Dead
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (st groupState) String() string {
	switch st {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	case stateDead:
		return "Dead"
	}
	return fmt.Sprintf("groupState(%d)", int8(st))
}

// group is one classic group and its committed offsets. Owned by its
// shard's loop.
type group struct {
	id         string
	state      groupState
	stateSince time.Time

	protocolType string // "" until a member joins (or for offsets-only groups)
	protocol     string // the protocol of the current generation; "" when none
	generation   int32
	// leader is the member that runs the assignor.
	// Invariant: leader is "" or a key of members.
	leader  string
	members map[string]*member
	static  map[string]string      // group instance id → member id
	pending map[string]*time.Timer // member ids given out with MEMBER_ID_REQUIRED, not yet joined
	nextSeq uint64

	// The join phase (PreparingRebalance).
	joinTimer *time.Timer
	// joinEpoch changes whenever a join phase starts or ends, so a join
	// timer that fires late sees it is stale.
	joinEpoch      uint64
	initialDelay   bool // the phase waits out group.initial.rebalance.delay.ms
	newMemberAdded bool // a member joined during the initial delay
	delayRemaining time.Duration

	// Durable state: exactly what replaying the log gives for this group.
	offsets map[topicPartition]offsetCommit
	meta    []byte // the last GroupMetadataValue written; nil if none or tombstoned

	// Writes in flight.
	pendingCommits map[topicPartition]int // commits in flight per partition
	inflight       int                    // writes in flight that concern this group
}

// member is one member of a classic group.
type member struct {
	id               string
	instanceID       *string // static membership (KIP-345)
	clientID         string
	clientHost       string
	seq              uint64 // join order, for stable member lists
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte
	// isNew is true from a member's first JoinGroup until its join phase
	// completes; such a member is bounded by newMemberJoinTimeout instead
	// of its session.
	isNew bool

	join     *joinWait                           // the parked JoinGroup, if any
	joinedAt time.Time                           // when join was parked
	sync     func(code int16, assignment []byte) // the parked SyncGroup, if any

	seen  time.Time   // last heartbeat (or join, sync, commit)
	timer *time.Timer // session timer
}

// joinResult is what a JoinGroup is answered with, before it is encoded at
// the request's version.
type joinResult struct {
	code           int16
	memberID       string
	generation     int32
	protocolType   string
	protocol       string // "" when none
	leader         string
	skipAssignment bool
	members        []kmsg.JoinGroupResponseMember
}

func errJoin(code int16, memberID string) joinResult {
	return joinResult{code: code, memberID: memberID, generation: -1}
}

func newGroup(id string) *group {
	return &group{
		id:             id,
		state:          stateEmpty,
		stateSince:     time.Now(),
		members:        map[string]*member{},
		static:         map[string]string{},
		pending:        map[string]*time.Timer{},
		offsets:        map[topicPartition]offsetCommit{},
		pendingCommits: map[topicPartition]int{},
	}
}

func (g *group) setState(st groupState) {
	g.state = st
	g.stateSince = time.Now()
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return ms
}

// add makes m a member; the first member becomes the leader.
func (g *group) add(m *member) {
	g.nextSeq++
	m.seq = g.nextSeq
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
}

// remove drops m from the members (it answers nothing) and elects another
// leader if m led: a member waiting in JoinGroup if any, else any member.
func (g *group) remove(m *member) {
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	stopTimer(m.timer)
	m.timer = nil
	if g.leader != m.id {
		return
	}
	g.leader = ""
	ms := g.sortedMembers()
	for _, o := range ms {
		if o.join != nil {
			g.leader = o.id
			return
		}
	}
	if len(ms) > 0 {
		g.leader = ms[0].id
	}
}

// hasOffsets reports whether the group has offsets, committed or in flight.
func (g *group) hasOffsets() bool { return len(g.offsets) > 0 || len(g.pendingCommits) > 0 }

// supportsProtocols reports whether a member joining with protocol type pt
// and protocols can be in the group: an empty group takes any non-empty
// protocol list; otherwise the type must match and one of the protocols
// must be supported by every other member. self, if not nil, is the member
// that rejoins (its old protocols do not count).
func (g *group) supportsProtocols(pt string, protocols []kmsg.JoinGroupRequestProtocol, self *member) bool {
	if pt == "" || len(protocols) == 0 {
		return false
	}
	others := 0
	for _, m := range g.members {
		if m != self {
			others++
		}
	}
	if g.state == stateEmpty || others == 0 {
		return g.protocolType == "" || g.protocolType == pt || g.state == stateEmpty
	}
	if g.protocolType != pt {
		return false
	}
	for _, p := range protocols {
		n := 0
		for _, m := range g.members {
			if m != self && m.supports(p.Name) {
				n++
			}
		}
		if n == others {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol of the next generation: among the
// protocols every member supports, the one most members prefer (each votes
// for the first candidate in its own list), ties broken by name. It
// returns "" if the members share none.
func (g *group) selectProtocol() string {
	ms := g.sortedMembers()
	if len(ms) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range ms[0].protocols {
		all := true
		for _, m := range ms[1:] {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all && !slices.Contains(candidates, p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] || votes[c] == votes[best] && c < best {
			best = c
		}
	}
	return best
}

// allJoined reports whether every member waits in JoinGroup and no member
// id handed out with MEMBER_ID_REQUIRED is still to come.
func (g *group) allJoined() bool {
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return len(g.pending) == 0
}

// maxRebalanceTimeout is the longest rebalance timeout among the members:
// how long a join phase waits for them.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// memberMetadata lists the members with their metadata for the current
// protocol, for the leader's JoinGroup response.
func (g *group) memberMetadata() []kmsg.JoinGroupResponseMember {
	var out []kmsg.JoinGroupResponseMember
	for _, m := range g.sortedMembers() {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadata(g.protocol)
		out = append(out, jm)
	}
	return out
}

// subscribedTopics returns the topics the members subscribe to according to
// their consumer protocol metadata, and whether that is known: false if the
// group is not a "consumer" group or some metadata does not decode.
func (g *group) subscribedTopics() (map[string]bool, bool) {
	if g.protocolType != "consumer" {
		return nil, false
	}
	topics := map[string]bool{}
	for _, m := range g.members {
		var metas [][]byte
		if g.protocol != "" {
			metas = append(metas, m.metadata(g.protocol))
		} else {
			for _, p := range m.protocols {
				metas = append(metas, p.Metadata)
			}
		}
		for _, raw := range metas {
			var cm kmsg.ConsumerMemberMetadata
			if err := cm.ReadFrom(raw); err != nil {
				return nil, false
			}
			for _, t := range cm.Topics {
				topics[t] = true
			}
		}
	}
	return topics, true
}

func (g *group) summary(p int32) GroupSummary {
	committed := make([]CommittedOffset, 0, len(g.offsets))
	for tp, oc := range g.offsets {
		committed = append(committed, CommittedOffset{Topic: tp.topic, Partition: tp.partition, Offset: oc.offset})
	}
	return GroupSummary{
		Committed:    committed,
		Group:        g.id,
		Partition:    p,
		State:        g.state.String(),
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		Generation:   g.generation,
		Members:      len(g.members),
		Offsets:      len(g.offsets),
	}
}

// joinWait is a parked JoinGroup; a pointer, so a write's callback can
// tell whether the JoinGroup it would answer is still the one parked.
type joinWait struct{ reply func(joinResult) }

// answerJoin answers m's parked JoinGroup, if any.
func (m *member) answerJoin(r joinResult) {
	if w := m.join; w != nil {
		m.join = nil
		w.reply(r)
	}
}

// answerSync answers m's parked SyncGroup, if any.
func (m *member) answerSync(code int16, assignment []byte) {
	if sync := m.sync; sync != nil {
		m.sync = nil
		sync(code, assignment)
	}
}

func (m *member) supports(protocol string) bool {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return true
		}
	}
	return false
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether m joined with exactly these protocols, in order.
func (m *member) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, protocols, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

// newMemberID returns prefix-uuid, as Kafka does (the prefix is the client
// id, or the group instance id of a static member).
func newMemberID(prefix string) string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func ms(d time.Duration) int32 { return int32(d / time.Millisecond) }

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func protocolsClone(ps []kmsg.JoinGroupRequestProtocol) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(ps))
	for i, p := range ps {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: clone(p.Metadata)}
	}
	return out
}

func strPtr(s string) *string { return &s }

func ptrIfSet(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
