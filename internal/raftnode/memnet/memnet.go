// Package memnet is an in-memory network between raft hosts, for tests:
// nodes can be cut off, and a hook can drop any message.
package memnet

import (
	"sync"

	"github.com/chronik-stream/chronik/internal/raftnode"
)

// Hub connects the hosts of one test.
type Hub struct {
	mu    sync.Mutex
	hosts map[uint64]*raftnode.Host
	cut   map[uint64]bool
	drop  func(raftnode.Envelope) bool
}

// New returns an empty hub.
func New() *Hub { return &Hub{hosts: map[uint64]*raftnode.Host{}, cut: map[uint64]bool{}} }

// Transport returns the transport node id sends through.
func (h *Hub) Transport(id uint64) raftnode.Transport { return transport{h, id} }

// Attach makes host reachable as node id.
func (h *Hub) Attach(id uint64, host *raftnode.Host) {
	h.mu.Lock()
	h.hosts[id] = host
	h.mu.Unlock()
}

// Detach makes node id unreachable (its host stopped).
func (h *Hub) Detach(id uint64) {
	h.mu.Lock()
	delete(h.hosts, id)
	h.mu.Unlock()
}

// Cut isolates node id (true) or heals it (false).
func (h *Hub) Cut(id uint64, cut bool) {
	h.mu.Lock()
	h.cut[id] = cut
	h.mu.Unlock()
}

// Drop sets a hook that drops the messages it returns true for (nil: none).
func (h *Hub) Drop(fn func(raftnode.Envelope) bool) {
	h.mu.Lock()
	h.drop = fn
	h.mu.Unlock()
}

type transport struct {
	h    *Hub
	from uint64
}

func (t transport) Send(envs []raftnode.Envelope) {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	if t.h.cut[t.from] {
		return
	}
	by := map[uint64][]raftnode.Envelope{}
	for _, e := range envs {
		if !t.h.cut[e.Msg.To] && (t.h.drop == nil || !t.h.drop(e)) {
			by[e.Msg.To] = append(by[e.Msg.To], e)
		}
	}
	for to, es := range by {
		if host := t.h.hosts[to]; host != nil {
			go host.Deliver(es) // a network does not run the receiver on the sender's goroutine
		}
	}
}
