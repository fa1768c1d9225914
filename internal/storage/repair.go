package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// repairFile records, in a log's directory, the last index the log held
// before DiscardFrom dropped entries that may have been committed.
const repairFile = "repair.state"

// DiscardFrom drops entry index and every entry after it, committed ones
// too. It exists to repair a damaged log from the other replicas, which
// raft does once the damaged entries are gone; it must not be used on a
// log that has no other copy.
//
// The commit index, the high watermark and raft's commit go back to what
// remains, and raft's term goes up by one (see below). Before anything is dropped, the last index the log held is
// recorded durably (RepairUntil): the entries up to it may have counted
// towards a quorum, so until the log holds that index again the replica
// must not help elect a leader that might lack them.
func (l *Log) DiscardFrom(index uint64) error {
	l.mu.Lock()
	last := l.lastIndex()
	if index > last {
		l.mu.Unlock()
		return nil
	}
	if index < l.firstIndex() {
		l.mu.Unlock()
		return fmt.Errorf("discard from %d: %w", index, ErrCompacted)
	}
	if err := writeRepairUntil(l.dir, max(last, readRepairUntil(l.dir))); err != nil {
		l.mu.Unlock()
		return err
	}
	keep := index - 1
	if l.committed > keep {
		l.committed = keep
		l.hw, _ = l.offsetAfterLocked(keep)
		l.logStart = min(l.logStart, l.hw)
	}
	l.hs.Commit = min(l.hs.Commit, keep)
	// A raft leader never forgets how far a follower's log reached, and
	// would send it a commit index beyond its log (which raft treats as
	// fatal). A higher term, with no vote cast in it, makes the current
	// leader step down at its next contact; the next one probes this log
	// afresh.
	l.hs.Term++
	l.hs.Vote = 0
	err := l.truncateAfterLocked(keep)
	truncated := l.truncated
	l.truncated = nil
	l.mu.Unlock()
	callWaiters(truncated, ErrTruncated)
	l.store.flusher.markDirty(l)
	if err != nil {
		return fmt.Errorf("discard from %d: %w", index, err)
	}
	l.store.stateChanged()
	if err := l.store.writeCheckpoint(); err != nil {
		return fmt.Errorf("discard from %d: %w", index, err)
	}
	l.logger.Warn("discarded damaged entries; they are fetched again from the other replicas",
		"from_index", index, "last_index_was", last)
	return nil
}

// RepairUntil returns the index the log must reach again after a
// DiscardFrom before its replica may vote, CatchUpUnknown for a replica
// catching up with a group it joined, or 0 when it is doing neither.
func (l *Log) RepairUntil() uint64 { return readRepairUntil(l.dir) }

// CatchUpUnknown is RepairUntil's value for a replica that joined a
// running group with an empty log: the index it must reach is what the
// group's leader had committed when the replica first heard from it, and
// is not known yet.
const CatchUpUnknown = math.MaxUint64

// BeginCatchUp records durably that the replica of this (empty) log joined
// a running group: until it holds what the leader committed, the
// configurations it replays from the start of the group's log are not the
// group's, and its vote or candidacy in one could split the group. A
// restart while it catches up keeps the record.
func (l *Log) BeginCatchUp() error {
	if last := l.LastIndex(); last > 0 {
		return fmt.Errorf("begin catch-up of %s: the log already holds entries up to %d", l.name, last)
	}
	if err := writeRepairUntil(l.dir, CatchUpUnknown); err != nil {
		return fmt.Errorf("begin catch-up of %s: %w", l.name, err)
	}
	return nil
}

// EndRepair removes the repair record once the log holds RepairUntil again.
func (l *Log) EndRepair() error {
	if err := os.Remove(filepath.Join(l.dir, repairFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("end repair of %s: %w", l.name, err)
	}
	return syncDir(l.dir)
}

func readRepairUntil(dir string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, repairFile))
	if err != nil || len(b) != 8 {
		// Missing, or cut short by a crash while written (it is written
		// atomically, so only a foreign file gets here): not repairing.
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func writeRepairUntil(dir string, index uint64) error {
	return writeFileAtomic(filepath.Join(dir, repairFile), binary.BigEndian.AppendUint64(nil, index), nil)
}
