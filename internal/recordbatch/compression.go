package recordbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// maxDecompressed bounds the size a compressed batch may expand to, so that a
// hostile batch cannot exhaust memory.
const maxDecompressed = 256 << 20

// xerialHeader starts snappy data framed the way the Java client's
// snappy-java writes it.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// zstdDecoder is safe for concurrent DecodeAll calls; it is immutable once
// built, so sharing it is not shared mutable state.
var zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecompressed))

// Decompress returns the uncompressed record bytes of the batch (the part
// after the header).
func Decompress(codec int, src []byte) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return src, nil
	case CompressionGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return readLimited(r, "gzip")
	case CompressionSnappy:
		if bytes.HasPrefix(src, xerialHeader) {
			return decodeXerial(src)
		}
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		if n > maxDecompressed {
			return nil, fmt.Errorf("snappy: %d bytes decompressed exceeds %d", n, maxDecompressed)
		}
		out, err := snappy.Decode(nil, src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		return out, nil
	case CompressionLZ4:
		return readLimited(lz4.NewReader(bytes.NewReader(src)), "lz4")
	case CompressionZstd:
		out, err := zstdDecoder.DecodeAll(src, nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
}

func readLimited(r io.Reader, codec string) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", codec, err)
	}
	if len(out) > maxDecompressed {
		return nil, fmt.Errorf("%s: decompressed size exceeds %d", codec, maxDecompressed)
	}
	return out, nil
}

// decodeXerial reads snappy-java's framing: the 8-byte magic, two int32
// versions, then chunks of (int32 length, snappy block).
func decodeXerial(src []byte) ([]byte, error) {
	if len(src) < 16 {
		return nil, fmt.Errorf("snappy: xerial header truncated")
	}
	src = src[16:]
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, fmt.Errorf("snappy: xerial chunk length truncated")
		}
		n := int(binary.BigEndian.Uint32(src))
		src = src[4:]
		if n < 0 || n > len(src) {
			return nil, fmt.Errorf("snappy: xerial chunk of %d bytes, %d left", n, len(src))
		}
		dl, err := snappy.DecodedLen(src[:n])
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		if len(out)+dl > maxDecompressed {
			return nil, fmt.Errorf("snappy: decompressed size exceeds %d", maxDecompressed)
		}
		chunk, err := snappy.Decode(nil, src[:n])
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
