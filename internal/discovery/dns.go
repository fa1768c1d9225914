// Package discovery finds the members of a cluster from DNS SRV records,
// as a Kubernetes headless service publishes them for a StatefulSet: one
// record per member, whose target is the member's host name
// (<name>-<ordinal>.<service>...) and whose port is its Kafka port. A
// member's node id is its ordinal plus one.
package discovery

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/chronik-stream/chronik/internal/config"
)

// Resolver looks members up.
type Resolver struct {
	// Service is the SRV name to resolve (cluster.discovery.dns_service).
	Service string
	// Server, if set, is the DNS server (host:port) to ask instead of the
	// system's resolver (cluster.discovery.dns_server).
	Server string
}

// Members returns the members the SRV records name, by node id, at the
// address their host names resolve to (the first, sorted, if several).
// Their raft addresses take the default (the Kafka port + 100).
func (r Resolver) Members(ctx context.Context) ([]config.Peer, error) {
	res := &net.Resolver{PreferGo: true}
	if r.Server != "" {
		res.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, r.Server)
		}
	}
	_, srvs, err := res.LookupSRV(ctx, "", "", r.Service)
	if err != nil {
		return nil, fmt.Errorf("resolve the SRV records of %s: %w", r.Service, err)
	}
	var peers []config.Peer
	for _, s := range srvs {
		host := strings.TrimSuffix(s.Target, ".")
		id, err := config.NodeIDFromHostname(host)
		if err != nil {
			return nil, fmt.Errorf("SRV record of %s: %w", r.Service, err)
		}
		if i := slices.IndexFunc(peers, func(p config.Peer) bool { return p.ID == id }); i >= 0 {
			return nil, fmt.Errorf("SRV records of %s: %s and %s both are node %d", r.Service, peers[i].Addr, host, id)
		}
		// The target is resolved here, with the same server: a node's
		// own resolver need not know the service's host names.
		addrs, err := res.LookupHost(ctx, host)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s (SRV record of %s): %v", host, r.Service, err)
		}
		slices.Sort(addrs)
		peers = append(peers, config.Peer{ID: id, Addr: net.JoinHostPort(addrs[0], strconv.Itoa(int(s.Port)))})
	}
	slices.SortFunc(peers, func(a, b config.Peer) int { return int(a.ID) - int(b.ID) })
	return peers, nil
}
