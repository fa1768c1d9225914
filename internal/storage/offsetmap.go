package storage

import (
	"encoding/binary"
	"hash/maphash"
)

// offsetMap maps keys to the offset of their latest record for one cleaning
// pass, in a fixed amount of memory, as Kafka's SkimpyOffsetMap: an open
// addressing table of (128-bit hash of the key, offset) slots. Two keys
// share a slot only if their hashes collide. Kafka hashes with MD5, whose
// collisions anyone can compute: a client could then write a key that
// replaces another's latest record. The hash here is two 64-bit maphash
// values with seeds drawn at random for this process, which a client
// cannot know, and is several times faster.
type offsetMap struct {
	seeds [2]maphash.Seed
	slots []byte // capacity * offsetSlotSize
	// used counts filled slots; the map refuses new keys past limit so that
	// probes stay short.
	used, limit int
}

const (
	keyHashSize    = 16
	offsetSlotSize = keyHashSize + 8
	// offsetMapLoad is the share of slots filled before the map is full
	// (Kafka's log.cleaner.io.buffer.load.factor).
	offsetMapLoad = 0.9
)

// newOffsetMap makes a map of about memory bytes.
func newOffsetMap(memory int64) *offsetMap {
	n := max(int(memory/offsetSlotSize), 2)
	// At least one slot stays empty, which ends every probe.
	limit := max(min(int(float64(n)*offsetMapLoad), n-1), 1)
	return &offsetMap{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, slots: make([]byte, n*offsetSlotSize), limit: limit}
}

func (m *offsetMap) capacity() int { return len(m.slots) / offsetSlotSize }

// reset empties the map for the next pass.
func (m *offsetMap) reset() {
	if m.used > 0 {
		clear(m.slots)
		m.used = 0
	}
}

func (m *offsetMap) hash(key []byte) [keyHashSize]byte {
	var h [keyHashSize]byte
	binary.BigEndian.PutUint64(h[:8], maphash.Bytes(m.seeds[0], key))
	binary.BigEndian.PutUint64(h[8:], maphash.Bytes(m.seeds[1], key))
	return h
}

// slot finds key's slot, or the empty slot where it would go.
func (m *offsetMap) slot(hash *[keyHashSize]byte) []byte {
	n := uint64(m.capacity())
	i := binary.BigEndian.Uint64(hash[:8]) % n
	for {
		s := m.slots[i*offsetSlotSize : (i+1)*offsetSlotSize]
		// Offsets are stored plus one: a zero offset field is an empty slot.
		if binary.BigEndian.Uint64(s[keyHashSize:]) == 0 || [keyHashSize]byte(s[:keyHashSize]) == *hash {
			return s
		}
		if i++; i == n {
			i = 0
		}
	}
}

// put records offset as the latest of key. It reports false, changing
// nothing, when key is new and the map is full.
func (m *offsetMap) put(key []byte, offset int64) bool {
	hash := m.hash(key)
	s := m.slot(&hash)
	if binary.BigEndian.Uint64(s[keyHashSize:]) == 0 {
		if m.used >= m.limit {
			return false
		}
		m.used++
		copy(s, hash[:])
	}
	binary.BigEndian.PutUint64(s[keyHashSize:], uint64(offset)+1)
	return true
}

// get returns the latest offset recorded for key.
func (m *offsetMap) get(key []byte) (int64, bool) {
	hash := m.hash(key)
	s := m.slot(&hash)
	v := binary.BigEndian.Uint64(s[keyHashSize:])
	if v == 0 {
		return 0, false
	}
	return int64(v - 1), true
}
