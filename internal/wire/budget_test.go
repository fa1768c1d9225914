package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const mib = 1 << 20

// budgetOptions: frames up to 4 MiB, 6 MiB of budget. Frames above 1 MiB
// are large; large ones may hold 4.5 MiB together (one 3 MiB frame at a
// time), and 1.5 MiB are left to small ones.
func budgetOptions() Options {
	return Options{MaxRequestSize: 4 * mib, QueuedMaxRequestBytes: 6 * mib}
}

// produceFrame is a Produce v9 frame whose records take size bytes.
func produceFrame(size int, acks int16, corr int32) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 10000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: make([]byte, size)}}}}
	return frame(req, 9, corr)
}

// frameBytes is what a frame reserves: its size without the length prefix.
func frameBytes(f []byte) int64 { return int64(len(f) - 4) }

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitUntil polls cond until it holds; the deadline only bounds a failing
// run.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func reservedIs(s *Server, n int64) func() bool {
	return func() bool { return s.RequestBudget().Reserved() == n }
}

// expectResponse reads one response and checks its correlation id.
func expectResponse(t *testing.T, c net.Conn, r *bufio.Reader, corr int32) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, _ := readFrame(t, r); got != corr {
		t.Fatalf("response with correlation id %d, want %d", got, corr)
	}
}

// expectClosed waits for the server to close c.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("%s: connection not closed by the server: %v", what, err)
	}
}

// startHolding starts a server whose handler holds acks=-1 produces until
// release is called; they are released at the end of the test, before the
// server closes, also when it fails.
func startHolding(t *testing.T, opts Options) (*Server, func()) {
	t.Helper()
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	s := startServerWith(t, opts, fakeHandler{hold: hold})
	t.Cleanup(release) // runs before the server's Close, registered earlier
	return s, release
}

// A frame's bytes are reserved before its body is allocated; a frame that
// does not fit waits, unallocated, and the bytes go back once the response
// is written.
func TestRequestBytesAreReservedBeforeTheBodyIsAllocated(t *testing.T) {
	var srv atomic.Pointer[Server]
	var mu sync.Mutex
	var allocs []int
	var problems []string
	opts := budgetOptions()
	opts.allocBody = func(n int) []byte {
		b := srv.Load().RequestBudget()
		reserved := b.Reserved()
		mu.Lock()
		defer mu.Unlock()
		allocs = append(allocs, n)
		if reserved < int64(n) || reserved > b.Limit() {
			problems = append(problems, fmt.Sprintf("a body of %d bytes allocated with %d bytes reserved (limit %d)", n, reserved, b.Limit()))
		}
		return make([]byte, n)
	}
	allocated := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(allocs)
	}
	s, release := startHolding(t, opts)
	srv.Store(s)

	big1, big2 := produceFrame(3*mib, -1, 1), produceFrame(3*mib, -1, 2)
	c1, c2, small := dial(t, s), dial(t, s), dial(t, s)
	c1.Write(big1)
	waitUntil(t, "the first frame to be reserved", reservedIs(s, frameBytes(big1)))
	c2.Write(big2)
	waitUntil(t, "the second frame to wait for the budget", func() bool { return s.RequestBudget().Waiting() == 1 })
	if n := allocated(); n != 1 {
		t.Fatalf("%d bodies allocated while the second frame waits for its bytes, want 1", n)
	}
	// A small request is not held up by the large one waiting.
	small.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 7))
	expectResponse(t, small, bufio.NewReader(small), 7)

	release()
	expectResponse(t, c1, bufio.NewReader(c1), 1)
	expectResponse(t, c2, bufio.NewReader(c2), 2)
	waitUntil(t, "every reservation to be returned", reservedIs(s, 0))
	mu.Lock()
	defer mu.Unlock()
	if len(allocs) != 3 || len(problems) > 0 {
		t.Fatalf("allocations %v: %v", allocs, problems)
	}
}

// The bytes of a frame that owes no response go back too: a frame that
// does not decode, one cut short, an acks=0 produce, and a request whose
// connection closed before its answer.
func TestRequestBytesReturnedWithoutAResponse(t *testing.T) {
	s, release := startHolding(t, budgetOptions())

	undecodable := produceFrame(3*mib, 1, 1)
	binary.BigEndian.PutUint16(undecodable[4:], 999) // unknown API key
	c := dial(t, s)
	c.Write(undecodable)
	expectClosed(t, c, "a frame that does not decode")
	waitUntil(t, "the undecodable frame's bytes to return", reservedIs(s, 0))

	cut := produceFrame(3*mib, 1, 1)
	c = dial(t, s)
	c.Write(cut[:2*mib])
	waitUntil(t, "the cut frame to be reserved", reservedIs(s, frameBytes(cut)))
	c.Close()
	waitUntil(t, "the cut frame's bytes to return", reservedIs(s, 0))

	c = dial(t, s)
	c.Write(produceFrame(3*mib, 0, 1))
	c.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 2))
	expectResponse(t, c, bufio.NewReader(c), 2) // nothing for the acks=0 produce
	waitUntil(t, "the acks=0 produce's bytes to return", reservedIs(s, 0))

	held := produceFrame(3*mib, -1, 1)
	c = dial(t, s)
	c.Write(held)
	waitUntil(t, "the held produce to be reserved", reservedIs(s, frameBytes(held)))
	c.Close()
	// The bytes stay reserved while the handler holds the request: they
	// are still in use. They return once it answers, to nobody.
	release()
	waitUntil(t, "the held produce's bytes to return", reservedIs(s, 0))
}

// Connections stuck in the middle of large frames, and more waiting to
// reserve theirs, do not keep small requests on another connection from
// being answered: they do not queue behind the large ones.
func TestSmallRequestsAreNotQueuedBehindLargeOnes(t *testing.T) {
	opts := budgetOptions()
	opts.RequestReadTimeout = time.Minute
	s := startServer(t, opts)
	header := binary.BigEndian.AppendUint32(nil, 3*mib)
	partial := append(header, make([]byte, 1024)...)
	stuck := dial(t, s)
	stuck.Write(partial) // and never the rest
	waitUntil(t, "the stuck frame to be reserved", reservedIs(s, 3*mib))
	for range 4 {
		dial(t, s).Write(partial)
	}
	waitUntil(t, "four large frames to wait for the budget", func() bool { return s.RequestBudget().Waiting() == 4 })

	c := dial(t, s)
	r := bufio.NewReader(c)
	c.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 1))
	expectResponse(t, c, r, 1)
	c.Write(frame(kmsg.NewPtrMetadataRequest(), 12, 2))
	expectResponse(t, c, r, 2)
	c.Write(produceFrame(1024, 1, 3))
	expectResponse(t, c, r, 3)
}

// A reserved body that does not arrive within the read timeout closes its
// connection, says why, and returns its bytes.
func TestTricklingBodyIsCutOff(t *testing.T) {
	var logs syncBuffer
	opts := budgetOptions()
	opts.RequestReadTimeout = 300 * time.Millisecond
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := startServer(t, opts)
	c := dial(t, s)
	c.Write(binary.BigEndian.AppendUint32(nil, 3*mib))
	waitUntil(t, "the trickled frame to be reserved", reservedIs(s, 3*mib))
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := c.Write([]byte{0}); err != nil {
				return
			}
		}
	}()
	expectClosed(t, c, "a trickled body")
	close(stop)
	<-trickled
	waitUntil(t, "the trickled frame's bytes to return", reservedIs(s, 0))
	if !strings.Contains(logs.String(), "request body not received within kafka.request_read_timeout_ms") {
		t.Fatalf("the cause was not logged:\n%s", logs.String())
	}
}

// One connection holds at most maxConnQueuedBytes of unanswered requests,
// so a client pipelining large requests (or not reading its responses)
// leaves the budget to the others.
func TestOneConnectionHoldsAtMostItsShare(t *testing.T) {
	opts := budgetOptions()
	opts.QueuedMaxRequestBytes = 64 * mib
	s, release := startHolding(t, opts)
	const pipelined = 8
	var frames bytes.Buffer
	var size int64
	for i := range pipelined {
		f := produceFrame(3*mib, -1, int32(i+1))
		size = frameBytes(f)
		frames.Write(f)
	}
	greedy := dial(t, s)
	go greedy.Write(frames.Bytes())
	share := maxConnQueuedBytes / size
	waitUntil(t, "the greedy connection to fill its share", reservedIs(s, share*size))
	other := dial(t, s)
	other.Write(produceFrame(3*mib, -1, 1))
	waitUntil(t, "another connection's frame to be reserved", reservedIs(s, (share+1)*size))

	release()
	r := bufio.NewReader(greedy)
	for i := range pipelined {
		expectResponse(t, greedy, r, int32(i+1))
	}
	expectResponse(t, other, bufio.NewReader(other), 1)
	waitUntil(t, "every reservation to be returned", reservedIs(s, 0))
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
