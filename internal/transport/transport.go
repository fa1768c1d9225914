// Package transport carries raft messages and small RPCs between nodes.
//
// Each node keeps one outbound TCP stream to every peer and accepts one
// from each; messages of all raft groups bound for a peer are batched into
// one frame per write. Frames are length-prefixed:
//
//	uint32 length of what follows
//	uint8  kind: 1 raft batch, 2 RPC request, 3 RPC response
//	...    body
//
// A raft batch is uvarint count, then per message uvarint group id, uvarint
// size, and the raftpb.Message bytes.
//
// A stream opens with a hello frame naming the sender, the intended
// receiver, the sender's cluster and the incarnation of its data directory
// (chosen at random when the directory was first used), and the
// incarnation the sender expects the receiver to have. The receiver
// answers with one ack frame, accepting or refusing the stream with the
// reason. So a node given the wrong peer address, a node of another
// cluster, and a node whose data directory was wiped or replaced (it could
// vote twice in a term, or lose acknowledged entries) never exchange raft
// messages; the node that learns it was replaced is told, and stops.
//
// Sends never block: a peer's queue is bounded, and when it is full (the
// peer is down or slow) raft messages are dropped, which raft tolerates
// (it retries), and the raft host is told the peer is unreachable.
package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-stream/chronik/internal/membudget"
	"github.com/chronik-stream/chronik/internal/raftnode"
)

const (
	kindHello    byte = 0
	kindRaft     byte = 1
	kindRequest  byte = 2
	kindResponse byte = 3
	kindHelloAck byte = 4

	helloMagic   = "CHRONIKT"
	protoVersion = 2

	// Ack statuses.
	ackOK               byte = 0
	ackRefused          byte = 1 // the stream is refused; the sender retries
	ackSenderReplaced   byte = 2 // the sender's data directory is not the one the cluster knows
	ackReceiverReplaced byte = 3 // the receiver's data directory is not the one the cluster knows

	maxFrame = 256 << 20
	// queueLimit bounds the bytes queued for one peer.
	queueLimit = membudget.PeerQueueBytes
)

// Handler answers an RPC from a peer.
type Handler func(ctx context.Context, from uint64, payload []byte) ([]byte, error)

// Options configures a Transport.
type Options struct {
	NodeID uint64
	// Listen is the address to accept peers on.
	Listen string
	// Peers maps node ids to their transport addresses (this node may be
	// included; it is skipped).
	Peers map[uint64]string
	// DialTimeout bounds connection attempts and the hello exchange.
	DialTimeout time.Duration
	// RPCTimeout bounds one write of queued frames to a peer (a peer that
	// takes longer is treated as unreachable and reconnected) and the time
	// a peer's RPC may run here (raft.rpc_timeout_ms).
	RPCTimeout time.Duration
	Logger     *slog.Logger
	// Deliver hands inbound raft messages to the host.
	Deliver func([]raftnode.Envelope)
	// Unreachable is told when sends to a peer fail.
	Unreachable func(peer uint64)
	// PeerDown is told when a peer's stream to us ends and it cannot be
	// reached (its process is gone), so raft groups can stop waiting for it.
	PeerDown func(peer uint64)
	// ClusterID, if set, names this node's cluster ("" until known).
	// Streams between nodes that know different clusters are refused, so
	// two clusters misconfigured to reach each other cannot mix raft state.
	ClusterID func() string
	// Incarnation identifies this node's data directory.
	Incarnation string
	// PeerIncarnation, if set, returns the incarnation the cluster's
	// catalog records for a node ("" for a node that never joined). A
	// node that joined and comes back with another incarnation, or with
	// none and no cluster id (an empty data directory), is refused.
	PeerIncarnation func(id uint64) string
	// Replaced, if set, is told when a peer shows that this node's data
	// directory is not the one the cluster knows it by: the node must not
	// take part in raft, and should stop.
	Replaced func(error)
}

// ReplacedError says that a data directory is not the one a node joined
// the cluster with.
type ReplacedError struct {
	Msg string
	// self: this node's directory is the replaced one (else the peer's).
	self bool
}

func (e *ReplacedError) Error() string { return e.Msg }

// Transport is the node's link to its peers.
type Transport struct {
	opts   Options
	logger *slog.Logger
	ln     net.Listener

	mu       sync.Mutex
	peers    map[uint64]*peer
	handlers map[string]Handler
	inbound  map[net.Conn]struct{}
	closed   bool

	nextID  atomic.Uint64
	pending sync.Map // request id -> chan response

	stop chan struct{}
	wg   sync.WaitGroup
}

// New starts listening and connecting to peers.
func New(opts Options) (*Transport, error) {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = time.Second
	}
	if opts.RPCTimeout <= 0 {
		opts.RPCTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for raft peers on %s: %w", opts.Listen, err)
	}
	t := &Transport{
		opts: opts, logger: opts.Logger.With("component", "transport"), ln: ln,
		peers: map[uint64]*peer{}, handlers: map[string]Handler{}, inbound: map[net.Conn]struct{}{},
		stop: make(chan struct{}),
	}
	for id, addr := range opts.Peers {
		if id != opts.NodeID {
			t.peers[id] = newPeer(t, id, addr)
		}
	}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

// Addr returns the listening address.
func (t *Transport) Addr() net.Addr { return t.ln.Addr() }

// Handle registers an RPC handler for method.
func (t *Transport) Handle(method string, h Handler) {
	t.mu.Lock()
	t.handlers[method] = h
	t.mu.Unlock()
}

// SetPeer adds or changes a peer's address.
func (t *Transport) SetPeer(id uint64, addr string) {
	if id == t.opts.NodeID {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil {
		p.setAddr(addr)
		return
	}
	if !t.closed {
		t.peers[id] = newPeer(t, id, addr)
	}
}

// Connected reports which peers have a working outbound stream.
func (t *Transport) Connected() map[uint64]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[uint64]bool{}
	for id, p := range t.peers {
		out[id] = p.connected.Load()
	}
	return out
}

// LastHeard returns when each peer last sent this node anything (zero if
// never).
func (t *Transport) LastHeard() map[uint64]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[uint64]time.Time{}
	for id, p := range t.peers {
		if ns := p.lastHeard.Load(); ns != 0 {
			out[id] = time.Unix(0, ns)
		} else {
			out[id] = time.Time{}
		}
	}
	return out
}

// Send queues raft messages for their peers; it implements
// raftnode.Transport.
func (t *Transport) Send(envs []raftnode.Envelope) {
	by := map[uint64][]raftnode.Envelope{}
	for _, e := range envs {
		by[e.Msg.To] = append(by[e.Msg.To], e)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for to, es := range by {
		if p := t.peers[to]; p != nil {
			p.queueRaft(es)
		}
	}
}

// Call sends an RPC to peer and waits for its answer.
func (t *Transport) Call(ctx context.Context, to uint64, method string, payload []byte) ([]byte, error) {
	t.mu.Lock()
	p := t.peers[to]
	t.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("%w: no transport to node %d", ErrNotSent, to)
	}
	id := t.nextID.Add(1)
	ch := make(chan rpcResult, 1)
	t.pending.Store(id, ch)
	defer t.pending.Delete(id)
	body := binary.AppendUvarint(nil, id)
	body = binary.AppendUvarint(body, uint64(len(method)))
	body = append(body, method...)
	body = append(body, payload...)
	if !p.queueFrame(kindRequest, body) {
		return nil, fmt.Errorf("%w: node %d is unreachable (send queue full)", ErrNotSent, to)
	}
	select {
	case r := <-ch:
		return r.payload, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("call %s on node %d: %w", method, to, ctx.Err())
	case <-t.stop:
		return nil, errors.New("transport closed")
	}
}

// ErrNotSent says a call's request never left this node: the peer could
// not be reached, so it did not see the request. A call that fails
// otherwise (a timeout, a connection lost after the request was written)
// may have been carried out.
var ErrNotSent = errors.New("request not sent")

// failUnsent fails the calls whose request frames are among frames, which
// were dropped unsent.
func (t *Transport) failUnsent(to uint64, frames [][]byte) {
	for _, f := range frames {
		if len(f) <= 5 || f[4] != kindRequest {
			continue
		}
		id, n := binary.Uvarint(f[5:])
		if n <= 0 {
			continue
		}
		if ch, ok := t.pending.Load(id); ok {
			select {
			case ch.(chan rpcResult) <- rpcResult{err: fmt.Errorf("%w: node %d could not be reached", ErrNotSent, to)}:
			default:
			}
		}
	}
}

type rpcResult struct {
	payload []byte
	err     error
}

// Close stops every stream.
func (t *Transport) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	close(t.stop)
	t.ln.Close()
	for c := range t.inbound {
		c.Close()
	}
	for _, p := range t.peers {
		p.close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *Transport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.inbound[c] = struct{}{}
		t.mu.Unlock()
		t.wg.Add(1)
		go t.serve(c)
	}
}

// serve reads one inbound stream.
func (t *Transport) serve(c net.Conn) {
	defer t.wg.Done()
	defer func() {
		c.Close()
		t.mu.Lock()
		delete(t.inbound, c)
		t.mu.Unlock()
	}()
	r := bufio.NewReaderSize(c, 256<<10)
	kind, body, err := readFrame(r)
	if errors.Is(err, io.EOF) {
		return // a peer's probe: it connects and closes
	}
	if err != nil || kind != kindHello {
		t.logger.Warn("peer stream without a hello; closing", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	from, err := t.checkHello(body)
	status := ackOK
	var replaced *ReplacedError
	switch {
	case errors.As(err, &replaced) && replaced.self:
		status = ackReceiverReplaced
	case replaced != nil:
		status = ackSenderReplaced
	case err != nil:
		status = ackRefused
	}
	ack := []byte{status}
	if err != nil {
		ack = append(ack, err.Error()...)
	}
	c.SetWriteDeadline(time.Now().Add(t.opts.DialTimeout))
	if _, werr := c.Write(appendFrame(nil, kindHelloAck, ack)); werr != nil && err == nil {
		return
	}
	c.SetWriteDeadline(time.Time{})
	if err != nil {
		t.logger.Error("refusing peer stream", "remote", c.RemoteAddr().String(), "err", err)
		if replaced != nil && replaced.self && t.opts.Replaced != nil {
			t.opts.Replaced(replaced)
		}
		return
	}
	t.mu.Lock()
	heardFrom := t.peers[from]
	t.mu.Unlock()
	for {
		kind, body, err := readFrame(r)
		if err != nil {
			select {
			case <-t.stop:
			default:
				t.logger.Debug("peer stream ended", "peer", from, "err", err)
				t.peerStreamEnded(from)
			}
			return
		}
		if heardFrom == nil {
			// A node that joined the cluster becomes a peer (its address
			// learned) after its stream to this node opened.
			t.mu.Lock()
			heardFrom = t.peers[from]
			t.mu.Unlock()
		}
		if heardFrom != nil {
			heardFrom.lastHeard.Store(time.Now().UnixNano())
		}
		switch kind {
		case kindRaft:
			envs, err := decodeRaftBatch(body)
			if err != nil {
				t.logger.Error("bad raft batch from peer; closing its stream", "peer", from, "err", err)
				return
			}
			t.opts.Deliver(envs)
		case kindRequest:
			t.wg.Add(1)
			go t.answer(from, body)
		case kindResponse:
			t.deliverResponse(body)
		default:
			t.logger.Error("unknown frame kind from peer; closing its stream", "peer", from, "kind", kind)
			return
		}
	}
}

// peerStreamEnded checks, when a peer's stream to us ends, whether the peer
// is gone (its port refuses connections), and reports it so raft need not
// wait an election timeout to notice. A process being killed can close its
// streams a moment before its listener, so a probe that connects proves
// nothing: probing goes on every probeEvery until the port refuses, the
// peer streams to us again (it is alive), or probeFor has passed.
func (t *Transport) peerStreamEnded(from uint64) {
	t.mu.Lock()
	p := t.peers[from]
	t.mu.Unlock()
	if p == nil || t.opts.PeerDown == nil {
		return
	}
	ended := time.Now()
	for {
		c, err := net.DialTimeout("tcp", p.address(), 200*time.Millisecond)
		if err == nil {
			c.Close()
		} else if errors.Is(err, errConnRefused()) {
			t.logger.Info("peer is down (connection refused)", "peer", from)
			t.opts.PeerDown(from)
			return
		}
		if time.Since(ended) > probeFor || p.lastHeard.Load() > ended.UnixNano() {
			return
		}
		select {
		case <-time.After(probeEvery):
		case <-t.stop:
			return
		}
	}
}

const (
	probeEvery = 50 * time.Millisecond
	probeFor   = time.Second
)

// hello is what a stream's first frame says.
type hello struct {
	from, to            uint64
	clusterID           string
	incarnation         string // the sender's
	expectedIncarnation string // what the sender's catalog records for the receiver
}

func (h hello) encode() []byte {
	b := binary.AppendUvarint([]byte(helloMagic), protoVersion)
	b = binary.AppendUvarint(b, h.from)
	b = binary.AppendUvarint(b, h.to)
	for _, s := range []string{h.clusterID, h.incarnation, h.expectedIncarnation} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeHello(b []byte) (hello, error) {
	var h hello
	if len(b) < len(helloMagic)+1 || string(b[:len(helloMagic)]) != helloMagic {
		return h, errors.New("not a chronik raft transport stream")
	}
	b = b[len(helloMagic):]
	v, n := binary.Uvarint(b)
	if n <= 0 || v != protoVersion {
		return h, fmt.Errorf("transport protocol version %d, this node speaks %d: every member must run the same release", v, protoVersion)
	}
	b = b[n:]
	var ok bool
	uv := func() uint64 {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			ok = false
			return 0
		}
		b = b[n:]
		return x
	}
	str := func() string {
		l := uv()
		if !ok || l > uint64(len(b)) {
			ok = false
			return ""
		}
		s := string(b[:l])
		b = b[l:]
		return s
	}
	ok = true
	h.from, h.to = uv(), uv()
	h.clusterID, h.incarnation, h.expectedIncarnation = str(), str(), str()
	if !ok || len(b) != 0 {
		return h, errors.New("bad hello")
	}
	return h, nil
}

func (t *Transport) checkHello(b []byte) (uint64, error) {
	h, err := decodeHello(b)
	if err != nil {
		return 0, err
	}
	if h.to != t.opts.NodeID {
		return 0, fmt.Errorf("node %d dialled this address for node %d, but this is node %d: check the peer addresses in the configuration", h.from, h.to, t.opts.NodeID)
	}
	ours := t.clusterID()
	if ours != "" && h.clusterID != "" && ours != h.clusterID {
		return 0, fmt.Errorf("node %d belongs to cluster %s, this node to cluster %s", h.from, h.clusterID, ours)
	}
	if h.expectedIncarnation != "" && t.opts.Incarnation != "" && h.expectedIncarnation != t.opts.Incarnation {
		return 0, &ReplacedError{self: true, Msg: fmt.Sprintf(
			"node %d's data directory is not the one it joined cluster %s with (the cluster knows incarnation %s, this directory is %s): it was wiped or replaced",
			t.opts.NodeID, h.clusterID, h.expectedIncarnation, t.opts.Incarnation)}
	}
	if known := t.peerIncarnation(h.from); known != "" && known != h.incarnation {
		why := fmt.Sprintf("its data directory is another one (incarnation %s, the cluster knows %s)", h.incarnation, known)
		if h.incarnation == "" || h.clusterID == "" {
			why = "it presents an empty data directory"
		}
		return 0, &ReplacedError{Msg: fmt.Sprintf(
			"node %d joined cluster %s before, but %s: it was wiped or replaced", h.from, ours, why)}
	}
	return h.from, nil
}

func (t *Transport) peerIncarnation(id uint64) string {
	if t.opts.PeerIncarnation == nil {
		return ""
	}
	return t.opts.PeerIncarnation(id)
}

func (t *Transport) clusterID() string {
	if t.opts.ClusterID == nil {
		return ""
	}
	return t.opts.ClusterID()
}

func (t *Transport) answer(from uint64, body []byte) {
	defer t.wg.Done()
	id, n := binary.Uvarint(body)
	if n <= 0 {
		return
	}
	body = body[n:]
	ml, m := binary.Uvarint(body)
	if m <= 0 || uint64(len(body)-m) < ml {
		return
	}
	method := string(body[m : m+int(ml)])
	payload := body[m+int(ml):]
	t.mu.Lock()
	h := t.handlers[method]
	t.mu.Unlock()
	var out []byte
	var err error
	if h == nil {
		err = fmt.Errorf("node %d has no handler for %s", t.opts.NodeID, method)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), t.opts.RPCTimeout)
		out, err = h(ctx, from, payload)
		cancel()
	}
	resp := binary.AppendUvarint(nil, id)
	if err != nil {
		resp = append(resp, 1)
		resp = append(resp, err.Error()...)
	} else {
		resp = append(resp, 0)
		resp = append(resp, out...)
	}
	// The peer is looked up after the handler ran: a node joining the
	// cluster is unknown until its handler records its address.
	t.mu.Lock()
	p := t.peers[from]
	t.mu.Unlock()
	if p != nil {
		p.queueFrame(kindResponse, resp)
	}
}

func (t *Transport) deliverResponse(body []byte) {
	id, n := binary.Uvarint(body)
	if n <= 0 || len(body) < n+1 {
		return
	}
	ch, ok := t.pending.Load(id)
	if !ok {
		return
	}
	r := rpcResult{}
	if body[n] == 1 {
		r.err = &RemoteError{Msg: string(body[n+1:])}
	} else {
		r.payload = append([]byte(nil), body[n+1:]...)
	}
	ch.(chan rpcResult) <- r
}

// RemoteError is an error returned by a peer's RPC handler.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n < 1 || n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return h[4], body, nil
}

func appendFrame(dst []byte, kind byte, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)+1))
	dst = append(dst, kind)
	return append(dst, body...)
}

func encodeRaftBatch(dst []byte, envs []raftnode.Envelope) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(len(envs)))
	for i := range envs {
		dst = binary.AppendUvarint(dst, uint64(envs[i].Group))
		size := envs[i].Msg.Size()
		dst = binary.AppendUvarint(dst, uint64(size))
		start := len(dst)
		dst = slices.Grow(dst, size)[:start+size]
		if _, err := envs[i].Msg.MarshalTo(dst[start:]); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func decodeRaftBatch(b []byte) ([]raftnode.Envelope, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, errors.New("bad message count")
	}
	b = b[n:]
	out := make([]raftnode.Envelope, 0, count)
	for range count {
		g, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad group id")
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, errors.New("bad message size")
		}
		var m raftpb.Message
		if err := m.Unmarshal(b[n : n+int(size)]); err != nil {
			return nil, fmt.Errorf("decode raft message: %w", err)
		}
		b = b[n+int(size):]
		out = append(out, raftnode.Envelope{Group: raftnode.GroupID(g), Msg: m})
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes after raft batch")
	}
	return out, nil
}
