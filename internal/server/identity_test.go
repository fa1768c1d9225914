package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// TestRecreatedTopicReadyWhenCreated deletes a topic and creates it again,
// over and over, each time writing to it as soon as CreateTopics answers:
// the write must succeed at once, and a read must return that record and
// no record of an earlier generation: whatever the old topic's replica is
// doing when the new topic appears, it never answers for the new one.
func TestRecreatedTopicReadyWhenCreated(t *testing.T) {
	fz, err := startFuzzNode(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fz.close()
	const topic = "reborn"
	for gen := range 15 {
		if gen > 0 {
			del := kmsg.NewPtrDeleteTopicsRequest()
			del.TimeoutMillis = 10000
			del.TopicNames = []string{topic}
			del.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr(topic)}}
			r, err := fz.conn.roundTrip(del, 6)
			if err != nil {
				t.Fatal(err)
			}
			if ec := r.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; ec != 0 {
				t.Fatalf("delete: %v", kerr.ErrorForCode(ec))
			}
		}
		ct := kmsg.NewPtrCreateTopicsRequest()
		ct.TimeoutMillis = 10000
		ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}
		r, err := fz.conn.roundTrip(ct, 7)
		if err != nil {
			t.Fatal(err)
		}
		if ec := r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; ec != 0 {
			t.Fatalf("generation %d: create: %v", gen, kerr.ErrorForCode(ec))
		}
		value := fmt.Sprintf("gen-%d", gen)
		batch := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Records: []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte(value)}}})
		prod := kmsg.NewPtrProduceRequest()
		prod.Acks, prod.TimeoutMillis = -1, 5000
		prod.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch}}}}
		pr, err := fz.conn.roundTrip(prod, 9)
		if err != nil {
			t.Fatal(err)
		}
		if p := pr.(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("generation %d: the write right after CreateTopics answered: %v at offset %d", gen, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
		}
		fetch := kmsg.NewPtrFetchRequest()
		fetch.MaxWaitMillis, fetch.MaxBytes = 0, 1<<20
		fetch.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{
			{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
		fr, err := fz.conn.roundTrip(fetch, 12)
		if err != nil {
			t.Fatal(err)
		}
		p := fr.(*kmsg.FetchResponse).Topics[0].Partitions[0]
		recs, err := recordbatch.RecordsOf(p.RecordBatches)
		if err != nil || len(recs) != 1 || string(recs[0].Value) != value {
			t.Fatalf("generation %d: read %d records (%v, error %v), want only %q", gen, len(recs), err, kerr.ErrorForCode(p.ErrorCode), value)
		}
	}
}
