package recordbatch

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one record to encode into a batch, or one decoded from it.
type Record struct {
	Offset    int64 // absolute offset once decoded; ignored when building
	Timestamp int64 // milliseconds since the epoch
	Key       []byte
	Value     []byte
	Headers   []kmsg.Header
}

// Batch describes an uncompressed batch for Build. The broker builds its own
// batches for internal topics (group offsets) and tests build them for
// storage; producers' batches are never rebuilt.
type Batch struct {
	BaseOffset    int64
	LeaderEpoch   int32
	Attributes    int16 // compression bits must be zero
	ProducerID    int64 // -1 when not idempotent
	ProducerEpoch int16
	BaseSequence  int32
	Records       []Record
}

// Build encodes b as a v2 batch with a valid CRC. Records are encoded with
// franz-go's kmsg codecs; only the framing arithmetic is done here.
func Build(b Batch) []byte {
	if len(b.Records) == 0 {
		panic("recordbatch: Build needs at least one record")
	}
	firstTS, maxTS := b.Records[0].Timestamp, b.Records[0].Timestamp
	for _, r := range b.Records {
		maxTS = max(maxTS, r.Timestamp)
	}
	var records []byte
	var body []byte
	for i, r := range b.Records {
		kr := kmsg.Record{
			TimestampDelta64: r.Timestamp - firstTS,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
			Headers:          r.Headers,
		}
		// Encode with a zero length (one varint byte), then frame the body
		// with its real length.
		body = kr.AppendTo(body[:0])[1:]
		records = binary.AppendVarint(records, int64(len(body)))
		records = append(records, body...)
	}
	kb := kmsg.RecordBatch{
		FirstOffset:          b.BaseOffset,
		Length:               int32(HeaderSize - lengthFieldEnd + len(records)),
		PartitionLeaderEpoch: b.LeaderEpoch,
		Magic:                2,
		Attributes:           b.Attributes &^ CompressionMask,
		LastOffsetDelta:      int32(len(b.Records) - 1),
		FirstTimestamp:       firstTS,
		MaxTimestamp:         maxTS,
		ProducerID:           b.ProducerID,
		ProducerEpoch:        b.ProducerEpoch,
		FirstSequence:        b.BaseSequence,
		NumRecords:           int32(len(b.Records)),
		Records:              records,
	}
	out := kb.AppendTo(make([]byte, 0, HeaderSize+len(records)))
	binary.BigEndian.PutUint32(out[offCRC:], Checksum(out[CRCStart:]))
	return out
}

func decodeRecords(h Header, src []byte) ([]Record, error) {
	// Every record takes at least 7 bytes, which bounds the allocation for
	// a batch that lies about its count.
	out := make([]Record, 0, min(max(int(h.RecordCount), 0), len(src)/7+1))
	for i := int32(0); i < h.RecordCount; i++ {
		n, w := binary.Varint(src)
		if w <= 0 || n < 0 || int64(len(src)-w) < n {
			return nil, corrupt("record %d: bad length", i)
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(src[:w+int(n)]); err != nil {
			return nil, corrupt("record %d: %v", i, err)
		}
		src = src[w+int(n):]
		out = append(out, Record{
			Offset:    h.BaseOffset + int64(kr.OffsetDelta),
			Timestamp: h.BaseTimestamp + kr.TimestampDelta64,
			Key:       kr.Key,
			Value:     kr.Value,
			Headers:   kr.Headers,
		})
	}
	if len(src) != 0 {
		return nil, corrupt("%d bytes after the last record", len(src))
	}
	return out, nil
}
