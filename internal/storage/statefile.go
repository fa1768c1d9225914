package storage

import (
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

// State files hold state derived from a log's entries up to an index (a
// partition's idempotent producer table, say), so that opening the log
// replays only the entries after it. They are named <kind>-<index, 20
// digits>.state, written atomically, and carry a CRC-32C after the data.
// A truncation removes those past the new end.
const stateFileSuffix = ".state"

func stateFileName(kind string, index uint64) string {
	return fmt.Sprintf("%s-%020d%s", kind, index, stateFileSuffix)
}

// stateFileIndexes lists the indexes of kind's state files, oldest first.
func stateFileIndexes(dir, kind string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []uint64
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), kind+"-")
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(rest, stateFileSuffix)
		if i, err := strconv.ParseUint(num, 10, 64); ok && err == nil {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out, nil
}

func validStateKind(kind string) bool {
	return kind != "" && strings.Trim(kind, "abcdefghijklmnopqrstuvwxyz") == ""
}

// stateFilesKept is how many state files of a kind are kept: the newest
// may be damaged, and the one before it still spares a full read.
const stateFilesKept = 2

// SaveState stores data as kind's state as of entry index, durably, and
// removes kind's older state files but the newest stateFilesKept.
func (l *Log) SaveState(kind string, index uint64, data []byte) error {
	if !validStateKind(kind) {
		return fmt.Errorf("bad state kind %q", kind)
	}
	body := binary.BigEndian.AppendUint32(append([]byte(nil), data...), recordbatch.Checksum(data))
	if err := writeFileAtomic(filepath.Join(l.dir, stateFileName(kind, index)), body, nil); err != nil {
		return fmt.Errorf("save %s state of %s at %d: %w", kind, l.name, index, err)
	}
	old, err := stateFileIndexes(l.dir, kind)
	if err != nil {
		return err
	}
	for k, i := range old {
		if k < len(old)-stateFilesKept {
			os.Remove(filepath.Join(l.dir, stateFileName(kind, i)))
		}
	}
	return nil
}

// LatestState returns kind's newest sound state at or below maxIndex; ok
// is false when there is none. A damaged file is skipped for the one
// before it, and reported (as a *CorruptionError) only when none is sound.
func (l *Log) LatestState(kind string, maxIndex uint64) (index uint64, data []byte, ok bool, err error) {
	idx, err := stateFileIndexes(l.dir, kind)
	if err != nil {
		return 0, nil, false, err
	}
	var damage error
	for i := len(idx) - 1; i >= 0; i-- {
		if idx[i] > maxIndex {
			continue
		}
		path := filepath.Join(l.dir, stateFileName(kind, idx[i]))
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, nil, false, fmt.Errorf("read %s: %w", path, err)
		}
		if len(b) < 4 || binary.BigEndian.Uint32(b[len(b)-4:]) != recordbatch.Checksum(b[:len(b)-4]) {
			damage = errors.Join(damage, &CorruptionError{Path: path, Index: idx[i], Err: errors.New("state file CRC mismatch")})
			continue
		}
		return idx[i], b[:len(b)-4], true, nil
	}
	return 0, nil, false, damage
}

// removeStateAfter removes every state file of an index above index: a
// truncation took away entries they were derived from.
func (l *Log) removeStateAfter(index uint64) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		num, ok := strings.CutSuffix(name, stateFileSuffix)
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(num, '-'); i >= 0 {
			if n, err := strconv.ParseUint(num[i+1:], 10, 64); err == nil && n > index {
				os.Remove(filepath.Join(l.dir, name))
			}
		}
	}
}
