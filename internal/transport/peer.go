package transport

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chronik-stream/chronik/internal/raftnode"
)

func errConnRefused() error { return syscall.ECONNREFUSED }

// peer is the outbound stream to one node: a queue and the goroutine that
// drains it.
type peer struct {
	t  *Transport
	id uint64

	mu     sync.Mutex
	addr   string
	raft   []raftnode.Envelope
	frames [][]byte
	bytes  int
	closed bool
	conn   net.Conn

	wake      chan struct{}
	connected atomic.Bool
	done      chan struct{}
	// lastUnreachable rate-limits reports to the raft host (unix nanos).
	lastUnreachable atomic.Int64
	// lastRefusal is the reason the peer last refused our stream.
	lastRefusal atomic.Pointer[string]
	// lastHeard is when the peer last sent us a frame (unix nanos).
	lastHeard atomic.Int64
}

func newPeer(t *Transport, id uint64, addr string) *peer {
	p := &peer{t: t, id: id, addr: addr, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *peer) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	changed := p.addr != addr
	p.addr = addr
	c := p.conn
	p.mu.Unlock()
	if changed && c != nil {
		c.Close() // reconnect to the new address
	}
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// queueRaft adds raft messages; when the queue is full they are dropped and
// raft is told the peer is unreachable.
func (p *peer) queueRaft(envs []raftnode.Envelope) {
	size := 0
	for i := range envs {
		size += envs[i].Msg.Size() + 16
	}
	p.mu.Lock()
	if p.closed || p.bytes+size > queueLimit {
		p.mu.Unlock()
		p.unreachable()
		return
	}
	p.raft = append(p.raft, envs...)
	p.bytes += size
	p.mu.Unlock()
	p.signal()
}

// queueFrame adds an RPC frame; it reports false if the queue is full.
func (p *peer) queueFrame(kind byte, body []byte) bool {
	f := appendFrame(nil, kind, body)
	p.mu.Lock()
	if p.closed || p.bytes+len(f) > queueLimit {
		p.mu.Unlock()
		return false
	}
	p.frames = append(p.frames, f)
	p.bytes += len(f)
	p.mu.Unlock()
	p.signal()
	return true
}

// unreachable tells the raft host, at most once per unreachableEvery,
// that the peer cannot be reached; each report touches every group.
func (p *peer) unreachable() {
	if p.t.opts.Unreachable == nil {
		return
	}
	now := time.Now().UnixNano()
	last := p.lastUnreachable.Load()
	if now-last < int64(unreachableEvery) || !p.lastUnreachable.CompareAndSwap(last, now) {
		return
	}
	p.t.opts.Unreachable(p.id)
}

const unreachableEvery = time.Second

func (p *peer) close() {
	p.mu.Lock()
	p.closed = true
	if p.conn != nil {
		p.conn.Close()
	}
	p.mu.Unlock()
	p.signal()
	<-p.done
}

// run keeps the stream up and writes what is queued.
func (p *peer) run() {
	defer close(p.done)
	backoff := 50 * time.Millisecond
	var buf []byte
	for {
		c := p.connect()
		if c == nil {
			// Drop what is queued for a peer we cannot reach: raft
			// resends what still matters.
			p.mu.Lock()
			closed, dropped := p.closed, p.frames
			p.raft, p.frames, p.bytes = nil, nil, 0
			p.mu.Unlock()
			p.t.failUnsent(p.id, dropped)
			if closed {
				return
			}
			p.unreachable()
			select {
			case <-time.After(backoff):
			case <-p.t.stop:
				return
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		p.connected.Store(true)
		for {
			p.mu.Lock()
			raft, frames, closed := p.raft, p.frames, p.closed
			p.raft, p.frames, p.bytes = nil, nil, 0
			p.mu.Unlock()
			if closed {
				c.Close()
				return
			}
			if len(raft) == 0 && len(frames) == 0 {
				<-p.wake
				continue
			}
			buf = buf[:0]
			if len(raft) > 0 {
				// The frame is encoded in place: length placeholder, kind,
				// then the messages marshalled straight into buf.
				buf = append(buf, 0, 0, 0, 0, kindRaft)
				var err error
				if buf, err = encodeRaftBatch(buf, raft); err != nil {
					p.t.logger.Error("encode raft messages", "peer", p.id, "err", err)
					buf = buf[:0]
				} else {
					binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
				}
			}
			for _, f := range frames {
				buf = append(buf, f...)
			}
			c.SetWriteDeadline(time.Now().Add(p.t.opts.RPCTimeout))
			if _, err := c.Write(buf); err != nil {
				p.t.logger.Debug("write to peer failed", "peer", p.id, "err", err)
				c.Close()
				p.connected.Store(false)
				p.unreachable()
				break
			}
			if cap(buf) > 8<<20 {
				buf = nil
			}
		}
	}
}

// readAck reads the peer's answer to the hello. A refusal is logged (once
// per reason, so a peer that keeps refusing does not flood the log); one
// saying this node's data directory is not the one the cluster knows is
// also reported to the node, which must stop.
func (p *peer) readAck(c net.Conn) error {
	kind, body, err := readFrame(bufio.NewReaderSize(c, 512))
	if err != nil {
		return err
	}
	if kind != kindHelloAck || len(body) == 0 {
		return fmt.Errorf("node %d answered the hello with frame kind %d", p.id, kind)
	}
	if body[0] == ackOK {
		p.lastRefusal.Store(nil)
		return nil
	}
	msg := string(body[1:])
	if last := p.lastRefusal.Load(); last == nil || *last != msg {
		p.lastRefusal.Store(&msg)
		p.t.logger.Error("peer refused this node's stream", "peer", p.id, "reason", msg)
	}
	err = fmt.Errorf("node %d refused the stream: %s", p.id, msg)
	if body[0] == ackSenderReplaced && p.t.opts.Replaced != nil {
		p.t.opts.Replaced(&ReplacedError{Msg: fmt.Sprintf("node %d refused this node: %s", p.id, msg), self: true})
	}
	return err
}

// connect dials the peer and sends the hello frame; nil if it cannot.
func (p *peer) connect() net.Conn {
	p.mu.Lock()
	addr, closed := p.addr, p.closed
	p.mu.Unlock()
	if closed {
		return nil
	}
	c, err := net.DialTimeout("tcp", addr, p.t.opts.DialTimeout)
	if err != nil {
		p.connected.Store(false)
		return nil
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	h := hello{from: p.t.opts.NodeID, to: p.id, clusterID: p.t.clusterID(),
		incarnation: p.t.opts.Incarnation, expectedIncarnation: p.t.peerIncarnation(p.id)}
	c.SetDeadline(time.Now().Add(p.t.opts.DialTimeout))
	if _, err := c.Write(appendFrame(nil, kindHello, h.encode())); err != nil {
		c.Close()
		return nil
	}
	if err := p.readAck(c); err != nil {
		c.Close()
		return nil
	}
	c.SetDeadline(time.Time{})
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return nil
	}
	p.conn = c
	p.mu.Unlock()
	return c
}
