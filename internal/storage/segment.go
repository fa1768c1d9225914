package storage

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// Segment file header (big-endian):
//
//	0  [8]    magic "CHRONIKL"
//	8  uint32 format version
//	12 uint32 header size
//	16 uint64 base raft index (also in the file name)
//	24 int64  base Kafka offset: the next offset when the segment starts
//	32 uint64 term of the entry before the base index
//	40 uint32 flags: bit 0 set once the log cleaner rewrote the segment
//	44 uint32 CRC-32C of bytes 0..44
const (
	segmentHeaderSize = 48
	segmentMagic      = "CHRONIKL"
	segmentVersion    = 2

	segmentFlagCleaned = 1
)

func segmentName(baseIndex uint64) string { return fmt.Sprintf("%020d", baseIndex) }

// segment is one file of a log and its index. Fields other than refs are
// guarded by the owning Log's mutex; the file itself is read with ReadAt
// without that mutex while a reference is held.
type segment struct {
	dir        string
	baseIndex  uint64
	baseOffset int64
	prevTerm   uint64

	f    *os.File
	idxF *os.File // index file, open while the segment is active

	// Invariant: size == segmentHeaderSize + sum of frame sizes == idx.last().end().
	size int64
	idx  index
	// idxPersisted counts the entries already written to the index file.
	idxPersisted int
	// idxStale is set when an index write failed; the file is rewritten at seal.
	idxStale bool
	mapped   []byte // the mmap of a sealed index file, for munmap
	sealed   bool
	// firstAppend is when the first entry was appended in this process (zero
	// for an empty segment); segment.ms rolls are measured from it.
	firstAppend time.Time
	// cleaned is set on a segment the log cleaner wrote: every record in it
	// that a later record of the same key (up to its end) replaced is gone.
	cleaned bool

	refs      atomic.Int32 // readers and syncs in flight, plus one for the log
	closeOnce sync.Once
	// deleted is set once the files were renamed to their .deleted names;
	// they are removed when the last reference goes.
	deleted atomic.Bool
}

func (s *segment) logPath() string { return filepath.Join(s.dir, segmentName(s.baseIndex)+".log") }
func (s *segment) idxPath() string { return filepath.Join(s.dir, segmentName(s.baseIndex)+".idx") }

// lastIndex is the raft index of the last entry, or baseIndex-1 if empty.
func (s *segment) lastIndex() uint64 { return s.baseIndex + uint64(s.idx.len()) - 1 }

func (s *segment) nextOffset() int64 {
	if s.idx.len() == 0 {
		return s.baseOffset
	}
	return s.idx.last().nextOffset
}

func (s *segment) lastTerm() uint64 {
	if s.idx.len() == 0 {
		return s.prevTerm
	}
	return uint64(s.idx.last().term)
}

func (s *segment) maxTimestamp() int64 {
	if s.idx.len() == 0 {
		return -1
	}
	return s.idx.last().maxTimestamp
}

func (s *segment) term(i uint64) uint64 {
	if i == s.baseIndex-1 {
		return s.prevTerm
	}
	return uint64(s.idx.at(int(i - s.baseIndex)).term)
}

func encodeSegmentHeader(baseIndex uint64, baseOffset int64, prevTerm uint64, flags uint32) []byte {
	b := make([]byte, 0, segmentHeaderSize)
	b = append(b, segmentMagic...)
	b = binary.BigEndian.AppendUint32(b, segmentVersion)
	b = binary.BigEndian.AppendUint32(b, segmentHeaderSize)
	b = binary.BigEndian.AppendUint64(b, baseIndex)
	b = binary.BigEndian.AppendUint64(b, uint64(baseOffset))
	b = binary.BigEndian.AppendUint64(b, prevTerm)
	b = binary.BigEndian.AppendUint32(b, flags)
	return binary.BigEndian.AppendUint32(b, recordbatch.Checksum(b))
}

func (s *segment) decodeHeader(b []byte) error {
	if len(b) < segmentHeaderSize {
		return fmt.Errorf("header is %d bytes, want %d", len(b), segmentHeaderSize)
	}
	if string(b[:8]) != segmentMagic {
		return fmt.Errorf("not a chronik segment (magic %q)", b[:8])
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != segmentVersion {
		return fmt.Errorf("segment format version %d is not supported by this release (it reads version %d)", v, segmentVersion)
	}
	if got, want := recordbatch.Checksum(b[:44]), binary.BigEndian.Uint32(b[44:]); got != want {
		return fmt.Errorf("header CRC mismatch: stored %08x, computed %08x", want, got)
	}
	if bi := binary.BigEndian.Uint64(b[16:]); bi != s.baseIndex {
		return fmt.Errorf("header base index %d does not match the file name", bi)
	}
	s.baseOffset = int64(binary.BigEndian.Uint64(b[24:]))
	s.prevTerm = binary.BigEndian.Uint64(b[32:])
	s.cleaned = binary.BigEndian.Uint32(b[40:])&segmentFlagCleaned != 0
	return nil
}

// createSegment makes a new empty segment and its index, durably.
func createSegment(dir string, baseIndex uint64, baseOffset int64, prevTerm uint64) (*segment, error) {
	s := &segment{dir: dir, baseIndex: baseIndex, baseOffset: baseOffset, prevTerm: prevTerm, size: segmentHeaderSize}
	s.refs.Store(1)
	var err error
	if s.f, err = createFileWith(s.logPath(), encodeSegmentHeader(baseIndex, baseOffset, prevTerm, 0)); err != nil {
		return nil, err
	}
	if s.idxF, err = createFileWith(s.idxPath(), appendIndexHeader(nil, baseIndex)); err != nil {
		s.f.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// createFileWith creates path (which must not exist), writes b and syncs.
func createFileWith(path string, b []byte) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	return f, nil
}

// openSegment opens an existing segment. The active (last) segment has its
// tail checked and a torn or garbage tail truncated; a sealed segment whose
// index does not match it is rescanned, and damage there is returned as a
// *CorruptionError rather than repaired, since sealed data was durable.
func openSegment(dir string, baseIndex uint64, active bool, logger *slog.Logger) (*segment, error) {
	s := &segment{dir: dir, baseIndex: baseIndex}
	s.refs.Store(1)
	var err error
	s.f, err = os.OpenFile(s.logPath(), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	st, err := s.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", s.logPath(), err)
	}
	fileSize := st.Size()
	hdr := make([]byte, segmentHeaderSize)
	if _, err := s.f.ReadAt(hdr, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read header of %s: %w", s.logPath(), err)
	}
	if err := s.decodeHeader(hdr); err != nil {
		return nil, &CorruptionError{Path: s.logPath(), Pos: 0, Index: baseIndex, Err: err}
	}

	// Load what the index file says, keep its consistent prefix, and make
	// sure the last kept entry really is the frame it claims to be.
	idxBytes, err := os.ReadFile(s.idxPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read index %s: %w", s.idxPath(), err)
	}
	if checkIndexHeader(idxBytes, baseIndex) {
		body := idxBytes[indexHeaderSize:]
		s.idx.b = body[:len(body)/indexEntrySize*indexEntrySize]
	} else if len(idxBytes) > 0 {
		logger.Warn("segment index has a bad header, rebuilding it", "index", s.idxPath())
	}
	indexed := len(s.idx.b) / indexEntrySize
	keep := s.idx.validPrefix(segmentHeaderSize, fileSize, s.baseOffset, s.prevTerm)
	if keep > 0 && !s.frameMatches(keep-1) {
		keep = 0
	}
	if keep < indexed {
		logger.Warn("segment index disagrees with its segment, rebuilding its tail",
			"segment", s.logPath(), "index_entries", indexed, "valid", keep)
	}
	s.idx.truncate(keep)
	s.idx.b = append([]byte(nil), s.idx.b...) // own the memory before scanning appends to it
	s.size = segmentHeaderSize
	if keep > 0 {
		s.size = s.idx.last().end()
	}

	scanFrom := s.size
	if scanFrom < fileSize {
		good, scanErr := s.scan(fileSize)
		if scanErr != nil {
			if !active {
				return nil, &CorruptionError{Path: s.logPath(), Pos: good, Index: s.lastIndex() + 1, Err: scanErr}
			}
			logger.Warn("truncating torn or corrupt tail of the active segment",
				"segment", s.logPath(), "valid_bytes", good, "dropped_bytes", fileSize-good, "reason", scanErr)
			if err := s.f.Truncate(good); err != nil {
				return nil, fmt.Errorf("truncate torn tail of %s: %w", s.logPath(), err)
			}
			if err := fdatasync(s.f); err != nil {
				return nil, fmt.Errorf("sync %s: %w", s.logPath(), err)
			}
		}
	}
	rewrite := keep != indexed || len(idxBytes) != indexHeaderSize+indexed*indexEntrySize
	if active {
		if err := s.openIndexForAppend(rewrite); err != nil {
			return nil, err
		}
	} else {
		if rewrite {
			if err := writeFileAtomic(s.idxPath(), appendIndexHeader(nil, baseIndex), s.idx.b); err != nil {
				return nil, err
			}
		}
		if err := s.mapIndex(); err != nil {
			return nil, err
		}
		s.sealed = true
	}
	ok = true
	return s, nil
}

// frameMatches reports whether index entry i describes a sound frame.
func (s *segment) frameMatches(i int) bool {
	e := s.idx.at(i)
	buf := make([]byte, e.size)
	if _, err := s.f.ReadAt(buf, int64(e.pos)); err != nil {
		return false
	}
	ent, err := decodeFrame(buf)
	return err == nil && ent.Index == s.baseIndex+uint64(i) && ent.Term == uint64(e.term)
}

// scan reads frames from s.size to fileSize, appending index entries. It
// returns the end of the last good frame and, if it stopped early, why.
func (s *segment) scan(fileSize int64) (int64, error) {
	var fr frameReader
	fr.reset(s, s.size, fileSize)
	for {
		_, e, err := fr.next()
		if errors.Is(err, io.EOF) {
			return s.size, nil
		}
		var ce *CorruptionError
		if errors.As(err, &ce) {
			return s.size, ce.Err // the caller says where
		}
		if err != nil {
			return s.size, err
		}
		ie, err := s.nextIndexEntry(&e, s.size, s.nextOffset(), s.lastTerm(), s.maxTimestamp())
		if err != nil {
			return s.size, fmt.Errorf("frame at %d: %w", s.size, err)
		}
		s.idx.append(ie)
		s.size = fr.pos
	}
}

// frameReader reads the frames of a segment in order from its file,
// without its index: recovery scans what the index does not cover, and the
// cleaner holds no lock while it reads (the index of a segment retention
// drops meanwhile is unmapped).
type frameReader struct {
	r   *bufio.Reader
	pos int64
	end int64
	buf []byte
	seg *segment
}

// reset points the reader at the frames of s from byte from to byte end,
// keeping its buffers.
func (fr *frameReader) reset(s *segment, from, end int64) *frameReader {
	src := io.NewSectionReader(s.f, from, end-from)
	if fr.r == nil {
		fr.r = bufio.NewReaderSize(src, 1<<20)
	} else {
		fr.r.Reset(src)
	}
	fr.pos, fr.end, fr.seg = from, end, s
	return fr
}

// next returns the next frame and its entry (aliasing the reader's buffer
// until the next call), or io.EOF.
func (fr *frameReader) next() ([]byte, Entry, error) {
	if fr.pos >= fr.end {
		return nil, Entry{}, io.EOF
	}
	var hdr [4]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		return nil, Entry{}, fr.damage(err)
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if n < frameHeaderSize || n > maxFrameSize || fr.pos+n > fr.end {
		return nil, Entry{}, fr.damage(errBadLength)
	}
	if int64(cap(fr.buf)) < n {
		fr.buf = make([]byte, n)
	}
	fr.buf = fr.buf[:n]
	copy(fr.buf, hdr[:])
	if _, err := io.ReadFull(fr.r, fr.buf[4:]); err != nil {
		return nil, Entry{}, fr.damage(err)
	}
	e, err := decodeFrame(fr.buf)
	if err != nil {
		return nil, Entry{}, fr.damage(err)
	}
	fr.pos += n
	return fr.buf, e, nil
}

func (fr *frameReader) damage(err error) error {
	return &CorruptionError{Path: fr.seg.logPath(), Pos: fr.pos, Err: err}
}

// damageUnless is damage, unless err came of ctx ending.
func (fr *frameReader) damageUnless(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fr.damage(err)
}

// nextIndexEntry checks that e follows an entry with the given next offset,
// term and running max timestamp, and returns its index entry at pos.
func (s *segment) nextIndexEntry(e *Entry, pos int64, nextOffset int64, lastTerm uint64, maxTS int64) (indexEntry, error) {
	if want := s.baseIndex + uint64(s.idx.len()); e.Index != want {
		return indexEntry{}, fmt.Errorf("entry has raft index %d, expected %d", e.Index, want)
	}
	return newIndexEntry(e, pos, nextOffset, lastTerm, maxTS, false)
}

// newIndexEntry validates e against the log position before it and returns
// its index entry. With assign, the batch's offset and epoch are about to be
// set by the frame writer; without, they must already be right (recovery).
func newIndexEntry(e *Entry, pos int64, nextOffset int64, lastTerm uint64, maxTS int64, assign bool) (indexEntry, error) {
	if e.Term < lastTerm {
		return indexEntry{}, fmt.Errorf("entry %d has term %d, below the previous term %d", e.Index, e.Term, lastTerm)
	}
	if e.Term > maxTerm {
		return indexEntry{}, fmt.Errorf("entry %d has term %d, above the maximum %d", e.Index, e.Term, maxTerm)
	}
	ie := indexEntry{
		nextOffset:   nextOffset,
		maxTimestamp: maxTS,
		pos:          uint32(pos),
		size:         uint32(frameHeaderSize + len(e.Data)),
		term:         uint32(e.Term),
	}
	if e.IsBatch() {
		h, err := recordbatch.ParseHeader(e.Batch())
		if err != nil {
			return indexEntry{}, err
		}
		if !assign && h.BaseOffset != nextOffset {
			return indexEntry{}, fmt.Errorf("entry %d: batch base offset %d, expected %d", e.Index, h.BaseOffset, nextOffset)
		}
		if !assign && uint64(h.LeaderEpoch) != e.Term {
			return indexEntry{}, fmt.Errorf("entry %d: batch leader epoch %d differs from term %d", e.Index, h.LeaderEpoch, e.Term)
		}
		ie.count = uint32(h.LastOffsetDelta) + 1
		ie.nextOffset += int64(ie.count)
		ie.maxTimestamp = max(maxTS, h.MaxTimestamp)
	}
	return ie, nil
}

// openIndexForAppend opens the index file of the active segment for
// appending, rewriting it first when it does not hold exactly s.idx.
func (s *segment) openIndexForAppend(rewrite bool) error {
	if rewrite {
		if err := writeFileAtomic(s.idxPath(), appendIndexHeader(nil, s.baseIndex), s.idx.b); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(s.idxPath(), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	s.idxF = f
	s.idxPersisted = s.idx.len()
	return nil
}

// writeFrames writes the frames of w at the end of the segment and records
// their index entries. On a failed write the file is cut back, so nothing
// partial stays behind.
func (s *segment) writeFrames(w *frameWriter, entries []indexEntry, logger *slog.Logger) error {
	if err := pwritev(s.f, w.buffers(), s.size); err != nil {
		if terr := s.f.Truncate(s.size); terr != nil {
			logger.Error("cannot cut back a failed write", "segment", s.logPath(), "err", terr)
		}
		return fmt.Errorf("append to %s: %w", s.logPath(), err)
	}
	if s.idx.len() == 0 && len(entries) > 0 {
		s.firstAppend = time.Now()
	}
	for _, e := range entries {
		s.idx.append(e)
	}
	s.size += w.size
	s.persistIndex(logger)
	return nil
}

// persistIndex writes index entries not yet in the index file. The index file
// is not synced per append: recovery rescans the segment after the last
// index entry it can trust.
func (s *segment) persistIndex(logger *slog.Logger) {
	if s.idxStale || s.idxF == nil || s.idxPersisted == s.idx.len() {
		return
	}
	from := s.idxPersisted * indexEntrySize
	if _, err := s.idxF.WriteAt(s.idx.b[from:], int64(indexHeaderSize+from)); err != nil {
		logger.Warn("index write failed; it will be rewritten when the segment is sealed", "index", s.idxPath(), "err", err)
		s.idxStale = true
		return
	}
	s.idxPersisted = s.idx.len()
}

// truncateTo keeps the first n entries, durably.
func (s *segment) truncateTo(n int) error {
	end := int64(segmentHeaderSize)
	if n > 0 {
		end = s.idx.at(n - 1).end()
	}
	if s.sealed {
		if err := s.unseal(); err != nil {
			return err
		}
	}
	if err := s.f.Truncate(end); err != nil {
		return fmt.Errorf("truncate %s: %w", s.logPath(), err)
	}
	if err := fdatasync(s.f); err != nil {
		return fmt.Errorf("sync %s: %w", s.logPath(), err)
	}
	s.idx.truncate(n)
	s.size = end
	if n == 0 {
		s.firstAppend = time.Time{}
	}
	if s.idxPersisted > n {
		s.idxPersisted = n
	}
	if err := s.idxF.Truncate(int64(indexHeaderSize + n*indexEntrySize)); err != nil {
		s.idxStale = true
	}
	return nil
}

// seal makes the segment immutable: data and index synced, index mapped.
func (s *segment) seal(logger *slog.Logger) error {
	if err := fdatasync(s.f); err != nil {
		return fmt.Errorf("sync %s: %w", s.logPath(), err)
	}
	if s.idxStale {
		if err := writeFileAtomic(s.idxPath(), appendIndexHeader(nil, s.baseIndex), s.idx.b); err != nil {
			return err
		}
	} else {
		s.persistIndex(logger)
		if err := s.idxF.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", s.idxPath(), err)
		}
	}
	s.idxF.Close()
	s.idxF = nil
	if err := s.mapIndex(); err != nil {
		return err
	}
	s.sealed = true
	return nil
}

// unseal turns a sealed segment back into the active one (after a raft
// truncation reached into it).
func (s *segment) unseal() error {
	owned := append([]byte(nil), s.idx.b...)
	s.unmapIndex()
	s.idx.b = owned
	s.sealed = false
	return s.openIndexForAppend(false)
}

// mapIndex replaces the heap copy of the index with a read-only mapping of
// the index file, so sealed indexes live in the page cache, not the heap.
func (s *segment) mapIndex() error {
	f, err := os.Open(s.idxPath())
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	defer f.Close()
	size := indexHeaderSize + len(s.idx.b)
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap %s: %w", s.idxPath(), err)
	}
	s.mapped = m
	s.idx.b = m[indexHeaderSize:size]
	return nil
}

func (s *segment) unmapIndex() {
	if s.mapped != nil {
		unix.Munmap(s.mapped)
		s.mapped = nil
		s.idx.b = nil
	}
}

// deletedSuffix marks files of a dropped segment still open by a reader.
// Renaming at once frees the name for a new segment with the same base.
const deletedSuffix = ".deleted"

// markDeleted renames the files out of the way; they are removed on close.
func (s *segment) markDeleted() error {
	err := os.Rename(s.logPath(), s.logPath()+deletedSuffix)
	if ierr := os.Rename(s.idxPath(), s.idxPath()+deletedSuffix); err == nil && !errors.Is(ierr, os.ErrNotExist) {
		err = ierr
	}
	s.deleted.Store(true)
	if err != nil {
		return fmt.Errorf("delete segment %s: %w", s.logPath(), err)
	}
	return nil
}

// acquire takes a reference that keeps the file open; release drops it.
func (s *segment) acquire() { s.refs.Add(1) }

func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.close()
	}
}

// close closes the files; the log calls it through release once the segment
// has left the log and no reader holds it.
func (s *segment) close() {
	s.closeOnce.Do(func() {
		if s.f == nil {
			return // a closed log's stand-in
		}
		s.f.Close()
		if s.idxF != nil {
			s.idxF.Close()
		}
		if s.deleted.Load() {
			os.Remove(s.logPath() + deletedSuffix)
			os.Remove(s.idxPath() + deletedSuffix)
		}
	})
}

// readRange reads bytes [start, end) of the segment file with one call.
func (s *segment) readRange(start, end int64) ([]byte, error) {
	buf := make([]byte, end-start)
	if _, err := s.f.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", s.logPath(), start, err)
	}
	return buf, nil
}

// maxIovecs is how many buffers one pwritev call takes (IOV_MAX).
const maxIovecs = 1024

// pwritev writes bufs contiguously at off, resuming after short writes.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for len(bufs) > 0 {
		chunk := bufs[:min(len(bufs), maxIovecs)]
		var n int
		var werr error
		if err := rc.Control(func(fd uintptr) { n, werr = unix.Pwritev(int(fd), chunk, off) }); err != nil {
			return err
		}
		if werr != nil {
			if werr == unix.EINTR {
				continue
			}
			return werr
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		// Drop what was written, keeping the unwritten rest of a buffer.
		for n > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
			} else {
				bufs[0] = bufs[0][n:]
				n = 0
			}
		}
	}
	return nil
}

func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fdatasync(int(fd)) }); err != nil {
		return err
	}
	return serr
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic writes head+body to path through a synced temporary file
// and a rename, then syncs the directory.
func writeFileAtomic(path string, head, body []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_, err = f.Write(head)
	if err == nil {
		_, err = f.Write(body)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(filepath.Dir(path))
}
