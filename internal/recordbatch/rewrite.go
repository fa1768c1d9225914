package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
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
	// value is null. Key aliases the batch's (decompressed) bytes.
	Key       []byte
	Tombstone bool
	// raw is the record as encoded in the batch, length prefix included;
	// afterTimestamp is where, in raw, the fields after the timestamp
	// delta start (the only field a rebuild may change).
	raw            []byte
	afterTimestamp int
}

// Open decompresses and decodes every record of a batch.
func Open(batch []byte) (*Opened, error) {
	o := &Opened{}
	if err := o.Reset(batch); err != nil {
		return nil, err
	}
	return o, nil
}

// Reset decodes batch into o, reusing its memory: the log cleaner opens
// millions of batches. Only the fields the cleaner needs are decoded
// (offset and timestamp deltas, key, whether the value is null); the rest
// of each record is kept as it is.
func (o *Opened) Reset(batch []byte) error {
	h, err := Validate(batch)
	if err != nil {
		return err
	}
	raw, err := Decompress(h.Compression(), batch[HeaderSize:])
	if err != nil {
		return corrupt("decompressing: %v", err)
	}
	return o.decode(h, raw)
}

// Budget is the node-wide memory that opened batches are held in (a
// membudget.Requests): a compressed batch of a few kilobytes can expand
// to hundreds of megabytes, and its records to more again, so what
// decompresses for many clients at once must be bounded as a whole.
type Budget interface {
	Limit() int64
	Acquire(n int64, cancel <-chan struct{}) (waited bool, err error)
	Release(n int64)
}

// ErrTooLarge is returned by OpenWithin and ResetWithin for a batch whose
// decompressed records would take more memory than MaxDecompressed or the
// whole budget.
var ErrTooLarge = errors.New("batch expands to more memory than the decompression budget holds")

// openedRecordSize is what a record takes in Opened.Records; a record
// takes at least minRecordSize bytes of the decompressed data (length,
// attributes, timestamp and offset deltas, key and value lengths, header
// count), which bounds how many a batch holds whatever its count says.
const (
	openedRecordSize = int64(unsafe.Sizeof(OpenedRecord{}))
	minRecordSize    = 7
)

// OpenWithin is Open with the memory it takes held in budget; see
// ResetWithin.
func OpenWithin(batch []byte, budget Budget, rewrite bool, cancel <-chan struct{}) (*Opened, func(), error) {
	o := &Opened{}
	release, err := o.ResetWithin(batch, budget, rewrite, cancel)
	if err != nil {
		return nil, nil, err
	}
	return o, release, nil
}

// ResetWithin is Reset with the memory it takes (the decompressed bytes
// and the decoded records, and with rewrite as much again for the records
// Rebuild or Recompress encode) reserved from budget first, waiting for it
// until cancel closes (then the budget's error). The caller calls release
// once it no longer uses o's records. The decompressed size is what the
// codec's framing claims if it says, else a guess; a batch larger than its
// reservation gives it back and is tried again with four times as much, so
// that a reservation is never held while waiting for another. A batch that
// needs more than the budget or MaxDecompressed gets ErrTooLarge; one that
// does not decode, a CorruptError.
func (o *Opened) ResetWithin(batch []byte, budget Budget, rewrite bool, cancel <-chan struct{}) (release func(), err error) {
	h, err := Validate(batch)
	if err != nil {
		return nil, err
	}
	codec, body := h.Compression(), batch[HeaderSize:]
	// The records slice is reused only if it stays within what is counted.
	count := int64(max(h.RecordCount, 0))
	if int64(cap(o.Records)) > 2*count+64 {
		o.Records = nil
	}
	cost := func(raw int) int64 {
		c := min(count, int64(raw)/minRecordSize+1) * openedRecordSize
		if codec != CompressionNone {
			c += int64(raw) // an uncompressed batch is decoded where it is
		}
		if rewrite {
			// The records encoded again; what their compression adds is
			// small beside them, unless they barely compress, and then the
			// batch itself is no larger than its produce request was.
			c += int64(raw)
		}
		return c
	}
	guess := len(body)
	if codec != CompressionNone {
		guess = initialGuess(codec, body)
	}
	for {
		n := cost(guess)
		if n > budget.Limit() {
			return nil, fmt.Errorf("%w: %d records in %d bytes need %d bytes, the budget is %d", ErrTooLarge, count, guess, n, budget.Limit())
		}
		if n == 0 {
			return func() {}, o.decode(h, body)
		}
		if _, err := budget.Acquire(n, cancel); err != nil {
			return nil, err
		}
		raw, err := decompressLimit(codec, body, guess)
		if errors.Is(err, errOverLimit) {
			budget.Release(n)
			if guess == MaxDecompressed {
				return nil, fmt.Errorf("%w: %s decompresses to more than %d bytes", ErrTooLarge, codecName(codec), MaxDecompressed)
			}
			guess = min(4*guess, MaxDecompressed)
			continue
		}
		if err == nil {
			err = o.decode(h, raw)
		} else {
			err = corrupt("decompressing: %v", err)
		}
		if err != nil {
			budget.Release(n)
			return nil, err
		}
		var once sync.Once
		return func() { once.Do(func() { budget.Release(n) }) }, nil
	}
}

// decode parses the records of raw, the batch's decompressed records.
func (o *Opened) decode(h Header, raw []byte) error {
	o.Header = h
	// Allocated once, for no more records than raw can hold.
	if n := int(min(int64(max(h.RecordCount, 0)), int64(len(raw)/minRecordSize+1))); cap(o.Records) < n {
		o.Records = make([]OpenedRecord, 0, n)
	}
	o.Records = o.Records[:0]
	src := raw
	for i := int32(0); i < h.RecordCount; i++ {
		n, w := binary.Varint(src)
		if w <= 0 || n < 0 || int64(len(src)-w) < n {
			return corrupt("record %d: bad length", i)
		}
		r, err := parseRecord(src[:w+int(n)], w)
		if err != nil {
			return corrupt("record %d: %v", i, err)
		}
		src = src[w+int(n):]
		r.Offset += h.BaseOffset
		r.Timestamp += h.BaseTimestamp
		o.Records = append(o.Records, r)
	}
	if len(src) != 0 {
		return corrupt("%d bytes after the last record", len(src))
	}
	return nil
}

// parseRecord reads a record's attributes, timestamp and offset deltas,
// key and value length; body is where they start in raw. Offset and
// Timestamp come back as deltas.
func parseRecord(raw []byte, body int) (OpenedRecord, error) {
	r := OpenedRecord{raw: raw}
	b := raw[body:]
	if len(b) < 1 {
		return r, errors.New("no attributes")
	}
	b = b[1:]
	ts, w := binary.Varint(b)
	if w <= 0 {
		return r, errors.New("bad timestamp delta")
	}
	b = b[w:]
	r.afterTimestamp = len(raw) - len(b)
	off, w := binary.Varint(b)
	if w <= 0 || off < math.MinInt32 || off > math.MaxInt32 {
		return r, errors.New("bad offset delta")
	}
	b = b[w:]
	keyLen, w := binary.Varint(b)
	if w <= 0 || keyLen < -1 || keyLen > int64(len(b)-w) {
		return r, errors.New("bad key length")
	}
	b = b[w:]
	if keyLen >= 0 {
		r.Key = b[:keyLen:keyLen]
		b = b[keyLen:]
	}
	valueLen, w := binary.Varint(b)
	if w <= 0 || valueLen < -1 || valueLen > int64(len(b)-w) {
		return r, errors.New("bad value length")
	}
	r.Offset, r.Timestamp, r.Tombstone = off, ts, valueLen < 0
	return r, nil
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
	return o.Recompress(codec)
}

// Recompress re-encodes every record of the opened batch with codec.
func (o *Opened) Recompress(codec int) ([]byte, error) {
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
	// Sized once: what the budget counted for the rewrite.
	size := 0
	for i := range o.Records {
		if keep[i] {
			size += len(o.Records[i].raw) + binary.MaxVarintLen64
		}
	}
	body := make([]byte, 0, size)
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
		// attributes, the new timestamp delta, then the rest as it was.
		bodyStart := len(r.raw) - recordBodyLen(r.raw)
		var head [1 + binary.MaxVarintLen64]byte
		head[0] = r.raw[bodyStart]
		n := 1 + binary.PutVarint(head[1:], r.Timestamp-base)
		rest := r.raw[r.afterTimestamp:]
		body = binary.AppendVarint(body, int64(n+len(rest)))
		body = append(body, head[:n]...)
		body = append(body, rest...)
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

// recordBodyLen is the length of a record after its length prefix.
func recordBodyLen(raw []byte) int {
	n, _ := binary.Varint(raw)
	return int(n)
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
