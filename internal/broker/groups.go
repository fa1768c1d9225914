package broker

import (
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
)

// The consumer group APIs are answered by the group coordinator
// (internal/group), which keeps group state in __consumer_offsets.
//
// OffsetCommit: v0-8; OffsetFetch: v0-8; JoinGroup: v0-9; Heartbeat: v0-4;
// LeaveGroup: v0-5; SyncGroup: v0-5; DescribeGroups: v0-5; ListGroups:
// v0-4; DeleteGroups: v0-2; OffsetDelete: v0.
func init() {
	for _, api := range []struct {
		key      kmsg.Key
		min, max int16
	}{
		{kmsg.OffsetCommit, 0, 8},
		{kmsg.OffsetFetch, 0, 8},
		{kmsg.JoinGroup, 0, 9},
		{kmsg.Heartbeat, 0, 4},
		{kmsg.LeaveGroup, 0, 5},
		{kmsg.SyncGroup, 0, 5},
		{kmsg.DescribeGroups, 0, 5},
		{kmsg.ListGroups, 0, 4},
		{kmsg.DeleteGroups, 0, 2},
		{kmsg.OffsetDelete, 0, 0},
	} {
		register(api.key, api.min, api.max, (*Broker).handleGroupRequest)
	}
}

func (b *Broker) handleGroupRequest(r *wire.Request, respond func(kmsg.Response)) {
	host := ""
	if r.Remote != nil {
		if h, _, err := net.SplitHostPort(r.Remote.String()); err == nil {
			host = "/" + h
		}
	}
	b.groups.HandleFrom(group.Client{ID: r.ClientID, Host: host}, r.Msg, respond)
}
