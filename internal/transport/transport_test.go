package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"

	"github.com/chronik-stream/chronik/internal/raftnode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type inbox struct {
	mu   sync.Mutex
	envs []raftnode.Envelope
}

func (b *inbox) deliver(es []raftnode.Envelope) {
	b.mu.Lock()
	b.envs = append(b.envs, es...)
	b.mu.Unlock()
}

func (b *inbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.envs)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pair(t *testing.T) (*Transport, *Transport, *inbox, *inbox) {
	t.Helper()
	var in1, in2 inbox
	t1, err := New(Options{NodeID: 1, Listen: "127.0.0.1:0", Deliver: in1.deliver})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := New(Options{NodeID: 2, Listen: "127.0.0.1:0", Deliver: in2.deliver})
	if err != nil {
		t.Fatal(err)
	}
	t1.SetPeer(2, t2.Addr().String())
	t2.SetPeer(1, t1.Addr().String())
	t.Cleanup(func() { t1.Close(); t2.Close() })
	return t1, t2, &in1, &in2
}

func TestRaftMessagesAndRPC(t *testing.T) {
	t1, t2, _, in2 := pair(t)
	var envs []raftnode.Envelope
	for i := range 1000 {
		envs = append(envs, raftnode.Envelope{Group: raftnode.GroupID(i % 7), Msg: raftpb.Message{
			Type: raftpb.MsgApp, To: 2, From: 1, Term: 3, Index: uint64(i),
			Entries: []raftpb.Entry{{Index: uint64(i + 1), Term: 3, Data: []byte("payload")}},
		}})
	}
	t1.Send(envs[:500])
	t1.Send(envs[500:])
	waitFor(t, "1000 messages at node 2", func() bool { return in2.len() == 1000 })
	in2.mu.Lock()
	for i, e := range in2.envs {
		if e.Group != raftnode.GroupID(i%7) || e.Msg.Index != uint64(i) || string(e.Msg.Entries[0].Data) != "payload" {
			t.Fatalf("message %d arrived as %+v", i, e)
		}
	}
	in2.mu.Unlock()

	t2.Handle("echo", func(_ context.Context, from uint64, p []byte) ([]byte, error) {
		if from != 1 {
			return nil, errors.New("wrong caller")
		}
		return append([]byte("echo:"), p...), nil
	})
	t2.Handle("fail", func(context.Context, uint64, []byte) ([]byte, error) { return nil, errors.New("no such topic") })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := t1.Call(ctx, 2, "echo", []byte("hi"))
	if err != nil || string(out) != "echo:hi" {
		t.Fatalf("echo: %q %v", out, err)
	}
	var re *RemoteError
	if _, err := t1.Call(ctx, 2, "fail", nil); !errors.As(err, &re) || re.Msg != "no such topic" {
		t.Fatalf("fail: %v", err)
	}
	if _, err := t1.Call(ctx, 2, "missing", nil); err == nil {
		t.Fatal("a call to an unknown method succeeded")
	}
}

func TestWrongPeerAddressIsRefused(t *testing.T) {
	var in3 inbox
	t1, err := New(Options{NodeID: 1, Listen: "127.0.0.1:0", Deliver: func([]raftnode.Envelope) {}})
	if err != nil {
		t.Fatal(err)
	}
	t3, err := New(Options{NodeID: 3, Listen: "127.0.0.1:0", Deliver: in3.deliver})
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Close()
	defer t3.Close()
	// Node 1 believes node 2 lives at node 3's address.
	t1.SetPeer(2, t3.Addr().String())
	for range 20 {
		t1.Send([]raftnode.Envelope{{Group: 1, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, To: 2, From: 1}}})
		time.Sleep(10 * time.Millisecond)
	}
	if in3.len() != 0 {
		t.Fatal("node 3 took messages meant for node 2")
	}
}

// watchPeerDown starts node 1, which sends the peers it finds down on
// the returned channel.
func watchPeerDown(t *testing.T) (*Transport, chan uint64) {
	t.Helper()
	down := make(chan uint64, 1)
	t1, err := New(Options{NodeID: 1, Listen: "127.0.0.1:0", Deliver: func([]raftnode.Envelope) {},
		PeerDown: func(p uint64) { down <- p }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(t1.Close)
	return t1, down
}

// streamTo1 starts node 2 and its stream to t1, which knows node 2 by
// addr (node 2's own listener when "").
func streamTo1(t *testing.T, t1 *Transport, addr string) *Transport {
	t.Helper()
	t2, err := New(Options{NodeID: 2, Listen: "127.0.0.1:0", Deliver: func([]raftnode.Envelope) {}})
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = t2.Addr().String()
	}
	t1.SetPeer(2, addr)
	t2.SetPeer(1, t1.Addr().String())
	t2.Send([]raftnode.Envelope{{Group: 1, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, To: 1, From: 2}}})
	waitFor(t, "node 2's stream", func() bool { return t2.Connected()[1] })
	return t2
}

func TestPeerDownIsReported(t *testing.T) {
	t1, down := watchPeerDown(t)
	t2 := streamTo1(t, t1, "")
	t2.Close() // the process is gone: its listener refuses connections
	select {
	case p := <-down:
		if p != 2 {
			t.Fatalf("peer %d reported down", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a peer that went away was not reported")
	}
}

// TestPeerDownIsReportedWhenItsListenerClosesLast: a killed process can
// close its streams a moment before its listener, so the first probe of
// its port still connects; the peer is reported down once the port
// refuses, not taken for alive on that first probe.
func TestPeerDownIsReportedWhenItsListenerClosesLast(t *testing.T) {
	t1, down := watchPeerDown(t)
	// Node 2 streams to node 1 from a transport of its own; node 1 knows
	// it by the address of a listener that stays open until node 1's first
	// probe after the stream ended (a connection that closes without a
	// byte; node 1's own stream to node 2 sends its hello).
	dying, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var streamEnded atomic.Bool
	probed := make(chan struct{})
	go func() {
		for {
			c, err := dying.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var b [1]byte
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(b[:]); errors.Is(err, io.EOF) && streamEnded.Load() {
					select {
					case <-probed:
					default:
						close(probed)
						dying.Close()
					}
				}
			}()
		}
	}()
	defer dying.Close()
	t2 := streamTo1(t, t1, dying.Addr().String())
	streamEnded.Store(true)
	t2.Close()
	select {
	case p := <-down:
		if p != 2 {
			t.Fatalf("peer %d reported down", p)
		}
	case <-time.After(5 * time.Second):
		select {
		case <-probed:
			t.Fatal("the peer's port refused connections after the first probe, but the peer was never reported down")
		default:
			t.Fatal("node 1 never probed the peer whose stream ended")
		}
	}
}

// TestCallToUnreachablePeerIsNotSent: a call whose peer cannot be reached
// fails with ErrNotSent once its request is dropped, before its deadline,
// so the caller knows the peer never saw it (a timeout says nothing).
func TestCallToUnreachablePeerIsNotSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l.Addr().String()
	l.Close() // nothing listens there: connections are refused
	t1, err := New(Options{NodeID: 1, Listen: "127.0.0.1:0", Deliver: func([]raftnode.Envelope) {}, DialTimeout: time.Second, RPCTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Close()
	t1.SetPeer(2, gone)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = t1.Call(ctx, 2, "anything", []byte("payload"))
	if !errors.Is(err, ErrNotSent) {
		t.Fatalf("a call to a peer refusing connections failed with %v, want ErrNotSent", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the call waited out its deadline")
	}
}

// TestCallThatReachedItsPeerIsNotNotSent: a call whose request its peer
// received and did not answer in time fails with a timeout, never
// ErrNotSent: the peer may have carried it out.
func TestCallThatReachedItsPeerIsNotNotSent(t *testing.T) {
	t1, t2, _, _ := pair(t)
	received := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	t2.Handle("slow", func(context.Context, uint64, []byte) ([]byte, error) {
		close(received)
		<-release
		return nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-received
		cancel() // the caller gives up once the peer has the request
	}()
	_, err := t1.Call(ctx, 2, "slow", nil)
	if err == nil || errors.Is(err, ErrNotSent) {
		t.Fatalf("a call its peer received and never answered failed with %v, want a timeout that is not ErrNotSent", err)
	}
}

// identityPair starts node 1, which knows node 2 by incarnation known, and
// node 2, whose data directory has incarnation actual; each records the
// "replaced" reports it gets.
func identityPair(t *testing.T, known, actual, cluster2 string) (t1, t2 *Transport, in1, in2 *inbox, rep1, rep2 chan error) {
	t.Helper()
	in1, in2 = &inbox{}, &inbox{}
	rep1, rep2 = make(chan error, 16), make(chan error, 16)
	var err error
	t1, err = New(Options{NodeID: 1, Listen: "127.0.0.1:0", Deliver: in1.deliver, Incarnation: "one",
		ClusterID:       func() string { return "c1" },
		PeerIncarnation: func(id uint64) string { return map[uint64]string{2: known}[id] },
		Replaced:        func(err error) { rep1 <- err }})
	if err != nil {
		t.Fatal(err)
	}
	t2, err = New(Options{NodeID: 2, Listen: "127.0.0.1:0", Deliver: in2.deliver, Incarnation: actual,
		ClusterID:       func() string { return cluster2 },
		PeerIncarnation: func(id uint64) string { return map[uint64]string{1: "one"}[id] },
		Replaced:        func(err error) { rep2 <- err }})
	if err != nil {
		t.Fatal(err)
	}
	t1.SetPeer(2, t2.Addr().String())
	t2.SetPeer(1, t1.Addr().String())
	t.Cleanup(func() { t1.Close(); t2.Close() })
	return
}

func heartbeat(from, to uint64) []raftnode.Envelope {
	return []raftnode.Envelope{{Group: 1, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: from, To: to}}}
}

func TestMatchingIncarnationsExchangeMessages(t *testing.T) {
	t1, t2, in1, in2, rep1, rep2 := identityPair(t, "two", "two", "c1")
	t1.Send(heartbeat(1, 2))
	t2.Send(heartbeat(2, 1))
	waitFor(t, "heartbeats both ways", func() bool { return in1.len() == 1 && in2.len() == 1 })
	select {
	case err := <-rep1:
		t.Fatalf("node 1 told it was replaced: %v", err)
	case err := <-rep2:
		t.Fatalf("node 2 told it was replaced: %v", err)
	default:
	}
}

// A node whose data directory was wiped (no cluster id, a new
// incarnation) is refused by the node that knows it, learns why from
// either direction, and no raft message crosses.
func TestWipedNodeIsRefusedAndTold(t *testing.T) {
	for _, c := range []struct {
		name, actual, cluster string
	}{
		{"wiped", "fresh", ""},
		{"replaced by another directory of the cluster", "other", "c1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t1, t2, in1, in2, rep1, rep2 := identityPair(t, "two", c.actual, c.cluster)
			// Node 2 dials node 1: node 1 refuses and tells node 2.
			t2.Send(heartbeat(2, 1))
			select {
			case err := <-rep2:
				var re *ReplacedError
				if !errors.As(err, &re) || !strings.Contains(re.Msg, "node 2") {
					t.Fatalf("node 2 was told %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("node 2 was not told that its data directory is not the one the cluster knows")
			}
			// Node 1 dials node 2 expecting incarnation "two": node 2
			// refuses, and learns it was replaced.
			t1.Send(heartbeat(1, 2))
			select {
			case err := <-rep2:
				if err == nil {
					t.Fatal("nil report")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("node 2 did not notice node 1 expects another data directory")
			}
			for range 10 {
				t1.Send(heartbeat(1, 2))
				t2.Send(heartbeat(2, 1))
				time.Sleep(10 * time.Millisecond)
			}
			if in1.len() != 0 || in2.len() != 0 {
				t.Fatalf("raft messages crossed: %d at node 1, %d at node 2", in1.len(), in2.len())
			}
			select {
			case err := <-rep1:
				t.Fatalf("the healthy node was told it was replaced: %v", err)
			default:
			}
		})
	}
}
