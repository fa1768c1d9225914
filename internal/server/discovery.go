package server

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/discovery"
)

func (n *Node) resolver() discovery.Resolver {
	d := n.cfg.Cluster.Discovery
	return discovery.Resolver{Service: d.DNSService, Server: d.DNSServer}
}

// discoverMembers resolves the cluster's members from DNS at start,
// retrying until the records name some (a headless service publishes a
// pod's record once it runs), and adds them to the configured ones. This
// node is a member whether or not its record is there yet.
func (n *Node) discoverMembers(ctx context.Context) error {
	r := n.resolver()
	var lastSaid time.Time
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		found, err := r.Members(qctx)
		cancel()
		if err == nil && len(found) > 0 {
			peers := slices.Clone(n.cfg.Cluster.Peers.Nodes)
			for _, p := range found {
				if !slices.ContainsFunc(peers, func(q config.Peer) bool { return q.ID == p.ID }) {
					peers = append(peers, p)
				}
			}
			if !slices.ContainsFunc(peers, func(q config.Peer) bool { return q.ID == n.cfg.NodeID }) {
				peers = append(peers, config.Peer{ID: n.cfg.NodeID, Addr: n.cfg.AdvertisedAddr})
			}
			n.cfg.Cluster.Peers.Nodes = peers
			n.logger.Info("members found in DNS", "service", r.Service, "members", config.FormatPeers(found))
			return nil
		}
		if err == nil {
			err = fmt.Errorf("no SRV records")
		}
		if time.Since(lastSaid) > 5*time.Second {
			lastSaid = time.Now()
			n.logger.Warn("waiting for the cluster's members in DNS", "service", r.Service, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("resolving the cluster's members from %s: %w (last: %v)", r.Service, ctx.Err(), err)
		case <-n.fatal:
			return n.fatalErr
		case <-time.After(time.Second):
		}
	}
}

// refreshMembers resolves the members again (every refresh interval), so a
// member's address follows its record (a pod rescheduled elsewhere).
// Members that appear later join the cluster by themselves.
func (n *Node) refreshMembers() {
	r := n.resolver()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	found, err := r.Members(ctx)
	if err != nil {
		n.logger.Warn("resolving the cluster's members from DNS", "service", r.Service, "err", err)
		return
	}
	for _, p := range found {
		n.learnPeer(p.ID, p.RaftAddress())
	}
}
