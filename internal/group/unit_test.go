package group

import (
	"errors"
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func protos(names ...string) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(names))
	for i, n := range names {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: n}
	}
	return out
}

func groupWith(state groupState, members ...[]string) *group {
	g := newGroup("g")
	g.state = state
	g.protocolType = "consumer"
	for i, ps := range members {
		g.add(&member{id: fmt.Sprint(i), protocols: protos(ps...)})
	}
	return g
}

func TestSelectProtocol(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members [][]string
		want    string
	}{
		{"no members", nil, ""},
		{"one member takes its first", [][]string{{"a", "b"}}, "a"},
		{"only common", [][]string{{"a", "b"}, {"b", "c"}}, "b"},
		{"majority preference", [][]string{{"a", "b"}, {"b", "a"}, {"b", "a"}}, "b"},
		{"tie by name", [][]string{{"b", "a"}, {"a", "b"}}, "a"},
		{"none common", [][]string{{"a"}, {"b"}}, ""},
		{"common but not preferred", [][]string{{"x", "c"}, {"y", "c"}, {"c"}}, "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := groupWith(stateStable, tc.members...).selectProtocol(); got != tc.want {
				t.Fatalf("selected %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSupportsProtocols(t *testing.T) {
	for _, tc := range []struct {
		name    string
		state   groupState
		members [][]string
		pt      string
		join    []string
		self    int // index of the rejoining member, -1 if new
		want    bool
	}{
		{"empty group takes anything", stateEmpty, nil, "connect", []string{"x"}, -1, true},
		{"empty protocol type", stateEmpty, nil, "", []string{"x"}, -1, false},
		{"no protocols", stateEmpty, nil, "consumer", nil, -1, false},
		{"shares one", stateStable, [][]string{{"a", "b"}}, "consumer", []string{"c", "b"}, -1, true},
		{"shares none", stateStable, [][]string{{"a"}}, "consumer", []string{"b"}, -1, false},
		{"other type", stateStable, [][]string{{"a"}}, "connect", []string{"a"}, -1, false},
		{"must be supported by all", stateStable, [][]string{{"a"}, {"b"}}, "consumer", []string{"a"}, -1, false},
		{"rejoining member's old protocols do not count", stateStable, [][]string{{"a"}, {"a", "b"}}, "consumer", []string{"b"}, 0, true},
		{"sole member may change protocols", stateStable, [][]string{{"a"}}, "consumer", []string{"b"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := groupWith(tc.state, tc.members...)
			var self *member
			if tc.self >= 0 {
				self = g.members[fmt.Sprint(tc.self)]
			}
			if got := g.supportsProtocols(tc.pt, protos(tc.join...), self); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPartitionFor(t *testing.T) {
	c := New(Config{Partitions: 50}, newFakeLog())
	defer c.Close()
	for _, g := range []string{"", "g", "my-consumer-group", "組"} {
		h := fnv.New32a()
		h.Write([]byte(g))
		want := int32(h.Sum32() % 50)
		if got := c.PartitionFor(g); got != want || got < 0 || got >= 50 {
			t.Fatalf("PartitionFor(%q) = %d, want %d", g, got, want)
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	tp := topicPartition{"topic", 7}
	for _, o := range []offsetCommit{
		{offset: 42, leaderEpoch: 3, metadata: "m", commitTime: 1000, expireTime: -1},
		{offset: 0, leaderEpoch: -1, metadata: "", commitTime: 5, expireTime: 99},
	} {
		e, err := decodeEntry(offsetKey("g", tp), offsetValue(o))
		if err != nil {
			t.Fatal(err)
		}
		if !e.isOffset || e.group != "g" || e.tp != tp || e.offset == nil || *e.offset != o {
			t.Fatalf("decoded %+v (%+v), want %+v", e, e.offset, o)
		}
	}
	e, err := decodeEntry(offsetKey("g", tp), nil)
	if err != nil || !e.isOffset || e.offset != nil {
		t.Fatalf("offset tombstone: %+v %v", e, err)
	}

	v := kmsg.NewGroupMetadataValue()
	v.ProtocolType, v.Generation, v.Protocol, v.Leader = "consumer", 4, strPtr("range"), strPtr("m1")
	gm := kmsg.NewGroupMetadataValueMember()
	gm.MemberID, gm.InstanceID, gm.SessionTimeoutMillis, gm.Assignment = "m1", strPtr("i1"), 10, []byte{1}
	v.Members = []kmsg.GroupMetadataValueMember{gm}
	e, err = decodeEntry(groupKey("g"), groupValue(&v))
	if err != nil || !e.isGroup || e.meta == nil || e.meta.Generation != 4 || *e.meta.Members[0].InstanceID != "i1" || e.meta.Version != groupValueVersion {
		t.Fatalf("group metadata: %+v %v", e, err)
	}
	e, err = decodeEntry(groupKey("g"), nil)
	if err != nil || !e.isGroup || e.meta != nil {
		t.Fatalf("group tombstone: %+v %v", e, err)
	}

	// Kafka's key version 0 still reads.
	k0 := kmsg.OffsetCommitKey{Version: 0, Group: "g", Topic: "t", Partition: 1}
	if e, err := decodeEntry(k0.AppendTo(nil), nil); err != nil || e.tp.partition != 1 {
		t.Fatalf("key v0: %+v %v", e, err)
	}
	for _, key := range [][]byte{{0, 3, 0, 0}, {0x7f, 0x7f}} {
		if _, err := decodeEntry(key, nil); !errors.Is(err, errUnknownKey) {
			t.Fatalf("key %x: %v, want errUnknownKey", key, err)
		}
	}
	if _, err := decodeEntry([]byte{0}, nil); err == nil {
		t.Fatal("a one-byte key decoded")
	}
	if _, err := decodeEntry(offsetKey("g", tp), []byte{0, 3, 1}); err == nil {
		t.Fatal("a truncated value decoded")
	}
}

func TestAppendErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err           error
		commit, group *kerr.Error
	}{
		{nil, nil, nil},
		{kerr.NotLeaderForPartition, kerr.NotCoordinator, kerr.NotCoordinator},
		{kerr.KafkaStorageError, kerr.NotCoordinator, kerr.NotCoordinator},
		{kerr.NotEnoughReplicas, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
		{kerr.NotEnoughReplicasAfterAppend, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
		{kerr.RequestTimedOut, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
		{kerr.UnknownTopicOrPartition, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
		{kerr.MessageTooLarge, kerr.InvalidCommitOffsetSize, kerr.UnknownServerError},
		{kerr.RecordListTooLarge, kerr.InvalidCommitOffsetSize, kerr.UnknownServerError},
		{fmt.Errorf("wrapped: %w", kerr.NotLeaderForPartition), kerr.NotCoordinator, kerr.NotCoordinator},
		{kerr.InvalidRecord, kerr.InvalidRecord, kerr.InvalidRecord},
		{errors.New("io"), kerr.UnknownServerError, kerr.UnknownServerError},
	} {
		name := "nil"
		if tc.err != nil {
			name = tc.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			wantCode(t, "commit", commitError(tc.err), tc.commit)
			wantCode(t, "group", groupError(tc.err), tc.group)
		})
	}
}

func TestQueue(t *testing.T) {
	q := newQueue()
	var got []int
	for i := range 3 {
		if !q.push(func() { got = append(got, i) }) {
			t.Fatal("push refused")
		}
	}
	q.closeWith(func() { got = append(got, 99) })
	if q.push(func() {}) {
		t.Fatal("push accepted after close")
	}
	fns, more := q.next()
	for _, fn := range fns {
		fn()
	}
	if more || fmt.Sprint(got) != "[0 1 2 99]" {
		t.Fatalf("ran %v, more %v", got, more)
	}
}
