package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/chronik-stream/chronik/internal/membudget"
)

// withRecords returns a batch of count records, each with a key and a
// value of size bytes, compressed by codec.
func withRecords(t *testing.T, count, size int, codec int) []byte {
	t.Helper()
	b := Batch{BaseOffset: 0, ProducerID: -1, BaseSequence: -1}
	for i := range count {
		b.Records = append(b.Records, Record{Timestamp: int64(i), Key: fmt.Appendf(nil, "k%d", i), Value: make([]byte, size)})
	}
	raw := Build(b)
	if codec == CompressionNone {
		return raw
	}
	return compressed(t, raw, codec)
}

// withBody returns a batch whose header says count records and whose
// compressed body is body, with the codec bits and CRC set.
func withBody(t *testing.T, count int32, codec int, body []byte) []byte {
	t.Helper()
	b := Build(Batch{ProducerID: -1, BaseSequence: -1, Records: []Record{{Value: []byte("x")}}})
	b = append(b[:HeaderSize:HeaderSize], body...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-lengthFieldEnd))
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(count))
	b[offAttributes+1] |= byte(codec)
	return refreshCRC(b)
}

// TestOpenWithinEveryCodec: a batch opens within the budget with each
// codec, raw and framed snappy included, to the same records as Open, and
// release gives back all it reserved; the reservation is held until then.
func TestOpenWithinEveryCodec(t *testing.T) {
	budget := membudget.NewRequests(64<<20, 64<<20)
	for _, codec := range []int{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd, -1} {
		name, batch := fmt.Sprint(codec), []byte(nil)
		if codec < 0 {
			raw := withRecords(t, 300, 1000, CompressionNone)
			batch = append(bytes.Clone(raw[:HeaderSize]), xerial(raw[HeaderSize:])...)
			binary.BigEndian.PutUint32(batch[offLength:], uint32(len(batch)-lengthFieldEnd))
			batch[offAttributes+1] |= CompressionSnappy
			name, batch = "xerial", refreshCRC(batch)
		} else {
			// 300 KB of zeros: four times the compressed size is too
			// small a first guess where the codec does not say its size.
			batch = withRecords(t, 300, 1000, codec)
		}
		t.Run(name, func(t *testing.T) {
			want, err := Open(batch)
			if err != nil {
				t.Fatal(err)
			}
			o, release, err := OpenWithin(batch, budget, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(o.Records) != 300 || fmt.Sprint(o.Records) != fmt.Sprint(want.Records) {
				t.Fatalf("opened %d records, differing from Open's", len(o.Records))
			}
			if budget.Reserved() == 0 {
				t.Fatal("nothing reserved while the batch is open")
			}
			release()
			release() // twice is once
			if r := budget.Reserved(); r != 0 {
				t.Fatalf("%d bytes still reserved after release", r)
			}
		})
	}
}

// TestOpenWithinRefusesABomb: a zstd frame of a few kilobytes that
// expands to 200 MiB, with and without its size in the frame, and a gzip
// stream of the same, are refused with ErrTooLarge by a 64 MiB budget
// without allocating more than the budget, and leave nothing reserved.
func TestOpenWithinRefusesABomb(t *testing.T) {
	zeros := make([]byte, 200<<20)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	withSize := enc.EncodeAll(zeros, nil)
	var noSize bytes.Buffer
	w, _ := zstd.NewWriter(&noSize)
	w.Write(zeros)
	w.Close()
	gz := compressed(t, withBody(t, 1, CompressionNone, zeros), CompressionGzip)[HeaderSize:]
	zeros = nil
	var h zstd.Header
	if err := h.Decode(noSize.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("the streamed frame states its size (%v): the case is not tested", err)
	}
	budget := membudget.NewRequests(64<<20, 64<<20)
	for name, c := range map[string]struct {
		codec int
		body  []byte
	}{"zstd with size": {CompressionZstd, withSize}, "zstd streamed": {CompressionZstd, noSize.Bytes()}, "gzip": {CompressionGzip, gz}} {
		t.Run(name, func(t *testing.T) {
			batch := withBody(t, 1, c.codec, c.body)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := OpenWithin(batch, budget, false, nil)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("a %d-byte batch expanding to 200 MiB: %v, want ErrTooLarge", len(batch), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*64<<20 {
				t.Errorf("refusing it allocated %d MiB, more than the 64 MiB budget twice", alloc>>20)
			}
			if r := budget.Reserved(); r != 0 {
				t.Fatalf("%d bytes still reserved", r)
			}
		})
	}
}

// TestOpenWithinCountsRecords: a batch of small records is charged for
// its decoded records as well as its bytes, so that a batch of a million
// empty records does not fit a budget its bytes alone would fit.
func TestOpenWithinCountsRecords(t *testing.T) {
	batch := withRecords(t, 100_000, 0, CompressionZstd)
	raw, err := Decompress(CompressionZstd, batch[HeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	budget := membudget.NewRequests(int64(2*len(raw)), int64(2*len(raw)))
	if _, _, err := OpenWithin(batch, budget, false, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("100,000 records of %d bytes in a budget of twice that: %v, want ErrTooLarge", len(raw), err)
	}
	budget = membudget.NewRequests(64<<20, 64<<20)
	if _, release, err := OpenWithin(batch, budget, false, nil); err != nil {
		t.Fatal(err)
	} else {
		if r := budget.Reserved(); r < int64(len(raw))+100_000*openedRecordSize {
			t.Errorf("reserved %d bytes for %d bytes and 100,000 records", r, len(raw))
		}
		release()
	}
	if _, release, err := OpenWithin(batch, budget, true, nil); err != nil {
		t.Fatal(err)
	} else {
		if r := budget.Reserved(); r < 2*int64(len(raw))+100_000*openedRecordSize {
			t.Errorf("reserved %d bytes to rewrite %d bytes and 100,000 records", r, len(raw))
		}
		release()
	}
}

// TestOpenWithinWaitsForTheBudget: a batch waits while others hold the
// budget, opens once they release it, and gives up when cancel closes.
func TestOpenWithinWaitsForTheBudget(t *testing.T) {
	batch := withRecords(t, 100, 1000, CompressionLZ4)
	budget := membudget.NewRequests(4<<20, 4<<20)
	if _, err := budget.Acquire(4<<20, nil); err != nil {
		t.Fatal(err)
	}
	cancel := make(chan struct{})
	close(cancel)
	if _, _, err := OpenWithin(batch, budget, false, cancel); !errors.Is(err, membudget.ErrCanceled) {
		t.Fatalf("open while the budget is spent, canceled: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, release, err := OpenWithin(batch, budget, false, nil)
		if err == nil {
			release()
		}
		done <- err
	}()
	for budget.Waiting() == 0 {
		runtime.Gosched()
	}
	budget.Release(4 << 20)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := budget.Reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// TestOpenWithinCorrupt: data that does not decompress is a CorruptError
// and returns its reservation.
func TestOpenWithinCorrupt(t *testing.T) {
	budget := membudget.NewRequests(64<<20, 64<<20)
	for _, codec := range []int{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		good := withRecords(t, 10, 100, codec)
		bad := withBody(t, 10, codec, bytes.Repeat([]byte{0xa5}, len(good)-HeaderSize))
		var ce *CorruptError
		if _, _, err := OpenWithin(bad, budget, false, nil); !errors.As(err, &ce) {
			t.Errorf("codec %d: garbage opened with %v, want a CorruptError", codec, err)
		}
	}
	if r := budget.Reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// TestZstdSizeBoundsTheFrames: the bound read from the block headers is
// at least what the frames decompress to and at most 128 KiB per frame
// more, for frames that state their size and streamed ones, of random and
// repetitive data, several frames and a skippable one; and the data
// decompresses within it.
func TestZstdSizeBoundsTheFrames(t *testing.T) {
	rnd := make([]byte, 1<<20)
	for i := range rnd {
		rnd[i] = byte(i*7919 ^ i>>5 ^ i*i>>11)
	}
	mixed := append(bytes.Repeat([]byte("chronik "), 100_000), rnd[:300_000]...)
	streamed := func(b []byte) []byte {
		var buf bytes.Buffer
		w, _ := zstd.NewWriter(&buf, zstd.WithEncoderCRC(true))
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	enc, _ := zstd.NewWriter(nil)
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	cases := map[string]struct {
		src    []byte
		want   int
		frames int
	}{
		"random, sized":  {enc.EncodeAll(rnd, nil), len(rnd), 1},
		"random, stream": {streamed(rnd), len(rnd), 1},
		"mixed, stream":  {streamed(mixed), len(mixed), 1},
		"zeros, stream":  {streamed(make([]byte, 5<<20)), 5 << 20, 1},
		"three frames":   {append(append(streamed(mixed), enc.EncodeAll(rnd, nil)...), streamed(rnd)...), len(mixed) + 2*len(rnd), 3},
		"with skippable": {append(append(skippable, streamed(mixed)...), skippable...), len(mixed), 1},
		"empty stream":   {streamed(nil), 0, 1},
		"nothing at all": {nil, 0, 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			bound, err := zstdSize(c.src)
			if err != nil {
				t.Fatal(err)
			}
			if bound < uint64(c.want) || bound > uint64(c.want+c.frames*zstdMaxBlock) {
				t.Fatalf("bound %d for %d bytes in %d frames", bound, c.want, c.frames)
			}
			out, err := decompressLimit(CompressionZstd, c.src, int(bound))
			if err != nil || len(out) != c.want {
				t.Fatalf("decompressed %d bytes (%v), want %d", len(out), err, c.want)
			}
		})
	}
	if _, err := zstdSize(enc.EncodeAll(rnd, nil)[:1000]); err == nil {
		t.Fatal("a truncated frame was bounded")
	}
}

// FuzzOpenWithin: whatever a batch's compressed body holds, opening it
// within a budget succeeds or fails cleanly, never reserves more than the
// budget, and gives every byte back.
func FuzzOpenWithin(f *testing.F) {
	for _, codec := range []int{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		b := sampleBatch(5)
		f.Add(uint8(codec), compressed(&testing.T{}, b, codec)[HeaderSize:])
	}
	f.Add(uint8(CompressionSnappy), xerial(sampleBatch(5)[HeaderSize:]))
	f.Fuzz(func(t *testing.T, codec uint8, body []byte) {
		budget := membudget.NewRequests(1<<20, 1<<20)
		b := withBody(t, 5, int(codec%5), body)
		o, release, err := OpenWithin(b, budget, false, nil)
		if err == nil {
			if len(o.Records) != 5 {
				t.Fatalf("opened %d records of 5", len(o.Records))
			}
			release()
		}
		if r := budget.Reserved(); r != 0 {
			t.Fatalf("%d bytes still reserved after %v", r, err)
		}
	})
}
