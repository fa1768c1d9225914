package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressed bounds the size a compressed batch may expand to, so that
// a hostile batch cannot exhaust memory.
const MaxDecompressed = 256 << 20

// xerialHeader starts snappy data framed the way the Java client's
// snappy-java writes it.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// zstdDecoder is safe for concurrent DecodeAll calls; it is immutable once
// built, so sharing it is not shared mutable state. It decodes no more
// than the capacity of the buffer it is given.
var zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxDecompressed),
	zstd.WithDecodeAllCapLimit(true))

// errOverLimit says that data decompresses to more than the limit asked.
var errOverLimit = errors.New("decompresses to more than the limit")

// Decompress returns the uncompressed record bytes of the batch (the part
// after the header), of at most MaxDecompressed bytes.
func Decompress(codec int, src []byte) ([]byte, error) {
	if codec == CompressionNone {
		return src, nil
	}
	for n := initialGuess(codec, src); ; n = min(4*n, MaxDecompressed) {
		out, err := decompressLimit(codec, src, n)
		if errors.Is(err, errOverLimit) && n < MaxDecompressed {
			continue
		}
		if errors.Is(err, errOverLimit) {
			return nil, fmt.Errorf("%s: decompressed size exceeds %d", codecName(codec), MaxDecompressed)
		}
		return out, err
	}
}

// initialGuess is the first output size to try for src: what its codec's
// framing says it decompresses to, if anything, else four times its size;
// at least 4 KiB and at most MaxDecompressed. A framing that understates
// the size costs another try with a larger one; one that overstates it
// costs the memory it claims, which the callers account for.
func initialGuess(codec int, src []byte) int {
	n := 4 * len(src)
	switch codec {
	case CompressionGzip:
		// ISIZE: the last member's size mod 2^32 (a batch has one member).
		if len(src) >= 18 {
			n = int(binary.LittleEndian.Uint32(src[len(src)-4:]))
		}
	case CompressionSnappy:
		if size, err := snappySize(src); err == nil {
			n = size
		}
	case CompressionZstd:
		if size, err := zstdSize(src); err == nil {
			n = int(min(size, MaxDecompressed))
		}
	}
	return min(max(n, 4<<10), MaxDecompressed)
}

// zstdMaxBlock is the most a zstd block decompresses to.
const zstdMaxBlock = 128 << 10

// zstdSize bounds what zstd frames decompress to without decoding them:
// a frame's content size where it states it, else the sum of its blocks'
// (a raw or RLE block states its size, a compressed one holds at most
// 128 KiB). The bound is tight enough to allocate up front: a frame of
// compressed blocks has only its last one short of 128 KiB.
func zstdSize(src []byte) (uint64, error) {
	var total uint64
	for len(src) > 0 {
		var h zstd.Header
		if err := h.Decode(src); err != nil {
			return 0, err
		}
		if h.Skippable {
			if skip := h.HeaderSize + int(h.SkippableSize); skip <= len(src) {
				src = src[skip:]
				continue
			}
			return 0, io.ErrUnexpectedEOF
		}
		pos, size := h.HeaderSize, uint64(0)
		for last := false; !last; {
			if pos+3 > len(src) {
				return 0, io.ErrUnexpectedEOF
			}
			bh := uint32(src[pos]) | uint32(src[pos+1])<<8 | uint32(src[pos+2])<<16
			pos += 3
			last = bh&1 == 1
			n := int(bh >> 3)
			switch bh >> 1 & 3 {
			case 0: // raw
				size += uint64(n)
				pos += n
			case 1: // RLE: one byte, n times
				size += uint64(n)
				pos++
			case 2:
				size += zstdMaxBlock
				pos += n
			default:
				return 0, errors.New("reserved block type")
			}
			if total+size > MaxDecompressed {
				return total + size, nil // over the limit: no need to read on
			}
		}
		if h.HasCheckSum {
			pos += 4
		}
		if pos > len(src) {
			return 0, io.ErrUnexpectedEOF
		}
		if h.HasFCS {
			// Stated exactly, and checked by the decoder.
			size = min(size, h.FrameContentSize)
		}
		total += size
		src = src[pos:]
	}
	return total, nil
}

func codecName(codec int) string {
	switch codec {
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", codec)
}

// decompressLimit decompresses src into a buffer of at most limit bytes,
// allocated up front (so that what a caller reserved is what is used), and
// returns errOverLimit if the data is larger.
func decompressLimit(codec int, src []byte, limit int) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return src, nil
	case CompressionGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return readLimit(r, "gzip", limit)
	case CompressionSnappy:
		n, err := snappySize(src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		if n > limit {
			return nil, errOverLimit
		}
		if !bytes.HasPrefix(src, xerialHeader) {
			out, err := snappy.Decode(make([]byte, n), src)
			if err != nil {
				return nil, fmt.Errorf("snappy: %w", err)
			}
			return out, nil
		}
		return decodeXerial(src, n)
	case CompressionLZ4:
		return readLimit(lz4.NewReader(bytes.NewReader(src)), "lz4", limit)
	case CompressionZstd:
		// Past its capacity the decoder may fail with an error that does
		// not say why; within the frames' bound it never reaches it.
		bound, err := zstdSize(src)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if bound > uint64(limit) {
			return nil, errOverLimit
		}
		out, err := zstdDecoder.DecodeAll(src, make([]byte, 0, bound))
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, errOverLimit
		}
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
}

// readLimit reads r whole into a buffer of limit bytes.
func readLimit(r io.Reader, codec string, limit int) ([]byte, error) {
	out := make([]byte, limit)
	for n := 0; n < limit; {
		m, err := r.Read(out[n:])
		n += m
		if err == io.EOF {
			return out[:n], nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", codec, err)
		}
	}
	// Full: it fits only if nothing follows.
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			return nil, errOverLimit
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", codec, err)
		}
	}
}

// snappySize is the decompressed size of snappy data, raw or in
// snappy-java's framing (the 8-byte magic, two int32 versions, then chunks
// of int32 length and a snappy block), as its headers state it; decoding
// checks them.
func snappySize(src []byte) (int, error) {
	if !bytes.HasPrefix(src, xerialHeader) {
		return snappy.DecodedLen(src)
	}
	if len(src) < 16 {
		return 0, fmt.Errorf("xerial header truncated")
	}
	src = src[16:]
	total := 0
	for len(src) > 0 {
		if len(src) < 4 {
			return 0, fmt.Errorf("xerial chunk length truncated")
		}
		n := int(binary.BigEndian.Uint32(src))
		src = src[4:]
		if n < 0 || n > len(src) {
			return 0, fmt.Errorf("xerial chunk of %d bytes, %d left", n, len(src))
		}
		dl, err := snappy.DecodedLen(src[:n])
		if err != nil {
			return 0, err
		}
		if total += dl; total > MaxDecompressed {
			return 0, fmt.Errorf("decompressed size exceeds %d", MaxDecompressed)
		}
		src = src[n:]
	}
	return total, nil
}

// decodeXerial decodes snappy-java's framing into a buffer of size bytes,
// the total snappySize found.
func decodeXerial(src []byte, size int) ([]byte, error) {
	out := make([]byte, 0, size)
	src = src[16:]
	for len(src) > 0 {
		n := int(binary.BigEndian.Uint32(src))
		src = src[4:]
		dl, _ := snappy.DecodedLen(src[:n])
		// Decoded in place: chunk is out's free space, which append then
		// takes into out without copying elsewhere.
		chunk, err := snappy.Decode(out[len(out):len(out)+dl], src[:n])
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		out = append(out, chunk...)
		src = src[n:]
	}
	return out, nil
}

// RecordsOf decodes the records of any batch, decompressing it first.
func RecordsOf(batch []byte) ([]Record, error) {
	h, err := ParseHeader(batch)
	if err != nil {
		return nil, err
	}
	if h.Size() > len(batch) || h.Size() < HeaderSize {
		return nil, corrupt("batch length %d does not fit %d bytes", h.Size(), len(batch))
	}
	raw, err := Decompress(h.Compression(), batch[HeaderSize:h.Size()])
	if err != nil {
		return nil, corrupt("decompressing: %v", err)
	}
	return decodeRecords(h, raw)
}
