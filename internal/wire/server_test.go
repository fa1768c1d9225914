package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeHandler serves ApiVersions v0-3 and Metadata v0-12; Metadata answers
// after a delay taken from the request's topic count, to reorder completion,
// or, for a topic named "hold", once hold is closed. A Produce with
// acks=-1 is also answered once hold is closed (at once without hold).
type fakeHandler struct{ hold chan struct{} }

func (fakeHandler) Supported(key, version int16) bool {
	switch key {
	case kmsg.ApiVersions.Int16():
		return version <= 3
	case kmsg.Metadata.Int16():
		return version <= 12
	case kmsg.Produce.Int16():
		return version >= 3 && version <= 9
	}
	return false
}

func (h fakeHandler) Handle(r *Request, respond func(kmsg.Response)) {
	switch req := r.Msg.(type) {
	case *kmsg.MetadataRequest:
		delay := time.Duration(len(req.Topics)) * 20 * time.Millisecond
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		if len(req.Topics) == 1 && req.Topics[0].Topic != nil && *req.Topics[0].Topic == "hold" {
			go func() { <-h.hold; respond(resp) }()
			return
		}
		resp.ControllerID = int32(len(req.Topics))
		time.AfterFunc(delay, func() { respond(resp) })
	case *kmsg.ProduceRequest:
		if req.Acks == 0 {
			respond(nil)
			return
		}
		if req.Acks == -1 && h.hold != nil {
			go func() { <-h.hold; respond(req.ResponseKind()) }()
			return
		}
		respond(req.ResponseKind())
	default:
		respond(r.Msg.ResponseKind())
	}
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	return startServerWith(t, opts, fakeHandler{})
}

func startServerWith(t *testing.T, opts Options, h fakeHandler) *Server {
	t.Helper()
	opts.APIVersions = func() []kmsg.ApiVersionsResponseApiKey {
		return []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: 3}}
	}
	s, err := Listen("127.0.0.1:0", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func frame(req kmsg.Request, version int16, corr int32) []byte {
	req.SetVersion(version)
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func readFrame(t *testing.T, r *bufio.Reader) (int32, []byte) {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		t.Fatalf("read response size: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:]
}

func TestResponsesInRequestOrder(t *testing.T) {
	s := startServer(t, Options{})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Request 1 finishes last (3 topics: 60 ms), request 3 first.
	for i, topics := range []int{3, 1, 0} {
		req := kmsg.NewPtrMetadataRequest()
		for range topics {
			req.Topics = append(req.Topics, kmsg.NewMetadataRequestTopic())
		}
		c.Write(frame(req, 12, int32(i+1)))
	}
	// An acks=0 produce in between gets no response at all.
	p := kmsg.NewPtrProduceRequest()
	p.Acks = 0
	c.Write(frame(p, 9, 99))
	c.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 4))
	r := bufio.NewReader(c)
	for want := int32(1); want <= 4; want++ {
		corr, body := readFrame(t, r)
		if corr != want {
			t.Fatalf("response with correlation id %d, want %d", corr, want)
		}
		if want <= 3 {
			resp := kmsg.NewPtrMetadataResponse()
			resp.SetVersion(12)
			if err := resp.ReadFrom(body[1:]); err != nil { // skip the flexible header's tags
				t.Fatal(err)
			}
			if int(resp.ControllerID) != []int{3, 1, 0}[want-1] {
				t.Fatalf("response %d belongs to another request", want)
			}
		}
	}
}

// A finished response goes out while a later request of the same
// connection is still being served: it is not held in the write buffer
// until the connection goes idle.
func TestAnsweredResponseIsNotHeldBehindAPendingOne(t *testing.T) {
	hold := make(chan struct{})
	s := startServerWith(t, Options{}, fakeHandler{hold: hold})
	released := false
	release := func() {
		if !released {
			released = true
			close(hold)
		}
	}
	t.Cleanup(release) // before the server closes, also when the test fails
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held := kmsg.NewPtrMetadataRequest()
	topic := kmsg.NewMetadataRequestTopic()
	topic.Topic = kmsg.StringPtr("hold")
	held.Topics = append(held.Topics, topic)
	c.Write(frame(kmsg.NewPtrMetadataRequest(), 12, 1))
	c.Write(frame(held, 12, 2))
	// The deadline only bounds a failing run; the held request is released
	// after the first response has arrived.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if corr, _ := readFrame(t, r); corr != 1 {
		t.Fatalf("first response has correlation id %d, want 1", corr)
	}
	release()
	if corr, _ := readFrame(t, r); corr != 2 {
		t.Fatalf("second response has correlation id %d, want 2", corr)
	}
}

func TestUnsupportedAPIVersionsIsAnsweredAtV0(t *testing.T) {
	s := startServer(t, Options{})
	c, _ := net.Dial("tcp", s.Addr().String())
	defer c.Close()
	c.Write(frame(kmsg.NewPtrApiVersionsRequest(), 9, 7))
	corr, body := readFrame(t, bufio.NewReader(c))
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := resp.ReadFrom(body); err != nil || corr != 7 {
		t.Fatalf("decode v0 response: %v (corr %d)", err, corr)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("got %+v", resp)
	}
}

// TestBadFramesCloseOnlyTheirConnection sends malformed input; each such
// connection is closed and the server keeps serving the others.
func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	s := startServer(t, Options{MaxRequestSize: 1 << 10})
	good, _ := net.Dial("tcp", s.Addr().String())
	defer good.Close()
	bad := map[string][]byte{
		"oversized":           {0, 0, 0x10, 0, 0, 18, 0, 0},
		"negative size":       {0xff, 0xff, 0xff, 0xff},
		"unknown api key":     frame(kmsg.NewPtrApiVersionsRequest(), 0, 1)[:4],
		"unsupported version": frame(kmsg.NewPtrMetadataRequest(), 13, 1),
		"truncated body":      frame(kmsg.NewPtrMetadataRequest(), 12, 1)[:12],
	}
	unknown := frame(kmsg.NewPtrApiVersionsRequest(), 0, 1)
	binary.BigEndian.PutUint16(unknown[4:], 999)
	bad["unknown api key"] = unknown
	corrupt := frame(kmsg.NewPtrMetadataRequest(), 12, 1)
	corrupt = append(corrupt[:len(corrupt)-2], 0x7f, 0xff) // a topic array of huge length
	binary.BigEndian.PutUint32(corrupt, uint32(len(corrupt)-4))
	bad["garbage in body"] = corrupt
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(b)
			if name == "truncated body" {
				c.(*net.TCPConn).CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("connection not closed after %s: %v", name, err)
			}
		})
	}
	good.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 5))
	if corr, _ := readFrame(t, bufio.NewReader(good)); corr != 5 {
		t.Fatalf("good connection got corr %d", corr)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, r := range []kmsg.Request{kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest()} {
		v := int16(3)
		if r.Key() == kmsg.Metadata.Int16() {
			v = 12
		}
		f.Add(frame(r, v, 1)[4:])
	}
	s := &Server{handler: fakeHandler{}, opts: Options{MaxRequestSize: 1 << 20}}
	c := &conn{s: s, nc: &net.TCPConn{}, slots: make(chan *slot, 1)}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := c.decode(body, 0)
		if err == nil && req != nil && req.Msg == nil {
			t.Fatal("decoded a request without a message")
		}
		select {
		case <-c.slots:
		default:
		}
	})
}
