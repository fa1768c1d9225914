package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/internal/server"
	"github.com/chronik-stream/chronik/test/harness"
)

// The memory bound tests run the real binary with small budgets, flood it
// from 50 connections, and check that a well-behaved client on its own
// connection is answered throughout, that the server's peak RSS stays
// under the bound docs/configuration.md states for that configuration
// (config.MemoryBound), and that nothing acknowledged is lost. They log
// their figures as "FIGURE" lines.
const (
	boundQueuedRequestBytes = 128 << 20
	boundSocketMaxBytes     = 100 << 20
	boundFetchMaxBytes      = 16 << 20
	boundQueuedFetchBytes   = 64 << 20
	boundReadTimeout        = 2 * time.Second
	boundUncommittedBytes   = 32 << 20
	boundEntryCacheBytes    = 16 << 20

	floodConnections = 50
	// probeTimeout is the generous deadline within which each request of
	// the well-behaved client must be answered during a flood.
	probeTimeout = 30 * time.Second
	// rssSafetyCap kills a server whose RSS passes it, so that a run
	// against a server without the bounds cannot exhaust the machine.
	rssSafetyCap = 8 << 30
)

// memoryBound is the documented memory bound of the configuration the
// tests give the node, with that many connections.
func memoryBound(connections int) int64 {
	c := config.Default()
	c.Kafka.QueuedMaxRequestBytes = boundQueuedRequestBytes
	c.Kafka.SocketRequestMaxBytes = boundSocketMaxBytes
	c.Kafka.FetchMaxBytes = boundFetchMaxBytes
	c.Kafka.QueuedMaxFetchBytes = boundQueuedFetchBytes
	c.Kafka.RequestReadTimeoutMs = int(boundReadTimeout / time.Millisecond)
	c.Raft.Advanced.MaxUncommittedBytes = boundUncommittedBytes
	c.Raft.Advanced.EntryCacheBytes = boundEntryCacheBytes
	return c.MemoryBound(connections)
}

func boundNode(t *testing.T) *harness.Node {
	t.Helper()
	n := harness.NewNode(t, harness.NodeOptions{Env: boundEnv()})
	n.Start()
	return n
}

// TestMemoryBoundUnderRequestFlood: 50 connections each send a 100 MiB
// frame of zeros (three of them trickle theirs) while another client keeps
// producing and fetching.
func TestMemoryBoundUnderRequestFlood(t *testing.T) {
	n := boundNode(t)
	seed := seedSteady(t, n)
	underFlood(t, n, seed, "request flood", func() []floodWaiter {
		return []floodWaiter{startRequestFlood(t, n.Addr(), floodConnections, 3)}
	})
	if !n.WaitLogContains("request body not received within kafka.request_read_timeout_ms", 10*time.Second) {
		t.Error("the server did not log why it closed the trickling connections")
	}
	if w := metricValue(n, `chronik_kafka_memory_waits_total{budget="requests"}`); w <= 0 {
		t.Error("no request waited for the request budget: the flood did not meet back-pressure")
	}
}

// TestMemoryBoundUnderFetchFlood: 50 connections fetch with max_bytes of
// 1 GiB from a partition holding 256 MiB, while another client keeps
// producing and fetching.
func TestMemoryBoundUnderFetchFlood(t *testing.T) {
	n := boundNode(t)
	seed := seedSteady(t, n)
	produceBig(t, n)
	var ff *fetchFlood
	underFlood(t, n, seed, "fetch flood", func() []floodWaiter {
		ff = startFetchFlood(t, n.Addr(), floodConnections, 2)
		return []floodWaiter{ff}
	})
	checkFetchCap(t, ff)
	if w := metricValue(n, `chronik_kafka_memory_waits_total{budget="fetch"}`); w <= 0 {
		t.Error("no fetch was held back by the fetch budget: the flood did not meet back-pressure")
	}
}

// TestMemoryBoundUnderBothFloods runs both floods at once: 100 hostile
// connections, with both budgets full.
func TestMemoryBoundUnderBothFloods(t *testing.T) {
	n := boundNode(t)
	seed := seedSteady(t, n)
	produceBig(t, n)
	var ff *fetchFlood
	underFlood(t, n, seed, "both floods", func() []floodWaiter {
		ff = startFetchFlood(t, n.Addr(), floodConnections, 2)
		return []floodWaiter{startRequestFlood(t, n.Addr(), floodConnections, 3), ff}
	})
	checkFetchCap(t, ff)
}

// floodWaiter is a running flood: progress returns nil once it has done
// all it set out to do, else what is missing.
type floodWaiter interface {
	progress() error
	stop()
	figure() string
}

// underFlood runs the floods start starts while the probe keeps asking,
// samples the server's RSS, logs the figures and checks the bound, the
// probe's answers and the data.
func underFlood(t *testing.T, n *harness.Node, seed *kgo.Client, name string, start func() []floodWaiter) {
	t.Helper()
	idle := rssOf(t, n.PID())
	rss := sampleRSS(t, n)
	p := startProbe(n.Addr(), "steady")
	floods := start()
	conns := 2 + len(floods)*floodConnections // plus the probe and the seed client
	err := waitUntil(4*time.Minute, func() error {
		if p.failure() != nil {
			return nil // reported below
		}
		for _, f := range floods {
			if err := f.progress(); err != nil {
				return fmt.Errorf("%w; the well-behaved client answered %d rounds", err, p.rounds.Load())
			}
		}
		return nil
	})
	for _, f := range floods {
		f.stop()
	}
	p.stop()
	peak, killed := rss.stop()
	bound := memoryBound(conns)
	if killed {
		t.Logf("FIGURE %s: the server passed the safety cap and was killed: the peak below is a lower bound", name)
	}
	t.Logf("FIGURE %s: server RSS idle %.0f MiB, peak %.0f MiB; documented bound %.0f MiB", name, mib(idle), mib(peak), mib(bound))
	for _, f := range floods {
		t.Logf("FIGURE %s: %s", name, f.figure())
	}
	t.Logf("FIGURE %s: well-behaved client answered %d rounds (ApiVersions, Metadata, Produce 1 KiB, Fetch), slowest request %v",
		name, p.rounds.Load(), p.slowest())
	if killed {
		t.Fatalf("server RSS passed the safety cap of %.0f MiB; it was killed", mib(rssSafetyCap))
	}
	if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	if peak > bound {
		t.Errorf("server peak RSS %.0f MiB is above the documented bound of %.0f MiB for this configuration", mib(peak), mib(bound))
	}
	if err := p.failure(); err != nil {
		t.Fatalf("the well-behaved client was not answered during the flood: %v", err)
	}
	if p.rounds.Load() == 0 {
		t.Fatal("the well-behaved client completed no round during the flood")
	}
	for _, m := range []string{`chronik_kafka_memory_reserved_bytes{budget="requests"}`, `chronik_kafka_memory_reserved_bytes{budget="fetch"}`} {
		harness.WaitFor(t, m+" to return to 0", 30*time.Second, func() error {
			if v := metricValue(n, m); v != 0 {
				return fmt.Errorf("%s = %v", m, v)
			}
			return nil
		})
	}
	checkServesAndKept(t, n, seed, p)
}

// seedSteady creates the probe's topic with one record at offset 0.
func seedSteady(t *testing.T, n *harness.Node) *kgo.Client {
	t.Helper()
	seed := franzClient(t, n.Addr(), kgo.DefaultProduceTopic("steady"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	t.Cleanup(seed.Close)
	if err := seed.ProduceSync(harness.Context(t, time.Minute), &kgo.Record{Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return seed
}

// produceBig fills partition 0 of topic big with 256 MiB of uncompressed
// batches.
func produceBig(t *testing.T, n *harness.Node) {
	t.Helper()
	const bigBytes, valueBytes = 256 << 20, 64 << 10
	ctx := harness.Context(t, 2*time.Minute)
	big := franzClient(t, n.Addr(), kgo.DefaultProduceTopic("big"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	defer big.Close()
	value := bytes.Repeat([]byte("v"), valueBytes)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range bigBytes / valueBytes {
		wg.Add(1)
		big.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("produce the big topic: %v", *err)
	}
}

// requestFlood: connections that each send one 100 MiB frame of zeros,
// the first trickling of them a byte every 100 ms.
type requestFlood struct {
	floodConns
	conns, trickling     int
	sent, closedByServer atomic.Int64
	mu                   sync.Mutex // guards trickledFor
	trickledFor          []time.Duration
}

// floodConns are a flood's connections: each runs on wg until quit closes,
// and the first error one reports is kept.
type floodConns struct {
	quit chan struct{}
	wg   sync.WaitGroup
	firstError
}

// run runs fn for connection c on wg; c closes when fn returns or the
// flood stops.
func (f *floodConns) run(c io.Closer, fn func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer c.Close()
		go func() { <-f.quit; c.Close() }()
		fn()
	}()
}

// stop closes the connections and waits for them.
func (f *floodConns) stop() {
	close(f.quit)
	f.wg.Wait()
}

// firstError keeps the first error a flood's connections report.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) first() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func startRequestFlood(t *testing.T, addr string, conns, trickling int) *requestFlood {
	t.Helper()
	f := &requestFlood{floodConns: floodConns{quit: make(chan struct{})}, conns: conns, trickling: trickling}
	zeros := make([]byte, 1<<20)
	header := binary.BigEndian.AppendUint32(nil, boundSocketMaxBytes)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(4 * time.Minute))
		f.run(c, func() {
			if _, err := c.Write(header); err != nil {
				f.fail(fmt.Errorf("flooding connection %d: %w", i, err))
				return
			}
			if i < trickling {
				// One byte at a time, until the server gives up on the body.
				start := time.Now()
				for {
					if _, err := c.Write(zeros[:1]); err != nil {
						select {
						case <-f.quit:
						default:
							f.mu.Lock()
							f.trickledFor = append(f.trickledFor, time.Since(start))
							f.mu.Unlock()
							f.closedByServer.Add(1)
						}
						return
					}
					select {
					case <-f.quit:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
			for range boundSocketMaxBytes / len(zeros) {
				if _, err := c.Write(zeros); err != nil {
					f.fail(fmt.Errorf("flooding connection %d: %w", i, err))
					return
				}
			}
			// The frame decodes as a Produce v0 with acks=0 and no topics:
			// no response is owed. Wait until the server has read it all.
			c.(*net.TCPConn).CloseWrite()
			c.Read(make([]byte, 1))
			f.sent.Add(1)
		})
	}
	return f
}

func (f *requestFlood) progress() error {
	switch err := f.first(); {
	case err != nil:
		return err
	case f.sent.Load() < int64(f.conns-f.trickling):
		return fmt.Errorf("%d of %d 100 MiB frames read by the server", f.sent.Load(), f.conns-f.trickling)
	case f.closedByServer.Load() < int64(f.trickling):
		// The server reads them once the budget lets it, and closes each
		// after kafka.request_read_timeout_ms.
		return fmt.Errorf("%d of %d trickling connections closed by the server", f.closedByServer.Load(), f.trickling)
	}
	return nil
}

func (f *requestFlood) figure() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("%d connections x one 100 MiB frame, %d frames read; %d trickling connections closed by the server after %v (kafka.request_read_timeout_ms = %v)",
		f.conns, f.sent.Load(), len(f.trickledFor), f.trickledFor, boundReadTimeout)
}

// fetchFlood: connections that each fetch partition 0 of topic big with
// max_bytes and partition_max_bytes of 1 GiB, fetchesEach times, reading
// and discarding the responses.
type fetchFlood struct {
	floodConns
	conns, fetchesEach int
	fetched, largest   atomic.Int64
}

func startFetchFlood(t *testing.T, addr string, conns, fetchesEach int) *fetchFlood {
	t.Helper()
	f := &fetchFlood{floodConns: floodConns{quit: make(chan struct{})}, conns: conns, fetchesEach: fetchesEach}
	for i := range conns {
		kc, err := dialKafka(addr)
		if err != nil {
			t.Fatal(err)
		}
		f.run(kc.c, func() {
			for range fetchesEach {
				req := kmsg.NewPtrFetchRequest()
				req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = -1, 500, 1, 1<<30, -1
				tp := kmsg.NewFetchRequestTopicPartition()
				tp.FetchOffset, tp.PartitionMaxBytes, tp.CurrentLeaderEpoch, tp.LogStartOffset = int64(i*40), 1<<30, -1, -1
				req.Topics = []kmsg.FetchRequestTopic{{Topic: "big", Partitions: []kmsg.FetchRequestTopicPartition{tp}}}
				// Only the frame's size is kept: the response is discarded
				// as it arrives, whatever its size.
				size, err := kc.send(req, 12, 4*time.Minute)
				if err == nil {
					_, err = io.CopyN(io.Discard, kc.r, int64(size))
				}
				if err != nil {
					f.fail(fmt.Errorf("fetching connection %d: %w", i, err))
					return
				}
				f.fetched.Add(1)
				for {
					l := f.largest.Load()
					if int64(size) <= l || f.largest.CompareAndSwap(l, int64(size)) {
						break
					}
				}
			}
		})
	}
	return f
}

func (f *fetchFlood) progress() error {
	if err := f.first(); err != nil {
		return err
	}
	if got, want := f.fetched.Load(), int64(f.conns*f.fetchesEach); got < want {
		return fmt.Errorf("%d of %d fetches answered", got, want)
	}
	return nil
}

func (f *fetchFlood) figure() string {
	return fmt.Sprintf("%d connections x %d fetches with max_bytes 1 GiB of a 256 MiB partition, %d answered; largest response %.1f MiB (kafka.fetch_max_bytes %d MiB)",
		f.conns, f.fetchesEach, f.fetched.Load(), mib(f.largest.Load()), boundFetchMaxBytes>>20)
}

// checkFetchCap: the partition holds 64 KiB records in batches of about
// 1 MB, so no single batch exceeds kafka.fetch_max_bytes, and neither may
// a response (plus its headers).
func checkFetchCap(t *testing.T, f *fetchFlood) {
	t.Helper()
	if l := f.largest.Load(); l > boundFetchMaxBytes+64<<10 {
		t.Errorf("a response of %d bytes passed kafka.fetch_max_bytes = %d", l, boundFetchMaxBytes)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// waitUntil polls cond every 10 ms until it returns nil or d passes, and
// returns its last error. Unlike harness.WaitFor it does not end the test,
// so that the figures of a failing run are still logged.
func waitUntil(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkServesAndKept: after the flood the node still takes writes, and
// every record acknowledged to the probe (and the seed record) is there at
// its acknowledged offset.
func checkServesAndKept(t *testing.T, n *harness.Node, seed *kgo.Client, p *probe) {
	t.Helper()
	ctx := harness.Context(t, time.Minute)
	res := seed.ProduceSync(ctx, &kgo.Record{Value: []byte("after")})
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce after the flood: %v", err)
	}
	last := res[0].Record.Offset
	want := p.acknowledged()
	want[0] = "first"
	want[last] = "after"
	cl := franzClient(t, n.Addr(), kgo.ConsumeTopics("steady"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	got := map[int64]string{}
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got[r.Offset] = string(r.Value) })
		if _, ok := got[last]; ok {
			break
		}
	}
	for off, v := range want {
		if got[off] != v {
			t.Fatalf("acknowledged record at offset %d: read %.20q, want %.20q", off, got[off], v)
		}
	}
	t.Logf("read back all %d acknowledged records of the well-behaved client", len(want))
}

// rssOf reads a process's resident set size from /proc.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	v, err := procStatus(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// procStatus returns a kB field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// rssSampler follows a node's RSS, keeps its peak, and kills the node if
// it passes rssSafetyCap.
type rssSampler struct {
	n      *harness.Node
	pid    int
	quit   chan struct{}
	done   chan struct{}
	peak   atomic.Int64
	killed atomic.Bool
}

func sampleRSS(t *testing.T, n *harness.Node) *rssSampler {
	t.Helper()
	s := &rssSampler{n: n, pid: n.PID(), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := procStatus(s.pid, "VmRSS"); err == nil {
				if v > s.peak.Load() {
					s.peak.Store(v)
				}
				if v > rssSafetyCap {
					s.killed.Store(true)
					s.n.Kill()
					return
				}
			}
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

// stop ends sampling and returns the peak: the largest sample, or the
// kernel's high-water mark (VmHWM) if the process is alive and it is
// higher (it sees between samples).
func (s *rssSampler) stop() (int64, bool) {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
	peak := s.peak.Load()
	if hwm, err := procStatus(s.pid, "VmHWM"); err == nil && !s.killed.Load() {
		peak = max(peak, hwm)
	}
	return peak, s.killed.Load()
}

// kafkaConn is a raw Kafka connection usable from any goroutine.
type kafkaConn struct {
	c    net.Conn
	r    *bufio.Reader
	corr int32
}

func dialKafka(addr string) (*kafkaConn, error) {
	c, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return nil, err
	}
	return &kafkaConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// send writes req and reads the response frame's size and correlation
// id; it returns the bytes of the frame left to read.
func (k *kafkaConn) send(req kmsg.Request, version int16, timeout time.Duration) (int, error) {
	k.corr++
	req.SetVersion(version)
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(k.corr))
	b = binary.BigEndian.AppendUint16(b, 5)
	b = append(b, "bound"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	k.c.SetDeadline(time.Now().Add(timeout))
	if _, err := k.c.Write(b); err != nil {
		return 0, fmt.Errorf("%s: write: %w", kmsg.NameForKey(req.Key()), err)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(k.r, hdr[:]); err != nil {
		return 0, fmt.Errorf("%s: no response: %w", kmsg.NameForKey(req.Key()), err)
	}
	if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != k.corr {
		return 0, fmt.Errorf("%s: correlation id %d, want %d", kmsg.NameForKey(req.Key()), corr, k.corr)
	}
	return int(binary.BigEndian.Uint32(hdr[:4])) - 4, nil
}

// do sends req and decodes its response.
func (k *kafkaConn) do(req kmsg.Request, version int16, timeout time.Duration) (kmsg.Response, error) {
	n, err := k.send(req, version, timeout)
	if err != nil {
		return nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(k.r, body); err != nil {
		return nil, fmt.Errorf("%s: read response: %w", kmsg.NameForKey(req.Key()), err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:] // empty tagged fields of the response header
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%s: decode response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// probe is the well-behaved client: on its own connection it repeats
// ApiVersions, Metadata, a 1 KiB Produce (acks=all) and a Fetch of what it
// produced, each of which must be answered within probeTimeout.
type probe struct {
	topic  string
	quit   chan struct{}
	done   chan struct{}
	rounds atomic.Int64

	mu    sync.Mutex
	err   error
	acked map[int64]string
	worst time.Duration
}

func startProbe(addr, topic string) *probe {
	p := &probe{topic: topic, quit: make(chan struct{}), done: make(chan struct{}), acked: map[int64]string{}}
	go p.run(addr)
	return p
}

func (p *probe) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
}

func (p *probe) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *probe) slowest() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.worst.Round(time.Millisecond)
}

func (p *probe) acknowledged() map[int64]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int64]string, len(p.acked))
	for k, v := range p.acked {
		out[k] = v
	}
	return out
}

func (p *probe) run(addr string) {
	defer close(p.done)
	fail := func(err error) {
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
	}
	kc, err := dialKafka(addr)
	if err != nil {
		fail(err)
		return
	}
	defer kc.c.Close()
	timed := func(req kmsg.Request, version int16) (kmsg.Response, error) {
		start := time.Now()
		resp, err := kc.do(req, version, probeTimeout)
		d := time.Since(start)
		p.mu.Lock()
		p.worst = max(p.worst, d)
		p.mu.Unlock()
		return resp, err
	}
	for i := 0; ; i++ {
		select {
		case <-p.quit:
			return
		default:
		}
		if err := p.round(i, timed); err != nil {
			fail(fmt.Errorf("round %d: %w", i, err))
			return
		}
		p.rounds.Add(1)
	}
}

func (p *probe) round(i int, do func(kmsg.Request, int16) (kmsg.Response, error)) error {
	av, err := do(kmsg.NewPtrApiVersionsRequest(), 3)
	if err != nil {
		return err
	}
	if code := av.(*kmsg.ApiVersionsResponse).ErrorCode; code != 0 {
		return fmt.Errorf("ApiVersions: error %d", code)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(p.topic)}}
	mr, err := do(md, 12)
	if err != nil {
		return err
	}
	if ts := mr.(*kmsg.MetadataResponse).Topics; len(ts) != 1 || ts[0].ErrorCode != 0 {
		return fmt.Errorf("Metadata: %+v", ts)
	}
	value := fmt.Sprintf("probe-%06d-", i)
	value += strings.Repeat("x", 1024-len(value))
	batch := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte(value)}}})
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = -1, int32(probeTimeout/time.Millisecond)
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: p.topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch}}}}
	resp, err := do(pr, 9)
	if err != nil {
		return err
	}
	ps := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if ps.ErrorCode != 0 {
		return fmt.Errorf("Produce: error %d", ps.ErrorCode)
	}
	p.mu.Lock()
	p.acked[ps.BaseOffset] = value
	p.mu.Unlock()

	fr := kmsg.NewPtrFetchRequest()
	fr.ReplicaID, fr.MaxWaitMillis, fr.MinBytes, fr.MaxBytes, fr.SessionEpoch = -1, 100, 1, 1<<20, -1
	tp := kmsg.NewFetchRequestTopicPartition()
	tp.FetchOffset, tp.PartitionMaxBytes, tp.CurrentLeaderEpoch, tp.LogStartOffset = ps.BaseOffset, 1<<20, -1, -1
	fr.Topics = []kmsg.FetchRequestTopic{{Topic: p.topic, Partitions: []kmsg.FetchRequestTopicPartition{tp}}}
	resp, err = do(fr, 12)
	if err != nil {
		return err
	}
	fp := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if fp.ErrorCode != 0 {
		return fmt.Errorf("Fetch: error %d", fp.ErrorCode)
	}
	if fp.HighWatermark <= ps.BaseOffset {
		return fmt.Errorf("Fetch: high watermark %d, but offset %d was acknowledged", fp.HighWatermark, ps.BaseOffset)
	}
	return nil
}

// TestFetchMaxBytesCapsAResponse, on an in-process node: a Fetch asking for
// 1 GiB gets at most kafka.fetch_max_bytes of batches over its partitions,
// except a first batch that is larger on its own (KIP-74).
func TestFetchMaxBytesCapsAResponse(t *testing.T) {
	const fetchMax = 1 << 20
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AdvertisedAddr = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	cfg.MetricsAddr = ""
	cfg.Kafka.NumPartitions = 2
	cfg.Kafka.MessageMaxBytes = 3 << 20
	cfg.Kafka.FetchMaxBytes = fetchMax
	cfg.Kafka.QueuedMaxFetchBytes = 8 << 20
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := harness.Context(t, 2*time.Minute)
	node, err := server.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Shutdown(context.Background()) })

	cl := franzClient(t, cfg.AdvertisedAddr, kgo.DefaultProduceTopic("capped"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(4<<20))
	defer cl.Close()
	value := bytes.Repeat([]byte("v"), 100<<10)
	for p := range int32(2) {
		for range 40 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: value}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	res := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: bytes.Repeat([]byte("w"), 2<<20)})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	bigOffset := res[0].Record.Offset

	kc, err := dialKafka(cfg.AdvertisedAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.c.Close()
	fetch := func(offsets ...int64) [][]byte {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = -1, 100, 1, 1<<30, -1
		rt := kmsg.FetchRequestTopic{Topic: "capped"}
		for p, off := range offsets {
			tp := kmsg.NewFetchRequestTopicPartition()
			tp.Partition, tp.FetchOffset, tp.PartitionMaxBytes, tp.CurrentLeaderEpoch, tp.LogStartOffset = int32(p), off, 1<<30, -1, -1
			rt.Partitions = append(rt.Partitions, tp)
		}
		req.Topics = []kmsg.FetchRequestTopic{rt}
		resp, err := kc.do(req, 12, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, sp := range resp.(*kmsg.FetchResponse).Topics[0].Partitions {
			if sp.ErrorCode != 0 {
				t.Fatalf("partition %d: error %d", sp.Partition, sp.ErrorCode)
			}
			out = append(out, sp.RecordBatches)
		}
		return out
	}
	parts := fetch(0, 0)
	total := len(parts[0]) + len(parts[1])
	t.Logf("a Fetch with max_bytes 1 GiB of two partitions holding about 4 MiB each returned %d + %d bytes", len(parts[0]), len(parts[1]))
	if total == 0 || total > fetchMax {
		t.Fatalf("a Fetch with max_bytes 1 GiB returned %d bytes; kafka.fetch_max_bytes is %d", total, fetchMax)
	}
	parts = fetch(bigOffset)
	if n := len(parts[0]); n <= fetchMax || n > 2<<20+1024 {
		t.Fatalf("a Fetch at a 2 MiB batch returned %d bytes, want that one batch (KIP-74)", n)
	}
}
