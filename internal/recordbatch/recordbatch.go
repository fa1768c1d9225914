// Package recordbatch reads and checks Kafka record batches (magic v2) in
// place. Chronik stores and serves the bytes a producer sent; the only fields it
// ever rewrites are the two outside the CRC: baseOffset and
// partitionLeaderEpoch.
//
// Layout of a v2 batch (big-endian), from Kafka's DefaultRecordBatch:
//
//	0  baseOffset           int64
//	8  batchLength          int32  bytes that follow this field
//	12 partitionLeaderEpoch int32
//	16 magic                int8   = 2
//	17 crc                  uint32 CRC-32C of bytes 21..end
//	21 attributes           int16
//	23 lastOffsetDelta      int32
//	27 baseTimestamp        int64
//	35 maxTimestamp         int64
//	43 producerId           int64
//	51 producerEpoch        int16
//	53 baseSequence         int32
//	57 recordCount          int32
//	61 records...
package recordbatch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of the fixed part of a v2 batch.
const HeaderSize = 61

// CRCStart is where the CRC-covered part of a batch begins; bytes before it
// (baseOffset, batchLength, partitionLeaderEpoch, magic, crc) are not covered.
const CRCStart = 21

// lengthFieldEnd is the offset after baseOffset and batchLength: batchLength
// counts the bytes from here to the end.
const lengthFieldEnd = 12

const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57
)

// Attribute bits.
const (
	CompressionMask    = 0x07
	TimestampLogAppend = 0x08
	TransactionalFlag  = 0x10
	ControlFlag        = 0x20
)

// Compression codecs as stored in the low attribute bits.
const (
	CompressionNone   = 0
	CompressionGzip   = 1
	CompressionSnappy = 2
	CompressionLZ4    = 3
	CompressionZstd   = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C of b with the Castagnoli table used by Kafka.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// UpdateChecksum extends crc with b.
func UpdateChecksum(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli, b) }

// Header is the decoded fixed part of a batch.
type Header struct {
	BaseOffset      int64
	Length          int32 // bytes after the length field
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// Compression returns the codec in the attributes.
func (h *Header) Compression() int { return int(h.Attributes & CompressionMask) }

// IsTransactional reports the transactional attribute bit.
func (h *Header) IsTransactional() bool { return h.Attributes&TransactionalFlag != 0 }

// IsControl reports the control attribute bit.
func (h *Header) IsControl() bool { return h.Attributes&ControlFlag != 0 }

// LastOffset is the offset of the last record slot of the batch.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset following the batch.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Size is the full size of the batch in bytes.
func (h *Header) Size() int { return int(h.Length) + lengthFieldEnd }

// LastSequence is the sequence number of the last record, wrapping at int32.
func (h *Header) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return h.BaseSequence
	}
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

// CorruptError describes why a batch was refused. The broker maps it to
// CORRUPT_MESSAGE.
type CorruptError struct {
	Reason string
}

func (e *CorruptError) Error() string { return "corrupt record batch: " + e.Reason }

func corrupt(format string, args ...any) error {
	return &CorruptError{Reason: fmt.Sprintf(format, args...)}
}

// ParseHeader decodes the fixed part of the batch at the start of b without
// checking the CRC. It checks only that the header is present and that the
// magic byte is 2.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, corrupt("%d bytes is shorter than a batch header (%d)", len(b), HeaderSize)
	}
	h := Header{
		BaseOffset:      int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:          int32(binary.BigEndian.Uint32(b[offLength:])),
		LeaderEpoch:     int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:      int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:   int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		RecordCount:     int32(binary.BigEndian.Uint32(b[offRecordCount:])),
	}
	if h.Magic != 2 {
		return h, corrupt("magic %d is not supported (only 2)", h.Magic)
	}
	return h, nil
}

// Validate checks that b holds exactly one well-formed v2 batch: its length
// field matches len(b), the magic is 2, the CRC-32C matches, the codec is
// known, and the record count and offset delta agree. It returns the header.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Length < HeaderSize-lengthFieldEnd {
		return h, corrupt("batch length %d is shorter than the header", h.Length)
	}
	if h.Size() != len(b) {
		return h, corrupt("batch length field says %d bytes, got %d", h.Size(), len(b))
	}
	if got := Checksum(b[CRCStart:]); got != h.CRC {
		return h, corrupt("CRC-32C mismatch: batch says %08x, computed %08x", h.CRC, got)
	}
	if c := h.Compression(); c > CompressionZstd {
		return h, corrupt("unknown compression codec %d", c)
	}
	if h.LastOffsetDelta < 0 {
		return h, corrupt("negative lastOffsetDelta %d", h.LastOffsetDelta)
	}
	if h.RecordCount < 0 || int64(h.RecordCount) > int64(h.LastOffsetDelta)+1 {
		return h, corrupt("record count %d does not fit lastOffsetDelta %d", h.RecordCount, h.LastOffsetDelta)
	}
	return h, nil
}

// ValidateProduced applies Validate and the stricter rules for a batch that a
// producer sends: at least one record, consecutive offset deltas, and no
// control batches (those are written by the broker only).
func ValidateProduced(b []byte) (Header, error) {
	h, err := Validate(b)
	if err != nil {
		return h, err
	}
	if h.RecordCount == 0 {
		return h, corrupt("batch has no records")
	}
	if h.LastOffsetDelta != h.RecordCount-1 {
		return h, corrupt("lastOffsetDelta %d does not match record count %d", h.LastOffsetDelta, h.RecordCount)
	}
	if h.IsControl() {
		return h, corrupt("producers may not send control batches")
	}
	return h, nil
}

// SetBaseOffset rewrites the baseOffset field in place. It is outside the CRC.
func SetBaseOffset(b []byte, offset int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(offset))
}

// SetLeaderEpoch rewrites the partitionLeaderEpoch field in place. It is
// outside the CRC.
func SetLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// BaseOffset reads the baseOffset field of the batch at the start of b.
func BaseOffset(b []byte) int64 { return int64(binary.BigEndian.Uint64(b[offBaseOffset:])) }

// Size reads the length field of the batch at the start of b and returns the
// whole batch size, or -1 if b is too short to hold the field.
func Size(b []byte) int {
	if len(b) < lengthFieldEnd {
		return -1
	}
	return int(int32(binary.BigEndian.Uint32(b[offLength:]))) + lengthFieldEnd
}

// SetLogAppendTime marks the batch at the start of b as stamped with the
// broker's append time ts: the timestamp type attribute is set and ts
// becomes the max timestamp, which readers then take as every record's
// timestamp (Kafka's LogAppendTime). The CRC is recomputed.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:])
	binary.BigEndian.PutUint16(b[offAttributes:], attrs|TimestampLogAppend)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], Checksum(b[CRCStart:Size(b)]))
}
