package recordbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteHorizonFlag marks a batch whose baseTimestamp holds the time after
// which the log cleaner may remove its tombstones (Kafka's KIP-534). Record
// timestamps stay right: their deltas are taken from that base.
const DeleteHorizonFlag = 0x40

// HasDeleteHorizon reports whether the batch carries a delete horizon.
func (h *Header) HasDeleteHorizon() bool { return h.Attributes&DeleteHorizonFlag != 0 }

// Opened is a batch decoded for rewriting by the log cleaner.
type Opened struct {
	Header  Header
	Records []OpenedRecord
}

// OpenedRecord is one record of an Opened batch.
type OpenedRecord struct {
	Offset    int64
	Timestamp int64
	// Key is nil for a record without a key; Tombstone is set when the
	// value is null.
	Key       []byte
	Tombstone bool
	// raw is the record as encoded in the batch, length prefix included.
	raw []byte
	rec kmsg.Record
}

// Open decompresses and decodes every record of a batch.
func Open(batch []byte) (*Opened, error) {
	h, err := Validate(batch)
	if err != nil {
		return nil, err
	}
	raw, err := Decompress(h.Compression(), batch[HeaderSize:])
	if err != nil {
		return nil, corrupt("decompressing: %v", err)
	}
	o := &Opened{Header: h, Records: make([]OpenedRecord, 0, min(max(int(h.RecordCount), 0), len(raw)/7+1))}
	src := raw
	for i := int32(0); i < h.RecordCount; i++ {
		n, w := binary.Varint(src)
		if w <= 0 || n < 0 || int64(len(src)-w) < n {
			return nil, corrupt("record %d: bad length", i)
		}
		r := OpenedRecord{raw: src[:w+int(n)]}
		if err := r.rec.ReadFrom(r.raw); err != nil {
			return nil, corrupt("record %d: %v", i, err)
		}
		src = src[w+int(n):]
		r.Offset = h.BaseOffset + int64(r.rec.OffsetDelta)
		r.Timestamp = h.BaseTimestamp + r.rec.TimestampDelta64
		r.Key, r.Tombstone = r.rec.Key, r.rec.Value == nil
		o.Records = append(o.Records, r)
	}
	if len(src) != 0 {
		return nil, corrupt("%d bytes after the last record", len(src))
	}
	return o, nil
}

// Rebuild encodes the batch with only the records keep marks, keeping every
// header field that offsets, producer state and timestamps depend on: base
// offset, last offset delta, max timestamp, leader epoch, producer id,
// epoch and base sequence, and the codec. A horizon >= 0 sets the delete
// horizon flag with that time as the base timestamp (a batch that already
// has one keeps it). A batch left with no record is written uncompressed
// and empty, as Kafka's cleaner does, so that its offsets and its producer's
// sequence stay known.
func (o *Opened) Rebuild(keep []bool, horizon int64) ([]byte, error) {
	return o.rebuild(keep, horizon, o.Header.Compression())
}

// Recompress re-encodes every record of a batch with codec (a topic whose
// compression.type names one), keeping every other header field.
func Recompress(batch []byte, codec int) ([]byte, error) {
	o, err := Open(batch)
	if err != nil {
		return nil, err
	}
	keep := make([]bool, len(o.Records))
	for i := range keep {
		keep[i] = true
	}
	return o.rebuild(keep, -1, codec)
}

func (o *Opened) rebuild(keep []bool, horizon int64, codec int) ([]byte, error) {
	h := o.Header
	base := h.BaseTimestamp
	attrs := h.Attributes
	if horizon >= 0 && !h.HasDeleteHorizon() {
		base = horizon
		attrs |= DeleteHorizonFlag
	}
	var body []byte
	var count int32
	for i := range o.Records {
		if !keep[i] {
			continue
		}
		count++
		r := &o.Records[i]
		if base == h.BaseTimestamp {
			body = append(body, r.raw...)
			continue
		}
		rec := r.rec
		rec.Length = 0 // encoded as a one byte varint, cut, then reframed
		rec.TimestampDelta64 = r.Timestamp - base
		enc := rec.AppendTo(nil)[1:]
		body = binary.AppendVarint(body, int64(len(enc)))
		body = append(body, enc...)
	}
	if count == 0 {
		codec = CompressionNone
	}
	attrs = attrs&^CompressionMask | int16(codec)
	payload, err := Compress(codec, body)
	if err != nil {
		return nil, err
	}
	out := make([]byte, HeaderSize, HeaderSize+len(payload))
	binary.BigEndian.PutUint64(out[offBaseOffset:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(out[offLength:], uint32(HeaderSize-lengthFieldEnd+len(payload)))
	binary.BigEndian.PutUint32(out[offLeaderEpoch:], uint32(h.LeaderEpoch))
	out[offMagic] = 2
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(out[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(out[offBaseTimestamp:], uint64(base))
	binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(out[offProducerID:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(out[offProducerEpoch:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(out[offBaseSequence:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(out[offRecordCount:], uint32(count))
	out = append(out, payload...)
	binary.BigEndian.PutUint32(out[offCRC:], Checksum(out[CRCStart:]))
	return out, nil
}

// zstdEncoder is safe for concurrent EncodeAll calls and never changes once
// built.
var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

// Compress encodes record bytes with a batch codec. Snappy is written in
// snappy-java's framing, which every client reads.
func Compress(codec int, src []byte) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return src, nil
	case CompressionGzip:
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return b.Bytes(), nil
	case CompressionSnappy:
		return encodeXerial(src), nil
	case CompressionLZ4:
		var b bytes.Buffer
		w := lz4.NewWriter(&b)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return b.Bytes(), nil
	case CompressionZstd:
		return zstdEncoder.EncodeAll(src, nil), nil
	default:
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
}

// xerialBlock is the uncompressed size of one chunk, as snappy-java uses.
const xerialBlock = 32 << 10

// encodeXerial writes snappy-java's framing: magic, version 1, compatible
// version 1, then (int32 length, snappy block) chunks.
func encodeXerial(src []byte) []byte {
	out := append([]byte(nil), xerialHeader...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(src) > 0 {
		n := min(len(src), xerialBlock)
		block := snappy.Encode(nil, src[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		src = src[n:]
	}
	return out
}
