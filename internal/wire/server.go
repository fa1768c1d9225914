// Package wire is the Kafka protocol transport: it accepts connections,
// reads size-prefixed request frames, decodes them with kmsg, hands them to
// a Handler and writes the responses back in request order.
//
// Requests of one connection are decoded and dispatched in order, and the
// handler may answer later (a produce waiting for replication, a fetch
// waiting for data) without holding up the requests behind it; the
// responses still go out in request order, as Kafka requires.
//
// Memory: a frame's size is reserved from the node-wide request budget
// (kafka.queued_max_request_bytes, a [membudget.Requests]) before its body
// is allocated, and returned once its response is written or no response
// is owed. While the budget is spent the connection's reader waits, so the
// client meets TCP back-pressure instead of the node growing. Small frames
// have their own class in the budget and never queue behind large ones; a
// reserved body must arrive within RequestReadTimeout; and one connection
// holds at most maxConnQueuedBytes of unanswered requests (beyond a single
// request), so a client that does not read its responses holds little.
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
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/membudget"
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

	// reserved is the frame's share of the request budget, returned once
	// the response is written.
	reserved int64
	// afterResponse runs once the response is written or dropped.
	afterResponse []func()
}

// AfterResponse registers fn to run once the response to r has been
// written to the connection, or dropped (no response owed, connection
// gone). The handler must call it before it responds. A Fetch uses it to
// return its response bytes to their budget.
func (r *Request) AfterResponse(fn func()) {
	r.afterResponse = append(r.afterResponse, fn)
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
	// QueuedMaxRequestBytes bounds the bytes of all frames read and not
	// yet answered, node-wide (queued.max.request.bytes). It must be at
	// least MaxRequestSize; 0 means the default, 256 MiB.
	QueuedMaxRequestBytes int64
	// RequestReadTimeout bounds how long a frame's body may take to
	// arrive once its size has been read and reserved; the connection is
	// then closed. 0 means the default, 30 s.
	RequestReadTimeout time.Duration
	// MaxInflight bounds the requests of one connection awaiting their
	// response; the reader waits beyond it.
	MaxInflight int
	Logger      *slog.Logger
	Observer    Observer
	// APIVersions builds the ApiVersions response for an unsupported
	// ApiVersions version (answered at v0 with UNSUPPORTED_VERSION).
	APIVersions func() []kmsg.ApiVersionsResponseApiKey

	// allocBody allocates a frame's body; tests wrap it to check that the
	// bytes were reserved first.
	allocBody func(n int) []byte
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

	budget *membudget.Requests
	// encodeBufs holds response encode buffers, shared by the connections:
	// Fetch responses are often megabytes, and growing a fresh buffer for
	// each cost a sixth of the fetch path's CPU.
	encodeBufs bufPool
}

// Defaults of the Options.
const (
	defaultQueuedMaxRequestBytes = 256 << 20
	defaultRequestReadTimeout    = 30 * time.Second
)

// maxConnQueuedBytes bounds the unanswered request bytes of one
// connection; a connection holding nothing may still read one frame of
// any allowed size. It keeps one client that pipelines large requests, or
// stops reading its responses, from taking the whole budget alone, while
// a producer with several 1 MiB requests in flight never meets it.
const maxConnQueuedBytes = 16 << 20

// Listen binds addr and starts serving.
func Listen(addr string, h Handler, opts Options) (*Server, error) {
	if opts.MaxRequestSize <= 0 {
		opts.MaxRequestSize = 100 << 20
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 64
	}
	if opts.QueuedMaxRequestBytes <= 0 {
		opts.QueuedMaxRequestBytes = max(defaultQueuedMaxRequestBytes, int64(opts.MaxRequestSize))
	}
	if opts.QueuedMaxRequestBytes < int64(opts.MaxRequestSize) {
		return nil, fmt.Errorf("queued request bytes %d are less than the largest request, %d: a request of that size could never be read",
			opts.QueuedMaxRequestBytes, opts.MaxRequestSize)
	}
	if opts.RequestReadTimeout <= 0 {
		opts.RequestReadTimeout = defaultRequestReadTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.allocBody == nil {
		opts.allocBody = func(n int) []byte { return make([]byte, n) }
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Server{ln: ln, handler: h, opts: opts, logger: opts.Logger, conns: map[*conn]struct{}{},
		budget:     membudget.NewRequests(opts.QueuedMaxRequestBytes, int64(opts.MaxRequestSize)),
		encodeBufs: bufPool{max: membudget.ResponseBufferBytes},
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// RequestBudget returns the budget of queued request bytes, for metrics.
func (s *Server) RequestBudget() *membudget.Requests { return s.budget }

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
		c := &conn{s: s, nc: nc, slots: make(chan *slot, s.opts.MaxInflight), logger: s.logger.With("remote", nc.RemoteAddr().String()),
			quit: make(chan struct{}), released: make(chan struct{}, 1)}
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

	// quit is closed when the reader must stop waiting (server closing,
	// connection broken).
	quit     chan struct{}
	quitOnce sync.Once
	// queued is the request bytes this connection holds in the budget.
	// Invariant: 0 <= queued.
	queued atomic.Int64
	// released is signalled (without blocking) when queued shrinks.
	released chan struct{}
}

func (c *conn) stopReading() {
	c.stopped.Store(true)
	c.nc.SetReadDeadline(time.Now())
	c.cancel()
}

func (c *conn) cancel() { c.quitOnce.Do(func() { close(c.quit) }) }

// reserve takes n bytes of the request budget for the next frame, first
// waiting until this connection's own unanswered requests leave room for
// it. It returns false if the connection is closing.
func (c *conn) reserve(n int64) bool {
	for {
		q := c.queued.Load()
		if q == 0 || q+n <= maxConnQueuedBytes {
			break
		}
		select {
		case <-c.released:
		case <-c.quit:
			return false
		}
	}
	waited, err := c.s.budget.Acquire(n, c.quit)
	if err != nil {
		return false
	}
	if waited {
		c.logger.Debug("request waited for the request budget (kafka.queued_max_request_bytes)", "bytes", n)
	}
	c.queued.Add(n)
	return true
}

// release returns n bytes of the request budget.
func (c *conn) release(n int64) {
	if n == 0 {
		return
	}
	c.s.budget.Release(n)
	c.queued.Add(-n)
	select {
	case c.released <- struct{}{}:
	default:
	}
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
		// The bytes are reserved before the body is allocated: while the
		// budget is spent this waits and the client meets TCP back-pressure.
		if !c.reserve(int64(n)) {
			return
		}
		body, ok := c.readBody(r, int(n))
		if !ok {
			c.release(int64(n))
			return
		}
		req, err := c.decode(body, int64(n))
		if err != nil {
			c.release(int64(n))
			c.logger.Warn("closing connection: bad request", "err", err)
			return
		}
		if req == nil {
			continue // answered by the server itself
		}
		c.dispatch(req)
	}
}

// readBody reads a frame body of n bytes, already reserved, within the
// request read timeout: a client that trickles its bytes cannot hold its
// reservation for longer.
func (c *conn) readBody(r *bufio.Reader, n int) ([]byte, bool) {
	timeout := c.s.opts.RequestReadTimeout
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	// stopReading sets a past deadline; do not let ours replace it.
	if c.stopped.Load() {
		return nil, false
	}
	body := c.s.opts.allocBody(n)
	got, err := io.ReadFull(r, body)
	if err != nil {
		switch {
		case c.stopped.Load():
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.logger.Warn("closing connection: request body not received within kafka.request_read_timeout_ms; its reserved bytes are returned",
				"timeout", timeout, "size", n, "received", got)
		default:
			c.logger.Warn("closing connection: request frame cut short", "size", n, "received", got, "err", err)
		}
		return nil, false
	}
	c.nc.SetReadDeadline(time.Time{})
	if c.stopped.Load() {
		// A stop between the read and the reset above: honour it.
		c.nc.SetReadDeadline(time.Now())
	}
	return body, true
}

// decode parses a frame. A nil request with a nil error means the frame
// was answered already (unsupported ApiVersions).
func (c *conn) decode(body []byte, reserved int64) (*Request, error) {
	rd := kbin.Reader{Src: body}
	key, version, corr := rd.Int16(), rd.Int16(), rd.Int32()
	clientID := rd.NullableString()
	if !rd.Ok() {
		return nil, fmt.Errorf("request header cut short")
	}
	req := &Request{Key: key, Version: version, CorrelationID: corr, Size: len(body) + 4, Remote: c.nc.RemoteAddr(), Received: time.Now(), reserved: reserved}
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

// write sends responses in request order. Each request's reservation is
// returned once its response is written, or dropped.
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
	fail := func() {
		broken = true
		c.nc.Close() // wakes the reader
		c.cancel()   // and stops it waiting for budget
	}
	// Responses are buffered while the next ones are ready, and flushed
	// before waiting: a response must never sit in the buffer while a
	// later request is still being served (a pipelining client would see
	// the latency of the slowest request behind it).
	flush := func() {
		if !broken && w.Buffered() > 0 {
			if err := w.Flush(); err != nil {
				fail()
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
		respBytes := 0
		if !broken && sl.resp != nil {
			buf := c.s.encodeBufs.get()
			out := encodeResponse(buf, sl.req, sl.resp)
			sl.resp = nil // the encoded copy is all that is needed now
			_, err := w.Write(out)
			c.s.encodeBufs.put(out) // out is free again once Write returns
			if err != nil {
				fail()
			} else {
				respBytes = len(out)
			}
		}
		c.done(sl.req)
		c.observe(sl, respBytes)
	}
	flush()
}

// done returns what a request held once its response is written or
// dropped.
func (c *conn) done(req *Request) {
	c.release(req.reserved)
	req.reserved = 0
	for _, fn := range req.afterResponse {
		fn()
	}
	req.afterResponse = nil
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

// bufPool keeps response encode buffers for reuse, at most max bytes of
// capacity in all: they are memory outside the budgets, so their total
// must be small and fixed (a sync.Pool would keep one for each connection
// that wrote a large response, until the next garbage collections).
type bufPool struct {
	max int

	mu    sync.Mutex
	free  [][]byte
	bytes int // Invariant: bytes = sum of cap(free[i]) <= max
}

func (p *bufPool) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) == 0 {
		return nil
	}
	b := p.free[len(p.free)-1]
	p.free[len(p.free)-1] = nil
	p.free = p.free[:len(p.free)-1]
	p.bytes -= cap(b)
	return b[:0]
}

func (p *bufPool) put(b []byte) {
	if cap(b) > membudget.MaxPooledResponse {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bytes+cap(b) > p.max {
		return
	}
	p.free = append(p.free, b[:0])
	p.bytes += cap(b)
}
