package replica

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// TestActiveProducers: the leader lists each idempotent producer once, by
// id, with its current epoch, the sequence of its last record and the
// newest timestamp of its last batch; followers refuse.
func TestActiveProducers(t *testing.T) {
	c := newCluster(t, testConfig(), Settings{})
	p := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := p.ActiveProducers(ctx); err != nil || len(got) != 0 {
		t.Fatalf("before any produce: %+v, %v", got, err)
	}
	ts := time.Now().UnixMilli()
	stamped := func(pid int64, epoch int16, seq int32, n int) []byte {
		b := recordbatch.Batch{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}
		for i := range n {
			b.Records = append(b.Records, recordbatch.Record{Timestamp: ts + int64(seq) + int64(i), Value: []byte("v")})
		}
		return recordbatch.Build(b)
	}
	for _, b := range [][]byte{
		stamped(9, 0, 0, 3), stamped(9, 0, 3, 2), // last sequence 4
		stamped(4, 0, 0, 1), stamped(4, 1, 0, 2), // a new epoch starts again at 0
		batch(-1, -1, -1, 2), // not idempotent: not a producer
	} {
		if r := produce(p, b, -1); r.Err != nil {
			t.Fatalf("produce: %v", r.Err)
		}
	}
	got, err := p.ActiveProducers(ctx)
	want := []ProducerInfo{
		{ID: 4, Epoch: 1, LastSequence: 1, LastTimestamp: ts + 1},
		{ID: 9, Epoch: 0, LastSequence: 4, LastTimestamp: ts + 4},
	}
	if err != nil || len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("active producers: %+v, %v; want %+v", got, err, want)
	}
	for id, f := range c.parts {
		if f == p {
			continue
		}
		if _, err := f.ActiveProducers(ctx); !errors.Is(err, kerr.NotLeaderForPartition) {
			t.Fatalf("follower %d: %v, want NOT_LEADER_OR_FOLLOWER", id, err)
		}
	}
}
