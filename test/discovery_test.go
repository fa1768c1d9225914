package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

const (
	dnsService = "_chronik._tcp.chronik.test"
	dnsDomain  = "chronik.test"
)

// dnsServer is a dnsmasq on loopback serving the SRV records of the
// cluster's members, as a Kubernetes headless service would: one per
// member, target chronik-<ordinal>.chronik.test, port its Kafka port.
type dnsServer struct {
	t    *testing.T
	bin  string
	addr string
	cmd  *exec.Cmd
}

func newDNSServer(t *testing.T) *dnsServer {
	// Debian installs it in /usr/sbin, which a non-root PATH may lack.
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dnsmasq"); serr != nil {
			t.Fatalf("dnsmasq is needed (Debian's dnsmasq-base; make deps installs it): %v", err)
		}
		bin = "/usr/sbin/dnsmasq"
	}
	d := &dnsServer{t: t, bin: bin, addr: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))}
	t.Cleanup(d.stop)
	return d
}

// serve (re)starts dnsmasq with a record for each node.
func (d *dnsServer) serve(nodes ...*harness.Node) {
	d.t.Helper()
	d.stop()
	_, port, _ := net.SplitHostPort(d.addr)
	args := []string{"--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--user=root", "--pid-file=",
		"--bind-interfaces", "--listen-address=127.0.0.1", "--port=" + port}
	for _, n := range nodes {
		host := fmt.Sprintf("chronik-%d.%s", n.ID-1, dnsDomain)
		args = append(args, fmt.Sprintf("--srv-host=%s,%s,%d", dnsService, host, n.Port), fmt.Sprintf("--host-record=%s,127.0.0.1", host))
	}
	d.cmd = exec.Command(d.bin, args...)
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start dnsmasq: %v", err)
	}
	harness.WaitFor(d.t, "dnsmasq to answer", 10*time.Second, func() error {
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, network, d.addr)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, srvs, err := r.LookupSRV(ctx, "", "", dnsService)
		if err == nil && len(srvs) != len(nodes) {
			err = fmt.Errorf("%d records", len(srvs))
		}
		return err
	})
}

func (d *dnsServer) stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		d.cmd = nil
	}
}

// dnsNode prepares a node that finds its peers in DNS only.
func dnsNode(t *testing.T, dns *dnsServer, id int) *harness.Node {
	n := harness.NewNode(t, harness.NodeOptions{ID: id, Args: []string{"standalone", "--raft"}})
	n.Env = append(n.Env,
		"CHRONIK_CLUSTER_DISCOVERY_MODE=dns",
		"CHRONIK_CLUSTER_DISCOVERY_DNS_SERVICE="+dnsService,
		"CHRONIK_CLUSTER_DISCOVERY_DNS_SERVER="+dns.addr,
		"CHRONIK_CLUSTER_DISCOVERY_REFRESH_INTERVAL_SECS=1",
		// Peers reach a member found in DNS at its Kafka port + 100.
		fmt.Sprintf("CHRONIK_RAFT_LISTEN_ADDR=127.0.0.1:%d", n.Port+100))
	return n
}

// TestDNSDiscovery forms a cluster of three nodes that know each other
// only from SRV records served by a real DNS server (dnsmasq), then adds a
// fourth node's record while the cluster runs: the fourth node finds the
// others in DNS, joins, and takes replicas of a reassigned partition.
func TestDNSDiscovery(t *testing.T) {
	dns := newDNSServer(t)
	var nodes []*harness.Node
	for id := 1; id <= 3; id++ {
		nodes = append(nodes, dnsNode(t, dns, id))
	}
	dns.serve(nodes...)
	for _, n := range nodes {
		n.StartNoWait()
	}
	for _, n := range nodes {
		n.WaitReady(60 * time.Second)
		if !n.LogContains("members found in DNS") {
			t.Fatalf("node %d did not find its peers in DNS", n.ID)
		}
	}
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, cl, "found", 1, 3)
	produceN(t, cl, "found", 0, "m", 100)

	// A fourth member appears in DNS while the cluster runs.
	n4 := dnsNode(t, dns, 4)
	dns.serve(append(slices.Clone(nodes), n4)...)
	n4.Start()
	if !n4.LogContains("joining the running cluster") {
		t.Fatal("node 4 did not join the cluster it found in DNS")
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	harness.WaitFor(t, "broker 4 in Metadata", 30*time.Second, func() error {
		md, err := adm.Metadata(ctx)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(md.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == 4 }) {
			return fmt.Errorf("brokers %v", md.Brokers.NodeIDs())
		}
		return nil
	})
	reassign(t, adm, "found", 0, []int32{4, 2, 3})
	harness.WaitFor(t, "found/0 on nodes 4, 2, 3", time.Minute, func() error {
		md, err := adm.Metadata(ctx, "found")
		if err != nil {
			return err
		}
		p := md.Topics["found"].Partitions[0]
		if !slices.Equal(p.Replicas, []int32{4, 2, 3}) || len(p.ISR) != 3 {
			return fmt.Errorf("replicas %v ISR %v", p.Replicas, p.ISR)
		}
		return nil
	})
	ps, err := partitionOn(n4, "found", 0)
	if err != nil || ps.LogEnd != 100 {
		t.Fatalf("node 4's replica: %+v %v", ps, err)
	}
}
