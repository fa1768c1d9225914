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

// KindCommand starts the data of a replicated command of the layer above
// (it takes no Kafka offsets). Data that is not a batch never starts with a
// zero byte.
const KindCommand byte = 2

// Entry is one Raft entry as the log stores it.
type Entry struct {
	Index uint64
	Term  uint64
	Type  EntryType
	// Data is the raft entry data: a Kafka record batch as it is, or data of
	// the layer above (see IsBatchData).
	Data []byte
}

// IsBatch reports whether the entry carries a Kafka record batch.
func (e *Entry) IsBatch() bool { return IsBatchData(e.Type, e.Data) }

// Batch returns the record batch an IsBatch entry carries.
func (e *Entry) Batch() []byte { return e.Data }

// IsBatchData reports whether raft entry data is a Kafka record batch: a
// normal entry whose data is at least a batch header, starts with a zero
// byte (the top byte of baseOffset: proposers set baseOffset to 0 and no
// log reaches offset 2^56) and has magic 2 at byte 16. Commands and other
// data start with a non-zero byte; the empty entries raft appends have no
// data.
func IsBatchData(t EntryType, data []byte) bool {
	return t == EntryNormal && len(data) >= recordbatch.HeaderSize && data[0] == 0 && data[16] == 2
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
// For a batch entry the CRC covers the batch's first 21 bytes (the fields
// outside Kafka's own CRC, and that CRC); the batch's CRC-32C covers the
// rest, so every byte is checked exactly once. For other entries the frame
// CRC covers all of the data.
const frameHeaderSize = 24

// maxFrameSize bounds a frame; the index stores positions and sizes as
// uint32 and segments are at most 2 GiB.
const maxFrameSize = 1<<31 - 1

// coveredPrefix is how much of a batch entry's data the frame CRC covers.
const coveredPrefix = recordbatch.CRCStart

type frameHeader struct {
	length uint32
	crc    uint32
	index  uint64
	term   uint32
	typ    EntryType
}

func frameCRC(hdr []byte, data []byte) uint32 {
	crc := recordbatch.Checksum(hdr[8:frameHeaderSize])
	if IsBatchData(EntryType(hdr[20]), data) {
		return recordbatch.UpdateChecksum(crc, data[:coveredPrefix])
	}
	return recordbatch.UpdateChecksum(crc, data)
}

// frameWriter builds the frames of one append as a list of buffers for one
// vectored write. Headers, the patched first bytes of each batch and small
// entries go into one reusable buffer; the bulk of a batch is written
// straight from the caller's slice, never copied.
type frameWriter struct {
	small []byte
	parts []framePart
	size  int64
}

// framePart is either small[start:end] or ext.
type framePart struct {
	start, end int
	ext        []byte
}

func (w *frameWriter) reset() {
	w.small, w.parts, w.size = w.small[:0], w.parts[:0], 0
}

func (w *frameWriter) addSmall(b []byte) {
	start := len(w.small)
	w.small = append(w.small, b...)
	w.parts = append(w.parts, framePart{start: start, end: len(w.small)})
}

// add encodes e as a frame. A batch gets baseOffset and
// partitionLeaderEpoch (the term) set in its stored copy, which every
// replica computes the same way from the same log prefix; e.Data itself is
// not modified.
func (w *frameWriter) add(e *Entry, baseOffset int64) {
	start := len(w.small)
	var hdr [frameHeaderSize]byte
	binary.BigEndian.PutUint32(hdr[0:], uint32(frameHeaderSize+len(e.Data)))
	binary.BigEndian.PutUint64(hdr[8:], e.Index)
	binary.BigEndian.PutUint32(hdr[16:], uint32(e.Term))
	hdr[20] = byte(e.Type)
	if IsBatchData(e.Type, e.Data) {
		w.small = append(w.small, hdr[:]...)
		w.small = append(w.small, e.Data[:coveredPrefix]...)
		prefix := w.small[start+frameHeaderSize:]
		recordbatch.SetBaseOffset(prefix, baseOffset)
		recordbatch.SetLeaderEpoch(prefix, int32(e.Term))
		crc := recordbatch.UpdateChecksum(recordbatch.Checksum(hdr[8:]), prefix)
		binary.BigEndian.PutUint32(w.small[start+4:], crc)
		w.parts = append(w.parts, framePart{start: start, end: len(w.small)}, framePart{ext: e.Data[coveredPrefix:]})
	} else {
		w.small = append(w.small, hdr[:]...)
		w.small = append(w.small, e.Data...)
		frame := w.small[start:]
		binary.BigEndian.PutUint32(frame[4:], frameCRC(frame, frame[frameHeaderSize:]))
		w.parts = append(w.parts, framePart{start: start, end: len(w.small)})
	}
	w.size += int64(frameHeaderSize + len(e.Data))
}

// buffers returns the parts in order, for a vectored write.
func (w *frameWriter) buffers() [][]byte {
	out := make([][]byte, 0, len(w.parts))
	for _, p := range w.parts {
		if p.ext != nil {
			if len(p.ext) > 0 {
				out = append(out, p.ext)
			}
			continue
		}
		out = append(out, w.small[p.start:p.end])
	}
	return out
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
