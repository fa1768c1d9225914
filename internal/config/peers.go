package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// RaftAddress is the member's raft host:port: RaftAddr, or Addr's host with
// Addr's port + 100 when RaftAddr is empty. It is "" if Addr is not a valid
// host:port or the derived port would exceed 65535.
func (p Peer) RaftAddress() string {
	if p.RaftAddr != "" {
		return p.RaftAddr
	}
	host, port, err := net.SplitHostPort(p.Addr)
	if err != nil {
		return ""
	}
	n, err := strconv.Atoi(port)
	if err != nil || n+RaftPortOffset > 65535 {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(n+RaftPortOffset))
}

// ParsePeers parses a member list as given to CHRONIK_CLUSTER_PEERS or the
// --peers flag. Two forms are accepted, not mixed:
//
//	host:port,host:port,...        ids 1..n in the order given
//	id@host:port,id@host:port,...  explicit ids
//
// Spaces around entries are ignored. Raft addresses take their default
// (port + 100); use the TOML file to set them explicitly. An empty string
// is an empty list.
func ParsePeers(s string) ([]Peer, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	entries := strings.Split(s, ",")
	peers := make([]Peer, 0, len(entries))
	withIDs := strings.Contains(entries[0], "@")
	ids := make(map[uint64]int)
	addrs := make(map[string]int)
	for i, e := range entries {
		e = strings.TrimSpace(e)
		n := i + 1
		if e == "" {
			return nil, fmt.Errorf("peer %d is empty (stray comma?)", n)
		}
		p := Peer{ID: uint64(n), Addr: e}
		idStr, addr, hasID := strings.Cut(e, "@")
		if hasID != withIDs {
			return nil, fmt.Errorf("peer %d %q: write every peer as id@host:port or every peer as host:port, not a mix", n, e)
		}
		if hasID {
			id, err := strconv.ParseUint(strings.TrimSpace(idStr), 10, 64)
			if err != nil || id == 0 || id > maxID {
				return nil, fmt.Errorf("peer %d %q: id %q must be an integer between 1 and %d", n, e, idStr, uint64(maxID))
			}
			p.ID, p.Addr = id, strings.TrimSpace(addr)
		}
		if rule := checkAddr(p.Addr, true); rule != "" {
			return nil, fmt.Errorf("peer %d %q: address %q %s", n, e, p.Addr, rule)
		}
		if j, dup := ids[p.ID]; dup {
			return nil, fmt.Errorf("peer %d %q: id %d is also used by peer %d", n, e, p.ID, j)
		}
		if j, dup := addrs[p.Addr]; dup {
			return nil, fmt.Errorf("peer %d %q: address %s is also used by peer %d", n, e, p.Addr, j)
		}
		ids[p.ID], addrs[p.Addr] = n, n
		peers = append(peers, p)
	}
	return peers, nil
}

// FormatPeers is the inverse of ParsePeers (id@host:port form). Explicit
// raft addresses are not represented.
func FormatPeers(peers []Peer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = strconv.FormatUint(p.ID, 10) + "@" + p.Addr
	}
	return strings.Join(parts, ",")
}

// checkAddr returns "" if s is host:port with a numeric port in 1..65535,
// otherwise the rule that s breaks. The host may be empty (":9092", bind
// to all interfaces) unless needHost.
func checkAddr(s string, needHost bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if needHost {
			return "must be host:port"
		}
		return "must be [host]:port"
	}
	if needHost && host == "" {
		return "must name a host (host:port)"
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Sprintf("has an invalid host %q", host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("must have a port between 1 and 65535, not %q", port)
	}
	return ""
}

// addrPort returns the numeric port of a host:port, or -1.
func addrPort(s string) int {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return -1
	}
	return n
}

// NodeIDFromHostname returns the node id a StatefulSet-style host name
// gives: the ordinal after the last '-' of its first label, plus one
// ("chronik-0.chronik-headless..." is node 1).
func NodeIDFromHostname(host string) (uint64, error) {
	label, _, _ := strings.Cut(host, ".")
	i := strings.LastIndexByte(label, '-')
	if i < 0 || i == len(label)-1 {
		return 0, fmt.Errorf("host name %q has no ordinal (a StatefulSet pod is named <name>-<ordinal>)", host)
	}
	n, err := strconv.ParseUint(label[i+1:], 10, 32)
	if err != nil || n+1 > maxID {
		return 0, fmt.Errorf("host name %q: ordinal %q is not a number between 0 and %d", host, label[i+1:], uint64(maxID)-1)
	}
	return n + 1, nil
}
