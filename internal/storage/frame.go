package storage

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// EntryType mirrors raftpb.EntryType so the storage layer need not import
// raft: 0 normal, 1 configuration change, 2 configuration change v2.
type EntryType uint8

// Entry types.
const (
	EntryNormal       EntryType = 0
	EntryConfChange   EntryType = 1
	EntryConfChangeV2 EntryType = 2
)

// Data kinds: the first byte of a normal entry's data.
const (
	// KindBatch marks data that is one Kafka record batch after the kind byte.
	KindBatch byte = 1
	// KindCommand marks data that is a replicated command of the layer above
	// (it takes no Kafka offsets).
	KindCommand byte = 2
)

// Entry is one Raft entry as the log stores it.
type Entry struct {
	Index uint64
	Term  uint64
	Type  EntryType
	// Data is the raft entry data. For a Kafka batch it is KindBatch followed
	// by the batch bytes.
	Data []byte
}

// IsBatch reports whether the entry carries a Kafka record batch.
func (e *Entry) IsBatch() bool { return isBatch(e.Type, e.Data) }

// Batch returns the record batch an IsBatch entry carries.
func (e *Entry) Batch() []byte { return e.Data[1:] }

func isBatch(t EntryType, data []byte) bool {
	return t == EntryNormal && len(data) > 0 && data[0] == KindBatch
}

// BatchEntryData returns raft entry data for a record batch: the kind byte
// followed by the batch.
func BatchEntryData(batch []byte) []byte {
	d := make([]byte, 1+len(batch))
	d[0] = KindBatch
	copy(d[1:], batch)
	return d
}

// maxTerm is the largest term the log accepts: the term is written into the
// batch's int32 partitionLeaderEpoch.
const maxTerm = math.MaxInt32

// Frame layout (big-endian):
//
//	0  uint32 frame length, header included
//	4  uint32 CRC-32C of bytes 8..24 and of the covered prefix of the data
//	8  uint64 raft index
//	16 uint32 raft term
//	20 uint8  entry type
//	21 [3]    zero
//	24 data
//
// For a batch entry the CRC covers the kind byte and the batch's first 21
// bytes (the fields outside Kafka's own CRC, and that CRC); the batch's
// CRC-32C covers the rest, so every byte is checked exactly once. For other
// entries the frame CRC covers all of the data.
const frameHeaderSize = 24

// maxFrameSize bounds a frame; the index stores positions and sizes as
// uint32 and segments are at most 2 GiB.
const maxFrameSize = 1<<31 - 1

// coveredPrefix is how much of a batch entry's data the frame CRC covers.
const coveredPrefix = 1 + recordbatch.CRCStart

type frameHeader struct {
	length uint32
	crc    uint32
	index  uint64
	term   uint32
	typ    EntryType
}

func frameCRC(hdr []byte, data []byte) uint32 {
	crc := recordbatch.Checksum(hdr[8:frameHeaderSize])
	if isBatch(EntryType(hdr[20]), data) {
		return recordbatch.UpdateChecksum(crc, data[:min(len(data), coveredPrefix)])
	}
	return recordbatch.UpdateChecksum(crc, data)
}

// appendFrame encodes e as a frame at the end of dst. A batch entry's copy
// gets baseOffset and partitionLeaderEpoch (the term) set, which every
// replica computes the same way from the same log prefix.
func appendFrame(dst []byte, e *Entry, baseOffset int64) []byte {
	start := len(dst)
	var hdr [frameHeaderSize]byte
	binary.BigEndian.PutUint32(hdr[0:], uint32(frameHeaderSize+len(e.Data)))
	binary.BigEndian.PutUint64(hdr[8:], e.Index)
	binary.BigEndian.PutUint32(hdr[16:], uint32(e.Term))
	hdr[20] = byte(e.Type)
	dst = append(dst, hdr[:]...)
	dst = append(dst, e.Data...)
	frame := dst[start:]
	data := frame[frameHeaderSize:]
	if isBatch(e.Type, data) {
		recordbatch.SetBaseOffset(data[1:], baseOffset)
		recordbatch.SetLeaderEpoch(data[1:], int32(e.Term))
	}
	binary.BigEndian.PutUint32(frame[4:], frameCRC(frame, data))
	return dst
}

func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		length: binary.BigEndian.Uint32(b[0:]),
		crc:    binary.BigEndian.Uint32(b[4:]),
		index:  binary.BigEndian.Uint64(b[8:]),
		term:   binary.BigEndian.Uint32(b[16:]),
		typ:    EntryType(b[20]),
	}
}

// decodeFrame checks the frame in b (exactly one frame) and returns its
// entry; the entry's Data aliases b. It verifies both the frame CRC and, for
// batches, the Kafka batch CRC.
func decodeFrame(b []byte) (Entry, error) {
	if len(b) < frameHeaderSize {
		return Entry{}, fmt.Errorf("frame of %d bytes is shorter than its header", len(b))
	}
	h := parseFrameHeader(b)
	if int(h.length) != len(b) {
		return Entry{}, fmt.Errorf("frame length field %d, expected %d", h.length, len(b))
	}
	if h.typ > EntryConfChangeV2 || b[21]|b[22]|b[23] != 0 {
		return Entry{}, fmt.Errorf("frame header has unknown type %d or flags", h.typ)
	}
	data := b[frameHeaderSize:]
	if got := frameCRC(b, data); got != h.crc {
		return Entry{}, fmt.Errorf("frame CRC mismatch: stored %08x, computed %08x", h.crc, got)
	}
	e := Entry{Index: h.index, Term: uint64(h.term), Type: h.typ, Data: data}
	if e.IsBatch() {
		if _, err := recordbatch.Validate(e.Batch()); err != nil {
			return Entry{}, err
		}
	}
	return e, nil
}
