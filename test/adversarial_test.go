package test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/test/harness"
)

// boundEnv is the environment that gives a node the small memory budgets
// of the bound tests.
func boundEnv() []string {
	return []string{
		"CHRONIK_LOG_LEVEL=info", // floods of connections at debug level log a lot
		"CHRONIK_KAFKA_QUEUED_MAX_REQUEST_BYTES=" + strconv.Itoa(boundQueuedRequestBytes),
		"CHRONIK_KAFKA_SOCKET_REQUEST_MAX_BYTES=" + strconv.Itoa(boundSocketMaxBytes),
		"CHRONIK_KAFKA_FETCH_MAX_BYTES=" + strconv.Itoa(boundFetchMaxBytes),
		"CHRONIK_KAFKA_QUEUED_MAX_FETCH_BYTES=" + strconv.Itoa(boundQueuedFetchBytes),
		"CHRONIK_KAFKA_REQUEST_READ_TIMEOUT_MS=" + strconv.Itoa(int(boundReadTimeout/time.Millisecond)),
		"CHRONIK_RAFT_ADVANCED_MAX_UNCOMMITTED_BYTES=" + strconv.Itoa(boundUncommittedBytes),
		"CHRONIK_RAFT_ADVANCED_ENTRY_CACHE_BYTES=" + strconv.Itoa(boundEntryCacheBytes),
	}
}

// clusterMemoryBound is the documented bound of a node of a three-node
// cluster with boundEnv's budgets and that many client connections.
func clusterMemoryBound(connections int) int64 {
	c := config.Default()
	c.Kafka.QueuedMaxRequestBytes = boundQueuedRequestBytes
	c.Kafka.SocketRequestMaxBytes = boundSocketMaxBytes
	c.Kafka.FetchMaxBytes = boundFetchMaxBytes
	c.Kafka.QueuedMaxFetchBytes = boundQueuedFetchBytes
	c.Raft.Advanced.MaxUncommittedBytes = boundUncommittedBytes
	c.Raft.Advanced.EntryCacheBytes = boundEntryCacheBytes
	c.Cluster.Enabled = true
	c.Cluster.Peers.Nodes = []config.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	return c.MemoryBound(connections)
}

// TestAdversarialClient: a hostile client works a three-node cluster over
// while a producer writes to it: every reserved name, illegal names,
// oversized frames (some trickled), an oversized batch, fetches asking for
// 1 GiB, floods of connections and of pipelined requests, and a topic
// deleted and created again while one of its replicas is down. Afterwards
// every node serves, the producer lost nothing it was told was written,
// no record of the deleted topic reappears, and no node's memory passed
// its documented bound.
func TestAdversarialClient(t *testing.T) {
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3, Env: boundEnv()})
	c.Start()
	cl := clusterClient(t, c)
	createTopic(t, cl, "steady", 3, 3)
	createTopic(t, cl, "phoenix", 1, 3)
	produceN(t, cl, "phoenix", 0, "old", 100)
	produceBig(t, c.Node(1))
	w := startWorkload(t, c, "steady", "w", 2*time.Millisecond, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	w.waitAcked(200, 60*time.Second)
	samplers := map[int]*rssSampler{}
	for _, n := range c.Nodes {
		samplers[n.ID] = sampleRSS(t, n)
	}
	target := c.Node(2) // the node the hostile client talks to

	// Names: reserved and illegal ones are refused, never created.
	hostile := franzClient(t, target.Addr())
	for _, name := range []string{"__cluster_metadata", "__consumer_offsets", "__transaction_state"} {
		prod := kmsg.NewPtrProduceRequest()
		prod.Acks, prod.TimeoutMillis = -1, 5000
		prod.Topics = []kmsg.ProduceRequestTopic{{Topic: name, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: oneRecordBatch()}}}}
		wantCode(t, "produce to "+name, request[*kmsg.ProduceResponse](t, hostile, prod).Topics[0].Partitions[0].ErrorCode, kerr.InvalidTopicException)
	}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.TimeoutMillis = 5000
	bad := []string{"__cluster_metadata", "__transaction_state", "../../etc", "a/b", "..", strings.Repeat("z", 250), "steady.x", "nul\x00"}
	for _, name := range bad {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		ct.Topics = append(ct.Topics, rt)
	}
	for i, rt := range request[*kmsg.CreateTopicsResponse](t, hostile, ct).Topics {
		if i == 6 { // steady.x is legal: it was created; steady_x would collide
			continue
		}
		wantCode(t, fmt.Sprintf("create %q", bad[i]), rt.ErrorCode, kerr.InvalidTopicException)
	}
	// A batch above message_max_bytes.
	huge := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Value: make([]byte, 2<<20)}}})
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 5000
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: "steady", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: huge}}}}
	if r := request[*kmsg.ProduceResponse](t, hostile, prod).Topics[0].Partitions[0].ErrorCode; r != kerr.MessageTooLarge.Code && r != kerr.NotLeaderForPartition.Code {
		t.Errorf("an oversized batch: %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(r))
	}

	// Floods, all at once: 100 MiB frames (some trickled), 1 GiB fetches,
	// connections opened and dropped, pipelined requests.
	bigLeader, err := partitionLeader(t, c, "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	frames := startRequestFlood(t, target.Addr(), 20, 2)
	fetches := startFetchFlood(t, c.Node(int(bigLeader)).Addr(), 20, 2)
	var floods sync.WaitGroup
	var floodErr error
	var floodMu sync.Mutex
	fail := func(err error) {
		floodMu.Lock()
		floodErr = errors.Join(floodErr, err)
		floodMu.Unlock()
	}
	floods.Add(2)
	go func() {
		defer floods.Done()
		for i := range 300 {
			kc, err := dialKafka(target.Addr())
			if err != nil {
				fail(fmt.Errorf("connection %d: %w", i, err))
				return
			}
			if _, err := kc.do(kmsg.NewPtrApiVersionsRequest(), 3, 10*time.Second); err != nil {
				fail(fmt.Errorf("ApiVersions on connection %d: %w", i, err))
			}
			kc.c.Close()
		}
	}()
	go func() {
		defer floods.Done()
		if err := pipelineMetadata(target.Addr(), 2000); err != nil {
			fail(err)
		}
	}()

	// Meanwhile the topic is deleted and created again with a replica down.
	c.Node(3).Kill()
	recreateTopic(t, clusterClient(t, c), "phoenix", 1, 3)
	produceN(t, clusterClient(t, c), "phoenix", 0, "new", 30)
	c.Node(3).Start()
	samplers[3] = sampleRSS(t, c.Node(3))

	if err := waitUntil(3*time.Minute, func() error {
		if err := frames.progress(); err != nil {
			return err
		}
		return fetches.progress()
	}); err != nil {
		t.Errorf("floods: %v", err)
	}
	frames.stop()
	fetches.stop()
	floods.Wait()
	if floodErr != nil {
		t.Errorf("the node stopped answering the floods: %v", floodErr)
	}
	t.Logf("FIGURE %s: %s", t.Name(), frames.figure())
	t.Logf("FIGURE %s: %s", t.Name(), fetches.figure())

	// Afterwards: every node serves, and holds what it must.
	for _, n := range c.Nodes {
		if code, body := readyBody(t, n); code != 200 {
			t.Errorf("node %d not ready after the attack: %d %s", n.ID, code, body)
		}
		one := franzClient(t, n.Addr(), kgo.DefaultProduceTopic("steady"))
		if err := one.ProduceSync(harness.Context(t, 30*time.Second), &kgo.Record{Value: []byte("still")}).FirstErr(); err != nil {
			t.Errorf("produce through node %d after the attack: %v", n.ID, err)
		}
		one.Close()
	}
	waitAdminFullISR(t, c, "phoenix", 0)
	recs := consumeAll(t, c, "phoenix", 30)
	for _, r := range recs {
		if !strings.HasPrefix(string(r.Value), "new-") {
			t.Fatalf("a record of the deleted topic reappeared: %q at offset %d", r.Value, r.Offset)
		}
	}
	w.Stop()
	checkExactlyOnce(t, c, "steady", w)
	// Each node's memory stayed under its documented bound. The target
	// node had the most connections open at once: the floods', the
	// probe's and the producer's.
	for id, s := range samplers {
		peak, killed := s.stop()
		bound := clusterMemoryBound(2*floodConnections + 10)
		t.Logf("FIGURE %s: node %d peak RSS %.0f MiB, documented bound %.0f MiB", t.Name(), id, mib(peak), mib(bound))
		if killed || peak > bound {
			t.Errorf("node %d peak RSS %.0f MiB is above its documented bound of %.0f MiB", id, mib(peak), mib(bound))
		}
	}
}

// pipelineMetadata writes n Metadata requests on one connection without
// waiting, then reads the n responses, which must come back in order.
func pipelineMetadata(addr string, n int) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	var frames []byte
	for i := range n {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(9)
		b := []byte{0, 0, 0, 0}
		b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
		b = binary.BigEndian.AppendUint16(b, 9)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		b = binary.BigEndian.AppendUint16(b, 0)
		b = append(b, 0) // flexible header: no tagged fields
		b = req.AppendTo(b)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		frames = append(frames, b...)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Write(frames); errc <- err }()
	r := bufio.NewReader(c)
	for i := range n {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("pipelined Metadata %d: %w", i, err)
		}
		if corr := binary.BigEndian.Uint32(hdr[4:]); corr != uint32(i) {
			return fmt.Errorf("pipelined Metadata %d answered out of order (correlation id %d)", i, corr)
		}
		if _, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint32(hdr[:4]))-4); err != nil {
			return fmt.Errorf("pipelined Metadata %d: %w", i, err)
		}
	}
	return <-errc
}
