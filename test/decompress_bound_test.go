package test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/test/harness"
)

// TestMemoryBoundUnderDecompressionFlood: 50 connections produce
// compression bombs to a compacted topic, whose records the node must
// read to check their keys: half send zstd batches of 3 KB holding one
// record of 100 MiB of zeros (the node must take them, one at a time
// within its decompression budget), half gzip batches of 200 KB expanding
// to 200 MiB, more than the budget holds (refused with
// MESSAGE_TOO_LARGE without being decompressed). Decompressed all at once
// they would take 2.5 GiB; the node stays under its documented bound and
// answers a well-behaved client throughout.
func TestMemoryBoundUnderDecompressionFlood(t *testing.T) {
	n := boundNode(t)
	seed := seedSteady(t, n)
	ctx := harness.Context(t, time.Minute)
	res, err := kadm.NewClient(seed).CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "bombs")
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("create the compacted topic: %v", err)
	}
	taken := bomb(t, 100<<20, recordbatch.CompressionZstd)
	refused := bomb(t, 200<<20, recordbatch.CompressionGzip)
	t.Logf("FIGURE decompression flood: a %d-byte zstd batch of 100 MiB, a %d-byte gzip batch of 200 MiB", len(taken), len(refused))
	var df *decompressFlood
	underFlood(t, n, seed, "decompression flood", func() []floodWaiter {
		df = startDecompressFlood(t, n.Addr(), floodConnections, 3, taken, refused)
		return []floodWaiter{df}
	})
	if w := metricValue(n, `chronik_kafka_memory_waits_total{budget="decompress"}`); w <= 0 {
		t.Error("no batch waited for the decompression budget: the flood did not meet back-pressure")
	}
	m := `chronik_kafka_memory_reserved_bytes{budget="decompress"}`
	harness.WaitFor(t, m+" to return to 0", 30*time.Second, func() error {
		if v := metricValue(n, m); v != 0 {
			return fmt.Errorf("%s = %v", m, v)
		}
		return nil
	})
	// The batches taken are in the log, each record whole.
	end, err := kadm.NewClient(seed).ListEndOffsets(ctx, "bombs")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup("bombs", 0); o.Offset != df.taken.Load() {
		t.Errorf("the compacted topic ends at %d, want the %d batches taken", o.Offset, df.taken.Load())
	}
}

// bomb is a batch of one record, key "k" and a value of size zeros,
// compressed with codec.
func bomb(t *testing.T, size int, codec int) []byte {
	t.Helper()
	o, err := recordbatch.Open(recordbatch.Build(recordbatch.Batch{ProducerID: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Key: []byte("k"), Value: make([]byte, size)}}}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := o.Recompress(codec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decompressFlood: connections that each produce their batch rounds
// times, the first half taken, the second refused.
type decompressFlood struct {
	floodConns
	conns, rounds   int
	taken, refusals atomic.Int64
}

func startDecompressFlood(t *testing.T, addr string, conns, rounds int, taken, refused []byte) *decompressFlood {
	t.Helper()
	f := &decompressFlood{floodConns: floodConns{quit: make(chan struct{})}, conns: conns, rounds: rounds}
	for i := range conns {
		k, err := dialKafka(addr)
		if err != nil {
			t.Fatal(err)
		}
		batch, want := taken, int16(0)
		if i >= conns/2 {
			batch, want = refused, kerr.MessageTooLarge.Code
		}
		f.run(k.c, func() {
			for range rounds {
				req := kmsg.NewPtrProduceRequest()
				req.Acks, req.TimeoutMillis = 1, 120_000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = "bombs"
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Records = batch
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				resp, err := k.do(req, 9, 3*time.Minute)
				if err != nil {
					f.fail(fmt.Errorf("connection %d: %w", i, err))
					return
				}
				if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != want {
					f.fail(fmt.Errorf("connection %d: produce answered %v, want %v", i, kerr.ErrorForCode(code), kerr.ErrorForCode(want)))
					return
				}
				if want == 0 {
					f.taken.Add(1)
				} else {
					f.refusals.Add(1)
				}
			}
		})
	}
	return f
}

func (f *decompressFlood) progress() error {
	if err := f.first(); err != nil {
		return err
	}
	if done, all := f.taken.Load()+f.refusals.Load(), int64(f.conns*f.rounds); done < all {
		return fmt.Errorf("%d of %d bombs answered", done, all)
	}
	return nil
}

func (f *decompressFlood) figure() string {
	return fmt.Sprintf("%d connections x %d bombs: %d taken, %d refused with MESSAGE_TOO_LARGE", f.conns, f.rounds, f.taken.Load(), f.refusals.Load())
}
