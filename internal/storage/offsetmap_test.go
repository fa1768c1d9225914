package storage

import (
	"fmt"
	"testing"
)

// TestOffsetMap: the latest offset of each key is kept, a full map refuses
// new keys but still updates known ones, and reset empties it.
func TestOffsetMap(t *testing.T) {
	m := newOffsetMap(100 * offsetSlotSize)
	if m.capacity() != 100 || m.limit != 90 {
		t.Fatalf("capacity %d limit %d, want 100 and 90", m.capacity(), m.limit)
	}
	for i := range 90 {
		if !m.put(fmt.Appendf(nil, "k%d", i), int64(i)) {
			t.Fatalf("key %d refused below the limit", i)
		}
	}
	if m.put([]byte("one more"), 1000) {
		t.Fatal("a new key was taken past the load limit")
	}
	if !m.put([]byte("k3"), 500) {
		t.Fatal("a known key was refused in a full map")
	}
	for i := range 90 {
		want := int64(i)
		if i == 3 {
			want = 500
		}
		if got, ok := m.get(fmt.Appendf(nil, "k%d", i)); !ok || got != want {
			t.Fatalf("k%d: %d %v, want %d", i, got, ok, want)
		}
	}
	if _, ok := m.get([]byte("one more")); ok {
		t.Fatal("a refused key is found")
	}
	if got, ok := m.get([]byte{}); ok {
		t.Fatalf("the empty key is found (%d) though never put", got)
	}
	m.reset()
	if _, ok := m.get([]byte("k1")); ok || m.used != 0 {
		t.Fatal("reset left keys behind")
	}
	if !m.put([]byte{}, 0) {
		t.Fatal("the empty key at offset 0 refused")
	}
	if got, ok := m.get([]byte{}); !ok || got != 0 {
		t.Fatalf("the empty key at offset 0: %d %v", got, ok)
	}
}
