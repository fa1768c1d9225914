package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/broker"
	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// FuzzHandleRequest feeds the broker's handlers, behind the real wire layer
// of a running standalone node, with requests that decode: an input is an
// API key, a version and a request body. What does not decode is skipped
// (FuzzDecodeRequest in internal/wire covers the decoder). What decodes is
// tamed (see tame), encoded again and sent over TCP, and then:
//
//   - a served version is answered within fuzzAnswerWithin (a Produce with
//     acks=0 is not answered, and the next request's answer comes next), the
//     answer carries the request's correlation id and decodes as the
//     matching response at the request's version, and encodes back to the
//     very bytes sent;
//   - a version not served gets its connection closed (ApiVersions: an
//     UNSUPPORTED_VERSION answer at v0);
//   - the node logged no error while answering (an error log line is an
//     unexpected error: UNKNOWN_SERVER_ERROR for the client, or worse);
//   - the node still serves: ApiVersions on the same connection, then a
//     produce and a fetch of that record on a topic made at setup.
//
// One node serves the whole run (a fuzzing worker starts it on its first
// input), so state built by earlier inputs (topics, groups, producer ids)
// is part of what later inputs meet. A panic in a handler ends the worker
// process, which the fuzzer reports with the input.
//
// The seed corpus (fuzzSeeds) is a valid request of every version of every
// API the broker advertises, in several shapes each: existing, unknown and
// reserved topics, negative partitions, empty and large arrays.
func FuzzHandleRequest(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.key, s.version, s.body)
	}
	dir := f.TempDir()
	var (
		once  sync.Once
		fz    *fuzzNode
		start error
	)
	f.Cleanup(func() {
		if fz != nil {
			fz.close()
		}
	})
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		req := kmsg.RequestForKey(key)
		if req == nil {
			return
		}
		req.SetVersion(version)
		if err := req.ReadFrom(body); err != nil {
			return
		}
		tame(req)
		once.Do(func() { fz, start = startFuzzNode(dir) })
		if start != nil {
			t.Fatalf("start the node: %v", start)
		}
		fz.serve(t, req)
	})
}

const (
	// fuzzCanary is the topic of the health check; inputs never change it
	// (see protectCanary).
	fuzzCanary = "fuzz-canary"
	// fuzzTopic is a topic with data, named by the seeds; inputs may
	// change or delete it, and it is made again after a deletion.
	fuzzTopic = "fuzz-topic"
	// fuzzAnswerWithin bounds every answer.
	fuzzAnswerWithin = 10 * time.Second
	// fuzzMaxWaitMs bounds the waits a request asks for (timeouts, long
	// polls, group sessions and rebalances): a correct handler waits that
	// long, and an input must not take seconds.
	fuzzMaxWaitMs = 100
	// fuzzMaxPartitions bounds the partitions one input creates per topic
	// (CreatePartitions has no limit of its own: a count near 2^31 would
	// have the handler build an assignment of that many partitions), and
	// fuzzMaxTopics the topics one input may create.
	fuzzMaxPartitions = 4
	fuzzMaxTopics     = 8
	// fuzzMaxAssignedPartition bounds the partition ids of a CreateTopics
	// manual assignment: the handler allocates one slot per id up to the
	// largest, so an id near 2^31 asks for tens of gigabytes.
	fuzzMaxAssignedPartition = 1 << 16
	// fuzzTopicsLimit: above this many topics, those made by inputs are
	// deleted, so a long run does not slow down as topics pile up.
	fuzzTopicsLimit = 200
)

// tame bounds what makes a correct handler wait or work long: timeouts and
// waits to fuzzMaxWaitMs, partition and topic counts of creations. It
// keeps every other field as the input has it.
func tame(req kmsg.Request) {
	wait := func(ms *int32) {
		if *ms <= 0 || *ms > fuzzMaxWaitMs {
			*ms = fuzzMaxWaitMs
		}
	}
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		wait(&r.TimeoutMillis) // 0 and below mean 30 s to the handler
	case *kmsg.FetchRequest:
		r.MaxWaitMillis = min(r.MaxWaitMillis, fuzzMaxWaitMs)
	case *kmsg.MetadataRequest:
		if len(r.Topics) > fuzzMaxTopics {
			r.Topics = r.Topics[:fuzzMaxTopics]
		}
	case *kmsg.CreateTopicsRequest:
		wait(&r.TimeoutMillis)
		if len(r.Topics) > fuzzMaxTopics {
			r.Topics = r.Topics[:fuzzMaxTopics]
		}
		for i := range r.Topics {
			t := &r.Topics[i]
			t.NumPartitions = min(t.NumPartitions, fuzzMaxPartitions)
			if len(t.ReplicaAssignment) > fuzzMaxPartitions {
				t.ReplicaAssignment = t.ReplicaAssignment[:fuzzMaxPartitions]
			}
			for j := range t.ReplicaAssignment {
				a := &t.ReplicaAssignment[j]
				a.Partition = min(a.Partition, fuzzMaxAssignedPartition)
			}
		}
	case *kmsg.DeleteTopicsRequest:
		wait(&r.TimeoutMillis)
	case *kmsg.DeleteRecordsRequest:
		wait(&r.TimeoutMillis)
	case *kmsg.CreatePartitionsRequest:
		wait(&r.TimeoutMillis)
		for i := range r.Topics {
			r.Topics[i].Count = min(r.Topics[i].Count, fuzzMaxPartitions)
		}
	case *kmsg.JoinGroupRequest:
		wait(&r.SessionTimeoutMillis)
		wait(&r.RebalanceTimeoutMillis)
	}
	protectCanary(req)
}

// protectCanary renames the health check's topic in the requests that
// would change or delete it.
func protectCanary(req kmsg.Request) {
	const other = fuzzCanary + "-not"
	rename := func(s *string) {
		if s != nil && *s == fuzzCanary {
			*s = other
		}
	}
	switch r := req.(type) {
	case *kmsg.DeleteTopicsRequest:
		for i := range r.TopicNames {
			rename(&r.TopicNames[i])
		}
		for i := range r.Topics {
			rename(r.Topics[i].Topic)
			r.Topics[i].TopicID = [16]byte{} // an unknown id still; never the canary's
		}
	case *kmsg.DeleteRecordsRequest:
		for i := range r.Topics {
			rename(&r.Topics[i].Topic)
		}
	case *kmsg.AlterConfigsRequest:
		for i := range r.Resources {
			rename(&r.Resources[i].ResourceName)
		}
	case *kmsg.IncrementalAlterConfigsRequest:
		for i := range r.Resources {
			rename(&r.Resources[i].ResourceName)
		}
	case *kmsg.CreatePartitionsRequest:
		for i := range r.Topics {
			rename(&r.Topics[i].Topic)
		}
	}
}

// fuzzNode is the node of a fuzzing run and the client that drives it.
type fuzzNode struct {
	node   *Node
	addr   string
	log    *fuzzLog
	conn   *fuzzConn // nil after the node closed it
	inputs int
}

func startFuzzNode(dir string) (*fuzzNode, error) {
	fl := &fuzzLog{}
	logger := slog.New(slog.NewTextHandler(fl, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var node *Node
	var err error
	// A free port can be taken between the look-up and the listen.
	for attempt := 0; attempt < 5; attempt++ {
		var port int
		if port, err = freeLoopbackPort(); err != nil {
			return nil, err
		}
		cfg := config.Default()
		cfg.DataDir = dir
		cfg.AdvertisedAddr = fmt.Sprintf("127.0.0.1:%d", port)
		cfg.ListenAddr = cfg.AdvertisedAddr
		cfg.MetricsAddr = ""
		cfg.Kafka.OffsetsTopicNumPartitions = 4
		cfg.Kafka.GroupMinSessionTimeoutMs = 1 // inputs' sessions are tamed to 100 ms
		cfg.Kafka.GroupInitialRebalanceDelayMs = 0
		if err = cfg.Validate(); err != nil {
			return nil, err
		}
		node, err = Start(context.Background(), cfg, logger)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	fz := &fuzzNode{node: node, addr: node.KafkaAddr().String(), log: fl}
	if err := fz.setup(); err != nil {
		fz.close()
		return nil, fmt.Errorf("%w\n%s", err, fl.tail())
	}
	return fz, nil
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (fz *fuzzNode) close() {
	if fz.conn != nil {
		fz.conn.nc.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fz.node.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FuzzHandleRequest: shutting the node down: %v\n", err)
	}
}

// setup makes the topics the seeds name and the consumer offsets topic,
// so the first inputs do not pay for them.
func (fz *fuzzNode) setup() error {
	c, err := fz.dial()
	if err != nil {
		return err
	}
	fz.conn = c
	for _, name := range []string{fuzzCanary, fuzzTopic} {
		if err := fz.createTopic(name); err != nil {
			return err
		}
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "fuzz-group"
	r, err := c.roundTrip(fc, 3)
	if err != nil {
		return err
	}
	if ec := r.(*kmsg.FindCoordinatorResponse).ErrorCode; ec != 0 {
		return fmt.Errorf("find the coordinator: %v", kerr.ErrorForCode(ec))
	}
	return nil
}

// createTopic makes a topic of two partitions with one record in each,
// unless it exists (inputs may have changed its configs since).
func (fz *fuzzNode) createTopic(name string) error {
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.TimeoutMillis = 10000
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: name, NumPartitions: 2, ReplicationFactor: 1}}
	r, err := fz.conn.roundTrip(ct, 7)
	if err != nil {
		return err
	}
	switch ec := r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; ec {
	case 0:
	case kerr.TopicAlreadyExists.Code:
		return nil
	default:
		return fmt.Errorf("create topic %s: %v", name, kerr.ErrorForCode(ec))
	}
	// A topic made again right after its deletion may still have the old
	// partitions' replicas in place for a moment (the node removes them in
	// the background); clients retry NOT_LEADER_OR_FOLLOWER, and so does
	// this, within a deadline.
	deadline := time.Now().Add(fuzzAnswerWithin)
	for p := int32(0); p < 2; p++ {
		for {
			_, err := fz.conn.produce(name, p)
			if err == nil {
				break
			}
			if !errors.Is(err, kerr.NotLeaderForPartition) || time.Now().After(deadline) {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

func (fz *fuzzNode) dial() (*fuzzConn, error) {
	nc, err := net.DialTimeout("tcp", fz.addr, fuzzAnswerWithin)
	if err != nil {
		return nil, err
	}
	return &fuzzConn{nc: nc, r: bufio.NewReader(nc)}, nil
}

// serve sends one tamed input and checks the answer and the node after it.
func (fz *fuzzNode) serve(t *testing.T, req kmsg.Request) {
	fz.inputs++
	name := fmt.Sprintf("%s v%d", kmsg.NameForKey(req.Key()), req.GetVersion())
	logged := fz.log.errorCount()
	if fz.conn == nil {
		c, err := fz.dial()
		if err != nil {
			t.Fatalf("%s: the node does not accept connections: %v", name, err)
		}
		fz.conn = c
	}
	c := fz.conn
	corr, err := c.send(req, req.GetVersion())
	if err != nil {
		t.Fatalf("%s: send: %v", name, err)
	}
	switch {
	case !servedVersion(req.Key(), req.GetVersion()):
		if req.Key() == kmsg.ApiVersions.Int16() {
			// Answered at v0 with the versions served.
			resp, err := c.receive(corr, kmsg.NewPtrApiVersionsRequest(), 0)
			if err != nil {
				t.Fatalf("%s (not served): %v", name, err)
			}
			if ec := resp.(*kmsg.ApiVersionsResponse).ErrorCode; ec != kerr.UnsupportedVersion.Code {
				t.Fatalf("%s (not served): answered with %v, want UNSUPPORTED_VERSION", name, kerr.ErrorForCode(ec))
			}
			break
		}
		if err := c.expectClosed(); err != nil {
			t.Fatalf("%s (not served): %v", name, err)
		}
		fz.conn = nil
	case isAcksZero(req):
		// No answer: the health check's ApiVersions answer must come next.
	default:
		resp, err := c.receive(corr, req, req.GetVersion())
		if err != nil {
			t.Fatalf("%s: %v\nrequest: %+v", name, err, req)
		}
		if err := checkResponse(req, resp); err != nil {
			t.Fatalf("%s: %v\nrequest: %+v\nresponse: %+v", name, err, req, resp)
		}
	}
	if err := fz.healthy(); err != nil {
		t.Fatalf("after %s, the node does not serve: %v\nrequest: %+v\nlog:\n%s", name, err, req, fz.log.tail())
	}
	// An error line logged later than this (by work the input left
	// behind) is reported with the next input.
	if lines := fz.log.errorsSince(logged); len(lines) > 0 {
		t.Fatalf("%s: the node logged errors:\n%s\nrequest: %+v", name, strings.Join(lines, "\n"), req)
	}
	if err := fz.maintain(req); err != nil {
		t.Fatalf("after %s: %v\nlog:\n%s", name, err, fz.log.tail())
	}
}

// healthy checks that the node answers ApiVersions on the input's
// connection (or a new one if that was closed), and that a record
// produced to the canary topic can be fetched back.
func (fz *fuzzNode) healthy() error {
	if err := fz.node.Err(); err != nil {
		return fmt.Errorf("the node stopped: %w", err)
	}
	if fz.conn == nil {
		c, err := fz.dial()
		if err != nil {
			return err
		}
		fz.conn = c
	}
	c := fz.conn
	r, err := c.roundTrip(kmsg.NewPtrApiVersionsRequest(), 3)
	if err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}
	if av := r.(*kmsg.ApiVersionsResponse); av.ErrorCode != 0 || len(av.ApiKeys) != len(broker.APIVersions()) {
		return fmt.Errorf("ApiVersions: %v, %d keys", kerr.ErrorForCode(av.ErrorCode), len(av.ApiKeys))
	}
	off, err := c.produce(fuzzCanary, 0)
	if err != nil {
		return err
	}
	fr := kmsg.NewPtrFetchRequest()
	fr.ReplicaID, fr.MaxWaitMillis, fr.MinBytes, fr.MaxBytes, fr.SessionEpoch = -1, 1000, 1, 1<<20, -1
	fr.Topics = []kmsg.FetchRequestTopic{{Topic: fuzzCanary, Partitions: []kmsg.FetchRequestTopicPartition{
		{Partition: 0, FetchOffset: off, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}}
	r, err = c.roundTrip(fr, 12)
	if err != nil {
		return fmt.Errorf("Fetch: %w", err)
	}
	p := r.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return fmt.Errorf("fetch %s offset %d: %v", fuzzCanary, off, kerr.ErrorForCode(p.ErrorCode))
	}
	h, err := recordbatch.ParseHeader(p.RecordBatches)
	if err != nil {
		return fmt.Errorf("fetch %s offset %d: %w", fuzzCanary, off, err)
	}
	if h.BaseOffset > off || h.LastOffset() < off {
		return fmt.Errorf("fetch %s offset %d: got the batch of offsets %d-%d", fuzzCanary, off, h.BaseOffset, h.LastOffset())
	}
	return nil
}

// maintain makes fuzzTopic again after an input deleted it, and deletes
// the topics inputs made once there are many.
func (fz *fuzzNode) maintain(req kmsg.Request) error {
	if req.Key() == kmsg.DeleteTopics.Int16() {
		if err := fz.createTopic(fuzzTopic); err != nil {
			return err
		}
	}
	if fz.inputs%64 != 0 {
		return nil
	}
	r, err := fz.conn.roundTrip(kmsg.NewPtrMetadataRequest(), 12)
	if err != nil {
		return fmt.Errorf("Metadata: %w", err)
	}
	topics := r.(*kmsg.MetadataResponse).Topics
	if len(topics) <= fuzzTopicsLimit {
		return nil
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TimeoutMillis = 10000
	for _, t := range topics {
		if t.Topic != nil && !t.IsInternal && *t.Topic != fuzzCanary && *t.Topic != fuzzTopic {
			del.TopicNames = append(del.TopicNames, *t.Topic)
		}
	}
	r, err = fz.conn.roundTrip(del, 5)
	if err != nil {
		return fmt.Errorf("DeleteTopics: %w", err)
	}
	for _, t := range r.(*kmsg.DeleteTopicsResponse).Topics {
		if t.ErrorCode != 0 {
			return fmt.Errorf("delete topic %v: %v", t.Topic, kerr.ErrorForCode(t.ErrorCode))
		}
	}
	return nil
}

// servedVersion reports whether the broker advertises key at version.
func servedVersion(key, version int16) bool {
	for _, k := range broker.APIVersions() {
		if k.ApiKey == key {
			return version >= k.MinVersion && version <= k.MaxVersion
		}
	}
	return false
}

func isAcksZero(req kmsg.Request) bool {
	p, ok := req.(*kmsg.ProduceRequest)
	return ok && p.Acks == 0
}

// checkResponse holds what every answer to a served request must satisfy
// beyond decoding.
func checkResponse(req kmsg.Request, resp kmsg.Response) error {
	if resp.Key() != req.Key() {
		return fmt.Errorf("answered with %s", kmsg.NameForKey(resp.Key()))
	}
	return nil
}

// fuzzConn is a Kafka client connection that speaks exactly the version
// asked for.
type fuzzConn struct {
	nc   net.Conn
	r    *bufio.Reader
	corr int32
}

// send writes req at version with a request header; it returns the
// correlation id.
func (c *fuzzConn) send(req kmsg.Request, version int16) (int32, error) {
	c.corr++
	req.SetVersion(version)
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(c.corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "fuzz"...)
	if req.IsFlexible() {
		b = append(b, 0) // no tagged fields in the request header
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	c.nc.SetWriteDeadline(time.Now().Add(fuzzAnswerWithin))
	_, err := c.nc.Write(b)
	return c.corr, err
}

// receive reads the next answer, checks its correlation id, and decodes it
// as the response to req at version; the decoded response must encode
// back to the bytes received.
func (c *fuzzConn) receive(corr int32, req kmsg.Request, version int16) (kmsg.Response, error) {
	c.nc.SetReadDeadline(time.Now().Add(fuzzAnswerWithin))
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, fmt.Errorf("no answer within %v: %w", fuzzAnswerWithin, err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("answer of %d bytes", n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.r, frame); err != nil {
		return nil, fmt.Errorf("answer cut short: %w", err)
	}
	rd := kbin.Reader{Src: frame}
	if got := rd.Int32(); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		kmsg.SkipTags(&rd)
		if !rd.Ok() {
			return nil, fmt.Errorf("response header tags cut short")
		}
	}
	body := rd.Src
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("answer does not decode as %s v%d: %w", kmsg.NameForKey(req.Key()), version, err)
	}
	if again := resp.AppendTo(nil); !bytes.Equal(again, body) {
		return nil, fmt.Errorf("answer is not a %s v%d: %d bytes decode to a response that encodes to %d other bytes", kmsg.NameForKey(req.Key()), version, len(body), len(again))
	}
	return resp, nil
}

func (c *fuzzConn) roundTrip(req kmsg.Request, version int16) (kmsg.Response, error) {
	corr, err := c.send(req, version)
	if err != nil {
		return nil, err
	}
	return c.receive(corr, req, version)
}

// expectClosed waits for the node to close the connection, with nothing
// sent on it.
func (c *fuzzConn) expectClosed() error {
	c.nc.SetReadDeadline(time.Now().Add(fuzzAnswerWithin))
	b, err := c.r.ReadByte()
	c.nc.Close()
	switch {
	case err == nil:
		return fmt.Errorf("answered (first byte %#x) instead of closing the connection", b)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return nil
	default:
		return fmt.Errorf("connection not closed within %v: %w", fuzzAnswerWithin, err)
	}
}

// produce writes one record to topic/partition with acks=all and returns
// its offset.
func (c *fuzzConn) produce(topic string, partition int32) (int64, error) {
	batch := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Key: []byte("k"), Value: []byte("fuzz")}}})
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: partition, Records: batch}}}}
	r, err := c.roundTrip(req, 9)
	if err != nil {
		return 0, fmt.Errorf("Produce: %w", err)
	}
	p := r.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.BaseOffset < 0 {
		return 0, fmt.Errorf("produce to %s/%d: %w, offset %d", topic, partition, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	return p.BaseOffset, nil
}

// fuzzLog keeps the node's recent log lines and every error line.
type fuzzLog struct {
	mu     sync.Mutex
	recent []string
	errors []string
}

func (l *fuzzLog) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recent) >= 200 {
		l.recent = append(l.recent[:0], l.recent[100:]...)
	}
	l.recent = append(l.recent, line)
	if strings.Contains(line, " level=ERROR ") {
		l.errors = append(l.errors, line)
	}
	return len(p), nil
}

func (l *fuzzLog) errorCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errors)
}

func (l *fuzzLog) errorsSince(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors[n:]...)
}

func (l *fuzzLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.recent, "\n")
}
