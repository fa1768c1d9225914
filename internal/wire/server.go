// Package wire is the Kafka protocol transport: it accepts connections,
// reads size-prefixed request frames, decodes them with kmsg, hands them to
// a Handler and writes the responses back in request order.
//
// Requests of one connection are decoded and dispatched in order, and the
// handler may answer later (a produce waiting for replication, a fetch
// waiting for data) without holding up the requests behind it; the
// responses still go out in request order, as Kafka requires.
package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request is one decoded request.
type Request struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
	Msg           kmsg.Request
	// Size is the frame size in bytes.
	Size int
	// Remote is the client's address.
	Remote net.Addr
	// Received is when the frame was read.
	Received time.Time
}

// Handler answers requests. Handle must call respond exactly once, now or
// later, from any goroutine; a nil response sends nothing (acks=0 produce).
// Handle is called on the connection's reader goroutine, so it must hand
// slow work to another goroutine.
type Handler interface {
	Handle(req *Request, respond func(kmsg.Response))
	// Supported reports whether key and version are served; an unsupported
	// ApiVersions request is answered by the server itself.
	Supported(key, version int16) bool
}

// Observer receives per-request figures for metrics; it may be nil.
type Observer interface {
	RequestDone(key, version int16, reqBytes, respBytes int, d time.Duration)
	ConnectionOpened()
	ConnectionClosed()
}

// Options configures a Server.
type Options struct {
	// MaxRequestSize bounds a frame (socket.request.max.bytes).
	MaxRequestSize int32
	// MaxInflight bounds the requests of one connection awaiting their
	// response; the reader waits beyond it.
	MaxInflight int
	Logger      *slog.Logger
	Observer    Observer
	// APIVersions builds the ApiVersions response for an unsupported
	// ApiVersions version (answered at v0 with UNSUPPORTED_VERSION).
	APIVersions func() []kmsg.ApiVersionsResponseApiKey
}

// Server serves the Kafka protocol on a listener.
type Server struct {
	ln      net.Listener
	handler Handler
	opts    Options
	logger  *slog.Logger

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup

	// encodeBufs holds response encode buffers, shared by the connections:
	// Fetch responses are often megabytes, and growing a fresh buffer for
	// each cost a sixth of the fetch path's CPU. The pool lets the garbage
	// collector take them back when the load stops.
	encodeBufs sync.Pool
}

// maxPooledResponse is the largest encode buffer kept for reuse.
const maxPooledResponse = 64 << 20

// Listen binds addr and starts serving.
func Listen(addr string, h Handler, opts Options) (*Server, error) {
	if opts.MaxRequestSize <= 0 {
		opts.MaxRequestSize = 100 << 20
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Server{ln: ln, handler: h, opts: opts, logger: opts.Logger, conns: map[*conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.logger.Warn("accept failed", "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		c := &conn{s: s, nc: nc, slots: make(chan *slot, s.opts.MaxInflight), logger: s.logger.With("remote", nc.RemoteAddr().String())}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		if o := s.opts.Observer; o != nil {
			o.ConnectionOpened()
		}
		s.wg.Add(2)
		go c.read()
		go c.write()
	}
}

// Close stops accepting, stops reading new requests, waits (until ctx ends)
// for the responses of requests already read, and closes every connection.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range conns {
		c.stopReading()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.nc.Close()
		}
		<-done
		return ctx.Err()
	}
}

// slot holds the response to one request until it is written in order.
type slot struct {
	req  *Request
	done chan struct{}
	resp kmsg.Response
	once atomic.Bool
}

type conn struct {
	s       *Server
	nc      net.Conn
	slots   chan *slot
	logger  *slog.Logger
	stopped atomic.Bool
}

func (c *conn) stopReading() {
	c.stopped.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

// read decodes frames and dispatches them; it closes c.slots when done so
// the writer finishes the responses already owed and then closes.
func (c *conn) read() {
	defer c.s.wg.Done()
	defer close(c.slots)
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			if !errors.Is(err, io.EOF) && !c.stopped.Load() && !errors.Is(err, net.ErrClosed) {
				c.logger.Debug("connection read ended", "err", err)
			}
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 8 || n > c.s.opts.MaxRequestSize {
			c.logger.Warn("closing connection: bad request size", "size", n, "max", c.s.opts.MaxRequestSize)
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			c.logger.Warn("closing connection: request frame cut short", "size", n, "err", err)
			return
		}
		req, err := c.decode(body)
		if err != nil {
			c.logger.Warn("closing connection: bad request", "err", err)
			return
		}
		if req == nil {
			continue // answered by the server itself
		}
		c.dispatch(req)
	}
}

// decode parses a frame. A nil request with a nil error means the frame
// was answered already (unsupported ApiVersions).
func (c *conn) decode(body []byte) (*Request, error) {
	rd := kbin.Reader{Src: body}
	key, version, corr := rd.Int16(), rd.Int16(), rd.Int32()
	clientID := rd.NullableString()
	if !rd.Ok() {
		return nil, fmt.Errorf("request header cut short")
	}
	req := &Request{Key: key, Version: version, CorrelationID: corr, Size: len(body) + 4, Remote: c.nc.RemoteAddr(), Received: time.Now()}
	if clientID != nil {
		req.ClientID = *clientID
	}
	kreq := kmsg.RequestForKey(key)
	if kreq == nil {
		return nil, fmt.Errorf("unknown API key %d (version %d, correlation id %d, client %q)", key, version, corr, req.ClientID)
	}
	if !c.s.handler.Supported(key, version) {
		if key == kmsg.ApiVersions.Int16() {
			c.answerUnsupportedAPIVersions(req)
			return nil, nil
		}
		return nil, fmt.Errorf("unsupported version %d of %s (client %q)", version, kmsg.NameForKey(key), req.ClientID)
	}
	kreq.SetVersion(version)
	if kreq.IsFlexible() {
		kmsg.SkipTags(&rd)
		if !rd.Ok() {
			return nil, fmt.Errorf("request header tags of %s v%d cut short", kmsg.NameForKey(key), version)
		}
	}
	if err := kreq.ReadFrom(rd.Src); err != nil {
		return nil, fmt.Errorf("decode %s v%d (client %q): %w", kmsg.NameForKey(key), version, req.ClientID, err)
	}
	req.Msg = kreq
	return req, nil
}

// answerUnsupportedAPIVersions replies at version 0, as Kafka does, so the
// client can learn the versions we serve.
func (c *conn) answerUnsupportedAPIVersions(req *Request) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	if c.s.opts.APIVersions != nil {
		resp.ApiKeys = c.s.opts.APIVersions()
	}
	req.Version = 0
	sl := &slot{req: req, done: make(chan struct{}), resp: resp}
	close(sl.done)
	c.slots <- sl
}

func (c *conn) dispatch(req *Request) {
	if c.logger.Enabled(context.Background(), slog.LevelDebug) {
		c.logger.Debug("request", "api", kmsg.NameForKey(req.Key), "version", req.Version,
			"correlation_id", req.CorrelationID, "client_id", req.ClientID, "bytes", req.Size)
	}
	sl := &slot{req: req, done: make(chan struct{})}
	c.slots <- sl // blocks when MaxInflight responses are owed
	c.s.handler.Handle(req, func(resp kmsg.Response) {
		if !sl.once.CompareAndSwap(false, true) {
			c.logger.Error("handler answered a request twice", "api", kmsg.NameForKey(req.Key))
			return
		}
		sl.resp = resp
		close(sl.done)
	})
}

// write sends responses in request order.
func (c *conn) write() {
	defer c.s.wg.Done()
	defer func() {
		c.nc.Close()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		if o := c.s.opts.Observer; o != nil {
			o.ConnectionClosed()
		}
	}()
	w := bufio.NewWriterSize(c.nc, 64<<10)
	broken := false
	// Responses are buffered while the next ones are ready, and flushed
	// before waiting: a response must never sit in the buffer while a
	// later request is still being served (a pipelining client would see
	// the latency of the slowest request behind it).
	flush := func() {
		if !broken && w.Buffered() > 0 {
			if err := w.Flush(); err != nil {
				broken = true
				c.nc.Close() // wakes the reader
			}
		}
	}
	for {
		var sl *slot
		var ok bool
		select {
		case sl, ok = <-c.slots:
		default:
			flush()
			sl, ok = <-c.slots
		}
		if !ok {
			break
		}
		select {
		case <-sl.done:
		default:
			flush()
			<-sl.done
		}
		if broken || sl.resp == nil {
			c.observe(sl, 0)
			continue
		}
		pooled, _ := c.s.encodeBufs.Get().(*[]byte)
		if pooled == nil {
			pooled = new([]byte)
		}
		out := encodeResponse((*pooled)[:0], sl.req, sl.resp)
		_, err := w.Write(out) // out is free again once Write returns
		if cap(out) <= maxPooledResponse {
			*pooled = out
			c.s.encodeBufs.Put(pooled)
		}
		if err != nil {
			broken = true
			c.nc.Close() // wakes the reader
			continue
		}
		c.observe(sl, len(out))
	}
	flush()
}

func (c *conn) observe(sl *slot, respBytes int) {
	if o := c.s.opts.Observer; o != nil {
		o.RequestDone(sl.req.Key, sl.req.Version, sl.req.Size, respBytes, time.Since(sl.req.Received))
	}
}

// encodeResponse frames resp: size, correlation id, the tagged fields of a
// flexible response header (never for ApiVersions, whose response header is
// always v0), then the body.
func encodeResponse(buf []byte, req *Request, resp kmsg.Response) []byte {
	resp.SetVersion(req.Version)
	buf = append(buf, 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(req.CorrelationID))
	if resp.IsFlexible() && req.Key != kmsg.ApiVersions.Int16() {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}
