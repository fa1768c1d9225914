package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// Snapshot is a raft snapshot kept beside a log: the state its owner
// applied up to Index (an entry of Term), opaque here, and the raft
// configuration (an encoded raftpb.ConfState) at that point.
type Snapshot struct {
	Index, Term uint64
	Conf        []byte
	Data        []byte
}

// Snapshot files are snapshot-<index, 20 digits>, written atomically:
//
//	0  [8]  magic "CHRONIKS"
//	8  u32  version
//	12 u64  index
//	20 u64  term
//	28 u32  length of conf, then conf
//	   u32  length of data, then data
//	   u32  CRC-32C of everything before it
const (
	snapshotPrefix  = "snapshot-"
	snapshotMagic   = "CHRONIKS"
	snapshotVersion = 1
)

func snapshotName(index uint64) string { return fmt.Sprintf("%s%020d", snapshotPrefix, index) }

func encodeSnapshot(s Snapshot) []byte {
	b := make([]byte, 0, 40+len(s.Conf)+len(s.Data))
	b = append(b, snapshotMagic...)
	b = binary.BigEndian.AppendUint32(b, snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, s.Index)
	b = binary.BigEndian.AppendUint64(b, s.Term)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Conf)))
	b = append(b, s.Conf...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Data)))
	b = append(b, s.Data...)
	return binary.BigEndian.AppendUint32(b, recordbatch.Checksum(b))
}

func decodeSnapshot(b []byte) (Snapshot, error) {
	var s Snapshot
	if len(b) < 36 || !bytes.Equal(b[:8], []byte(snapshotMagic)) {
		return s, errors.New("not a snapshot file")
	}
	if got, want := recordbatch.Checksum(b[:len(b)-4]), binary.BigEndian.Uint32(b[len(b)-4:]); got != want {
		return s, fmt.Errorf("CRC mismatch: stored %08x, computed %08x", want, got)
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != snapshotVersion {
		return s, fmt.Errorf("snapshot format version %d; this release reads version %d", v, snapshotVersion)
	}
	s.Index, s.Term = binary.BigEndian.Uint64(b[12:]), binary.BigEndian.Uint64(b[20:])
	p := b[28 : len(b)-4]
	field := func() ([]byte, error) {
		if len(p) < 4 || uint64(len(p)-4) < uint64(binary.BigEndian.Uint32(p)) {
			return nil, errors.New("cut short")
		}
		n := binary.BigEndian.Uint32(p)
		f := bytes.Clone(p[4 : 4+n])
		p = p[4+n:]
		return f, nil
	}
	var err error
	if s.Conf, err = field(); err != nil {
		return s, err
	}
	if s.Data, err = field(); err != nil {
		return s, err
	}
	if len(p) != 0 {
		return s, errors.New("trailing bytes")
	}
	return s, nil
}

// snapshotIndexes lists the indexes of the snapshot files in dir, oldest
// first.
func snapshotIndexes(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []uint64
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), snapshotPrefix)
		if !ok || strings.Contains(rest, ".") {
			continue
		}
		if i, err := strconv.ParseUint(rest, 10, 64); err == nil {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out, nil
}

// SaveSnapshot stores s durably and removes the older snapshots. The
// log's entries are left alone: CompactTo drops those s covers.
func (l *Log) SaveSnapshot(s Snapshot) error {
	if err := writeFileAtomic(filepath.Join(l.dir, snapshotName(s.Index)), encodeSnapshot(s), nil); err != nil {
		return fmt.Errorf("save snapshot of %s at %d: %w", l.name, s.Index, err)
	}
	old, err := snapshotIndexes(l.dir)
	if err != nil {
		return err
	}
	for _, i := range old {
		if i < s.Index {
			os.Remove(filepath.Join(l.dir, snapshotName(i)))
		}
	}
	return nil
}

// LatestSnapshot returns the newest snapshot; ok is false when there is
// none.
func (l *Log) LatestSnapshot() (s Snapshot, ok bool, err error) {
	idx, err := snapshotIndexes(l.dir)
	if err != nil || len(idx) == 0 {
		return Snapshot{}, false, err
	}
	path := filepath.Join(l.dir, snapshotName(idx[len(idx)-1]))
	b, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("read snapshot: %w", err)
	}
	if s, err = decodeSnapshot(b); err != nil {
		return Snapshot{}, false, &CorruptionError{Path: path, Index: idx[len(idx)-1], Err: err}
	}
	return s, true, nil
}

// CompactTo drops the sealed segments whose entries are all at or below
// index and committed: a snapshot at index holds what they did. It
// returns how many segments went.
func (l *Log) CompactTo(index uint64) (int, error) {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	dropped, err := l.deleteSegmentsLocked(func(s *segment) bool { return s.lastIndex() <= index })
	l.mu.Unlock()
	return len(dropped), errors.Join(err, l.finishDelete(dropped))
}

// InstallSnapshot replaces the whole log with snapshot s received from
// the leader: s is saved, the entries are dropped, and the log restarts
// after (s.Index, s.Term) at Kafka offset nextOffset with s's raft
// configuration.
func (l *Log) InstallSnapshot(s Snapshot, nextOffset int64) error {
	if err := l.SaveSnapshot(s); err != nil {
		return err
	}
	if err := l.Reset(s.Index, s.Term, nextOffset); err != nil {
		return fmt.Errorf("install snapshot at %d: %w", s.Index, err)
	}
	return l.SetConfState(s.Conf)
}
