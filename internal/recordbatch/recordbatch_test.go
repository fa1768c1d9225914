package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func sampleBatch(n int) []byte {
	b := Batch{ProducerID: 7, ProducerEpoch: 1, BaseSequence: 10}
	for i := range n {
		b.Records = append(b.Records, Record{
			Timestamp: 1000 + int64(i),
			Key:       fmt.Appendf(nil, "k%d", i),
			Value:     fmt.Appendf(nil, "value-%d", i),
			Headers:   []kmsg.Header{{Key: "h", Value: []byte{byte(i)}}},
		})
	}
	return Build(b)
}

func TestBuildValidateRoundTrip(t *testing.T) {
	raw := sampleBatch(5)
	h, err := ValidateProduced(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h.RecordCount != 5 || h.LastOffsetDelta != 4 || h.ProducerID != 7 || h.BaseSequence != 10 {
		t.Fatalf("header = %+v", h)
	}
	if h.MaxTimestamp != 1004 || h.BaseTimestamp != 1000 {
		t.Fatalf("timestamps = %d %d", h.BaseTimestamp, h.MaxTimestamp)
	}
	if h.LastSequence() != 14 {
		t.Fatalf("last sequence = %d", h.LastSequence())
	}
	SetBaseOffset(raw, 100)
	SetLeaderEpoch(raw, 3)
	if _, err := Validate(raw); err != nil {
		t.Fatalf("rewriting fields outside the CRC broke the batch: %v", err)
	}
	recs, err := RecordsOf(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("got %d records", len(recs))
	}
	for i, r := range recs {
		if r.Offset != 100+int64(i) || string(r.Key) != fmt.Sprintf("k%d", i) ||
			string(r.Value) != fmt.Sprintf("value-%d", i) || r.Timestamp != 1000+int64(i) ||
			len(r.Headers) != 1 || r.Headers[0].Value[0] != byte(i) {
			t.Fatalf("record %d = %+v", i, r)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	good := sampleBatch(3)
	cases := []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:HeaderSize-1] }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"trailing", func(b []byte) []byte { return append(b, 0) }},
		{"magic", func(b []byte) []byte { b[offMagic] = 1; return b }},
		{"crc", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"length", func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLength:], 5); return b }},
		{"codec", func(b []byte) []byte { b[offAttributes+1] |= 7; return refreshCRC(b) }},
		{"count", func(b []byte) []byte { binary.BigEndian.PutUint32(b[offRecordCount:], 9); return refreshCRC(b) }},
		{"negative delta", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
			return refreshCRC(b)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(bytes.Clone(good))
			_, err := Validate(b)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate = %v, want a CorruptError", err)
			}
		})
	}
}

func TestValidateProducedRejectsControlAndGaps(t *testing.T) {
	b := sampleBatch(2)
	b[offAttributes+1] |= ControlFlag
	refreshCRC(b)
	if _, err := Validate(b); err != nil {
		t.Fatalf("a control batch is a valid batch: %v", err)
	}
	if _, err := ValidateProduced(b); err == nil {
		t.Fatal("a producer's control batch was accepted")
	}
}

func refreshCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offCRC:], Checksum(b[CRCStart:]))
	return b
}

// compressed rebuilds raw with its records compressed by codec.
func compressed(t *testing.T, raw []byte, codec int) []byte {
	t.Helper()
	records := raw[HeaderSize:]
	var out []byte
	switch codec {
	case CompressionGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(records)
		w.Close()
		out = buf.Bytes()
	case CompressionSnappy:
		out = snappy.Encode(nil, records)
	case CompressionLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		w.Write(records)
		w.Close()
		out = buf.Bytes()
	case CompressionZstd:
		enc, _ := zstd.NewWriter(nil)
		out = enc.EncodeAll(records, nil)
	}
	b := append(bytes.Clone(raw[:HeaderSize]), out...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-lengthFieldEnd))
	b[offAttributes+1] |= byte(codec)
	return refreshCRC(b)
}

func xerial(records []byte) []byte {
	out := append([]byte{}, xerialHeader...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(records) > 0 {
		n := min(len(records), 7)
		chunk := snappy.Encode(nil, records[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(chunk)))
		out = append(out, chunk...)
		records = records[n:]
	}
	return out
}

func TestRecordsOfCompressed(t *testing.T) {
	raw := sampleBatch(20)
	want, err := RecordsOf(raw)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, b []byte) {
		if _, err := ValidateProduced(b); err != nil {
			t.Fatal(err)
		}
		got, err := RecordsOf(b)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("records differ:\n got %v\nwant %v", got, want)
		}
	}
	for _, codec := range []int{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) { check(t, compressed(t, raw, codec)) })
	}
	t.Run("xerial", func(t *testing.T) {
		b := append(bytes.Clone(raw[:HeaderSize]), xerial(raw[HeaderSize:])...)
		binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-lengthFieldEnd))
		b[offAttributes+1] |= CompressionSnappy
		check(t, refreshCRC(b))
	})
}

func FuzzValidate(f *testing.F) {
	f.Add(sampleBatch(1))
	f.Add(sampleBatch(3))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Validate(b)
		if err != nil {
			return
		}
		// A batch that validates must decode or fail cleanly, never panic,
		// and its size must be exactly its input.
		if h.Size() != len(b) {
			t.Fatalf("validated batch of size %d from %d bytes", h.Size(), len(b))
		}
		_, _ = RecordsOf(b)
	})
}
