package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ChaosCluster is a Cluster whose every inter-node raft link goes through
// its own Toxiproxy proxy, run in the test process: node a reaches node b
// at the address of proxy (a,b), whose upstream is b's raft listener. The
// transport uses one connection per direction (a dials b for what a sends
// to b), so cutting proxies (a,b) and (b,a) cuts both directions of the
// pair, and isolating a node cuts every proxy from and to it. Kafka client
// links go straight to the nodes.
type ChaosCluster struct {
	*Cluster
	t       testing.TB
	srv     *toxiproxy.ApiServer
	mu      sync.Mutex
	proxies map[[2]int]*toxiproxy.Proxy
	toxics  map[[2]int][]string
	seq     int
}

// NewChaosCluster prepares (does not start) a cluster of o.Nodes nodes with
// a proxy on every ordered pair of nodes. o.PeerRaftAddr is set here.
func NewChaosCluster(t testing.TB, o ClusterOptions) *ChaosCluster {
	t.Helper()
	cc := &ChaosCluster{
		t:       t,
		srv:     toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop()),
		proxies: map[[2]int]*toxiproxy.Proxy{},
		toxics:  map[[2]int][]string{},
	}
	o.PeerRaftAddr = func(from, to int, listen string) string {
		addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		p := toxiproxy.NewProxy(cc.srv, fmt.Sprintf("raft-%d-to-%d", from, to), addr, listen)
		if err := p.Start(); err != nil {
			t.Fatalf("start proxy %d->%d: %v", from, to, err)
		}
		cc.proxies[[2]int{from, to}] = p
		return p.Listen
	}
	cc.Cluster = NewCluster(t, o)
	t.Cleanup(func() {
		for _, p := range cc.proxies {
			p.Stop()
		}
	})
	return cc
}

func (c *ChaosCluster) proxy(from, to int) *toxiproxy.Proxy {
	p, ok := c.proxies[[2]int{from, to}]
	if !ok {
		c.t.Fatalf("no proxy for link %d->%d", from, to)
	}
	return p
}

// links lists the ordered links from and to node id.
func (c *ChaosCluster) links(id int) [][2]int {
	var out [][2]int
	for _, n := range c.Nodes {
		if n.ID != id {
			out = append(out, [2]int{id, n.ID}, [2]int{n.ID, id})
		}
	}
	return out
}

// Cut disables the link from -> to: open connections are closed and new
// ones refused.
func (c *ChaosCluster) Cut(from, to int) { c.proxy(from, to).Stop() }

// Link re-enables the link from -> to.
func (c *ChaosCluster) Link(from, to int) {
	c.t.Helper()
	if err := c.proxy(from, to).Start(); err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
		c.t.Fatalf("restart proxy %d->%d: %v", from, to, err)
	}
}

// Isolate cuts every raft link from and to node id, both directions.
func (c *ChaosCluster) Isolate(id int) {
	for _, l := range c.links(id) {
		c.Cut(l[0], l[1])
	}
}

// Partition splits the nodes into the given side and the rest: every link
// across is cut, both directions.
func (c *ChaosCluster) Partition(side ...int) {
	in := map[int]bool{}
	for _, id := range side {
		in[id] = true
	}
	for k := range c.proxies {
		if in[k[0]] != in[k[1]] {
			c.Cut(k[0], k[1])
		}
	}
}

// Heal removes every toxic and re-enables every link. A link that had
// toxics has its connections closed first: a blackhole dropped bytes
// mid-stream, so what follows on those connections would be garbage.
func (c *ChaosCluster) Heal() {
	c.t.Helper()
	c.mu.Lock()
	keys := make([][2]int, 0, len(c.toxics))
	for k := range c.toxics {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.Cut(k[0], k[1])
		c.clearToxics(k)
	}
	for k := range c.proxies {
		c.Link(k[0], k[1])
	}
}

// Blackhole silently drops everything on every raft link from and to node
// id: connections still open, nothing arrives, nothing is refused (a
// partition as a network drops packets, unlike Isolate, whose refused
// connections tell the nodes at once). Heal undoes it.
func (c *ChaosCluster) Blackhole(id int) {
	for _, l := range c.links(id) {
		c.addToxic(l[0], l[1], "timeout", `{"timeout":0}`)
	}
}

// addToxic adds a toxic, given as Toxiproxy's JSON, to the link from -> to,
// in both streams of that link's connections.
func (c *ChaosCluster) addToxic(from, to int, typ string, attrs string) {
	c.t.Helper()
	k := [2]int{from, to}
	p := c.proxy(from, to)
	for _, stream := range []string{"upstream", "downstream"} {
		c.mu.Lock()
		c.seq++
		name := fmt.Sprintf("%s_%s_%d", typ, stream, c.seq)
		c.mu.Unlock()
		js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"attributes":%s}`, name, typ, stream, attrs)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			c.t.Fatalf("add toxic %s to %d->%d: %v", name, from, to, err)
		}
		c.mu.Lock()
		c.toxics[k] = append(c.toxics[k], name)
		c.mu.Unlock()
	}
}

func (c *ChaosCluster) clearToxics(k [2]int) {
	c.mu.Lock()
	names := c.toxics[k]
	delete(c.toxics, k)
	c.mu.Unlock()
	p := c.proxy(k[0], k[1])
	for _, name := range names {
		if err := p.Toxics.RemoveToxic(context.Background(), name); err != nil {
			c.t.Errorf("remove toxic %s from %d->%d: %v", name, k[0], k[1], err)
		}
	}
}

// Slow adds latency to every raft link from and to node id, both streams
// of each connection: every raft message to or from it takes d longer (a
// request and its answer 2*d).
func (c *ChaosCluster) Slow(id int, d time.Duration) {
	for _, l := range c.links(id) {
		c.addToxic(l[0], l[1], "latency", fmt.Sprintf(`{"latency":%d}`, d.Milliseconds()))
	}
}

// Throttle limits every raft link from and to node id to kbps KB/s.
func (c *ChaosCluster) Throttle(id int, kbps int) {
	for _, l := range c.links(id) {
		c.addToxic(l[0], l[1], "bandwidth", fmt.Sprintf(`{"rate":%d}`, kbps))
	}
}

// Unslow removes the latency or bandwidth toxics on every link from and
// to node id (use Heal after Blackhole).
func (c *ChaosCluster) Unslow(id int) {
	for _, l := range c.links(id) {
		c.clearToxics(l)
	}
}
