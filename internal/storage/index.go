package storage

import (
	"encoding/binary"
	"sort"
)

// Index entry layout (big-endian), one per frame of a segment:
//
//	0  int64  nextOffset    Kafka offset after this entry
//	8  int64  maxTimestamp  running max of batch timestamps in the segment, -1 before the first
//	16 uint32 position      frame position in the segment file
//	20 uint32 size          frame size
//	24 uint32 term          raft term
//	28 uint32 count         Kafka offsets this entry takes (0 for non-batch entries)
//
// The raft index of entry i is the segment's base index plus i, so the index
// answers lookups by raft index, by offset (binary search on nextOffset) and
// by timestamp (binary search on the running max) without touching the
// segment.
const indexEntrySize = 32

// Index file: a 24-byte header (magic, version, zero, base index), then
// entries.
const (
	indexHeaderSize = 24
	indexMagic      = "CHRONIKI"
	indexVersion    = 1
)

type indexEntry struct {
	nextOffset   int64
	maxTimestamp int64
	pos          uint32
	size         uint32
	term         uint32
	count        uint32
}

func (e indexEntry) baseOffset() int64 { return e.nextOffset - int64(e.count) }
func (e indexEntry) end() int64        { return int64(e.pos) + int64(e.size) }

func (e indexEntry) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(e.nextOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(e.maxTimestamp))
	b = binary.BigEndian.AppendUint32(b, e.pos)
	b = binary.BigEndian.AppendUint32(b, e.size)
	b = binary.BigEndian.AppendUint32(b, e.term)
	return binary.BigEndian.AppendUint32(b, e.count)
}

func decodeIndexEntry(b []byte) indexEntry {
	return indexEntry{
		nextOffset:   int64(binary.BigEndian.Uint64(b[0:])),
		maxTimestamp: int64(binary.BigEndian.Uint64(b[8:])),
		pos:          binary.BigEndian.Uint32(b[16:]),
		size:         binary.BigEndian.Uint32(b[20:]),
		term:         binary.BigEndian.Uint32(b[24:]),
		count:        binary.BigEndian.Uint32(b[28:]),
	}
}

// index is the in-memory dense index of one segment: encoded entries, kept
// in the heap for the active segment and memory-mapped for sealed ones.
type index struct {
	b []byte // entries only, len is a multiple of indexEntrySize
}

func (x *index) len() int { return len(x.b) / indexEntrySize }

func (x *index) at(i int) indexEntry {
	return decodeIndexEntry(x.b[i*indexEntrySize:])
}

func (x *index) last() indexEntry { return x.at(x.len() - 1) }

func (x *index) append(e indexEntry) { x.b = e.appendTo(x.b) }

func (x *index) truncate(n int) { x.b = x.b[:n*indexEntrySize] }

// searchOffset returns the first entry whose nextOffset is above off: the
// batch containing off, or x.len() if none.
func (x *index) searchOffset(off int64) int {
	return sort.Search(x.len(), func(i int) bool {
		return int64(binary.BigEndian.Uint64(x.b[i*indexEntrySize:])) > off
	})
}

// searchTimestamp returns the first entry whose running max timestamp is at
// least ts, or x.len() if none. That entry is the first batch holding a
// timestamp >= ts.
func (x *index) searchTimestamp(ts int64) int {
	return sort.Search(x.len(), func(i int) bool {
		return int64(binary.BigEndian.Uint64(x.b[i*indexEntrySize+8:])) >= ts
	})
}

// searchTermAbove returns the first entry whose term is above term.
func (x *index) searchTermAbove(term uint64) int {
	return sort.Search(x.len(), func(i int) bool {
		return uint64(binary.BigEndian.Uint32(x.b[i*indexEntrySize+24:])) > term
	})
}

func appendIndexHeader(b []byte, baseIndex uint64) []byte {
	b = append(b, indexMagic...)
	b = binary.BigEndian.AppendUint32(b, indexVersion)
	b = binary.BigEndian.AppendUint32(b, 0)
	return binary.BigEndian.AppendUint64(b, baseIndex)
}

func checkIndexHeader(b []byte, baseIndex uint64) bool {
	return len(b) >= indexHeaderSize && string(b[:8]) == indexMagic &&
		binary.BigEndian.Uint32(b[8:]) == indexVersion &&
		binary.BigEndian.Uint64(b[16:]) == baseIndex
}

// validPrefix returns how many leading entries of x are self-consistent for a
// segment whose frames start at dataStart, whose file has fileSize bytes and
// that starts at baseOffset after an entry of prevTerm. A crash can leave a
// stale or zero-filled tail in an index file; the entries after the first
// inconsistency are dropped and rebuilt from the segment.
func (x *index) validPrefix(dataStart, fileSize, baseOffset int64, prevTerm uint64) int {
	pos, next, term := dataStart, baseOffset, prevTerm
	maxTS := int64(-1)
	for i := 0; i < x.len(); i++ {
		e := x.at(i)
		if int64(e.pos) != pos || e.size < frameHeaderSize || e.end() > fileSize ||
			uint64(e.term) < term || e.nextOffset != next+int64(e.count) || e.maxTimestamp < maxTS {
			return i
		}
		pos, next, term, maxTS = e.end(), e.nextOffset, uint64(e.term), e.maxTimestamp
	}
	return x.len()
}
