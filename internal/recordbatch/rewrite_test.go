package recordbatch

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func rewriteSample() []byte {
	b := Batch{BaseOffset: 100, LeaderEpoch: 3, ProducerID: 7, ProducerEpoch: 1, BaseSequence: 40}
	for i := range 6 {
		r := Record{Timestamp: 1_000 + int64(i)*10, Key: fmt.Appendf(nil, "k%d", i%3), Value: fmt.Appendf(nil, "v%d", i)}
		switch i {
		case 2:
			r.Value = nil // tombstone
		case 4:
			r.Key = nil
		case 5:
			r.Headers = []kmsg.Header{{Key: "h", Value: []byte("x")}}
		}
		b.Records = append(b.Records, r)
	}
	return Build(b)
}

// TestOpenRebuildRecompress: a rebuilt batch holds exactly the kept
// records, each with its offset, timestamp, key, value and headers, and the
// header fields offsets and producer state depend on; a delete horizon
// moves the base timestamp without changing a record's timestamp; every
// codec round-trips.
func TestOpenRebuildRecompress(t *testing.T) {
	batch := rewriteSample()
	all, err := RecordsOf(batch)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Open(batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range o.Records {
		w := all[i]
		if r.Offset != w.Offset || r.Timestamp != w.Timestamp || string(r.Key) != string(w.Key) || (r.Key == nil) != (w.Key == nil) || r.Tombstone != (w.Value == nil) {
			t.Fatalf("record %d opened as %+v, want %+v", i, r, w)
		}
	}
	keep := []bool{false, true, true, false, true, true}
	for _, horizon := range []int64{-1, 5_000} {
		out, err := o.Rebuild(keep, horizon)
		if err != nil {
			t.Fatal(err)
		}
		h, err := Validate(out)
		if err != nil {
			t.Fatal(err)
		}
		if h.BaseOffset != 100 || h.LastOffsetDelta != 5 || h.MaxTimestamp != 1_050 || h.ProducerID != 7 || h.BaseSequence != 40 ||
			h.LeaderEpoch != 3 || h.RecordCount != 4 || h.HasDeleteHorizon() != (horizon >= 0) || (horizon >= 0 && h.BaseTimestamp != horizon) {
			t.Fatalf("horizon %d: rebuilt header %+v", horizon, h)
		}
		got, err := RecordsOf(out)
		if err != nil {
			t.Fatal(err)
		}
		var want []Record
		for i, k := range keep {
			if k {
				want = append(want, all[i])
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("horizon %d: rebuilt records\n%+v\nwant\n%+v", horizon, got, want)
		}
	}
	empty, err := o.Rebuild(make([]bool, 6), -1)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := Validate(empty); err != nil || h.RecordCount != 0 || h.LastOffsetDelta != 5 || len(empty) != HeaderSize {
		t.Fatalf("emptied batch: %+v %v (%d bytes)", h, err, len(empty))
	}
	for _, codec := range []int{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd, CompressionNone} {
		out, err := Recompress(batch, codec)
		if err != nil {
			t.Fatal(err)
		}
		h, err := Validate(out)
		if err != nil || h.Compression() != codec {
			t.Fatalf("codec %d: %+v %v", codec, h, err)
		}
		got, err := RecordsOf(out)
		if err != nil || !reflect.DeepEqual(got, all) {
			t.Fatalf("codec %d: records %+v (%v), want %+v", codec, got, err, all)
		}
	}
}
