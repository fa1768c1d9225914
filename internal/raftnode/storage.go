package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-stream/chronik/internal/storage"
)

// logStorage serves raft's reads from the partition log, and the most
// recent entries from memory: raft reads every committed entry back to
// apply it, usually right after appending it, and a follower that is a
// little behind is sent entries from there too. Used only on the group's
// worker, so it needs no lock.
type logStorage struct {
	log    *storage.Log
	logger *slog.Logger
	// maker, if set, makes the group's snapshots (partitions); otherwise
	// they are those saved beside the log (the catalog).
	maker SnapshotMaker
	// startApplied is the applied index the group started from.
	startApplied uint64
	// recent holds the entries appended and still needed (not yet applied
	// here or not yet on every follower), contiguous, within the bounds
	// below, and less while the node's groups together hold more than the
	// node's cache bound (shared).
	recent      []raftpb.Entry
	recentBytes int
	shared      *cacheBound
	// applied is the group's applied index as of its last round: entries
	// above it are read again soon (to apply them), so they are kept
	// longer than those kept only for followers. The first appliedCount
	// entries of recent are applied, appliedBytes of data.
	applied      uint64
	appliedCount int
	appliedBytes int
}

// cacheBound is the bound on the entries all groups of a node keep in
// memory together (raft.advanced.entry_cache_bytes).
type cacheBound struct {
	limit int64
	used  atomic.Int64
}

// A group keeps at most groupCacheMax bytes of entries in memory, of which
// at most appliedCacheMax already applied (kept only for followers that
// lag). Entries not applied yet are kept first: raft reads each of them
// back to apply it, and reading them from the log instead made rounds
// slow under load. An entry's data shares the buffer of the request that
// carried it (a produce request holds batches of several partitions), so
// entries are also released as soon as nothing needs them: an idle
// partition keeps none.
const (
	groupCacheMax   = 32 << 20
	appliedCacheMax = 4 << 20
)

// remember keeps appended entries (dropping any it held from their first
// index on: raft replaced them) and trims to the budgets.
func (s *logStorage) remember(ents []raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	first := ents[0].Index
	if n := len(s.recent); n > 0 && (first <= s.recent[n-1].Index) {
		keep := 0
		for keep < n && s.recent[keep].Index < first {
			keep++
		}
		s.drop(keep, n)
		s.recent = s.recent[:keep]
		s.appliedCount = min(s.appliedCount, keep)
	}
	if n := len(s.recent); n > 0 && s.recent[n-1].Index+1 != first {
		s.forget()
	}
	added := 0
	for _, e := range ents {
		s.recent = append(s.recent, e)
		added += len(e.Data)
	}
	s.recentBytes += added
	s.shared.used.Add(int64(added))
	s.trim()
}

// trim drops the oldest entries while the group or the node holds more
// than its bound, or the group holds more than appliedCacheMax of entries
// already applied; it keeps the newest entry (raft reads it at once to
// apply or send it).
func (s *logStorage) trim() {
	n := 0
	total, applied, shared := s.recentBytes, s.appliedBytes, s.shared.used.Load()
	for n < len(s.recent)-1 && (total > groupCacheMax || shared > s.shared.limit || n < s.appliedCount && applied > appliedCacheMax) {
		size := len(s.recent[n].Data)
		if n < s.appliedCount {
			applied -= size
		}
		total -= size
		shared -= int64(size)
		n++
	}
	if n > 0 {
		s.dropFront(n)
	}
}

// dropFront drops the first n entries.
func (s *logStorage) dropFront(n int) {
	s.drop(0, n)
	s.recent = append(s.recent[:0], s.recent[n:]...)
	s.appliedCount = max(s.appliedCount-n, 0)
}

// drop uncounts the entries recent[from:to] and clears them.
func (s *logStorage) drop(from, to int) {
	n, applied := 0, 0
	for i, e := range s.recent[from:to] {
		n += len(e.Data)
		if from+i < s.appliedCount {
			applied += len(e.Data)
		}
	}
	s.recentBytes -= n
	s.appliedBytes -= applied
	s.shared.used.Add(-int64(n))
	clear(s.recent[from:to])
}

// release drops the entries up to index upTo: applied here and held by
// every follower, raft asks for them only in a rare catch-up, which reads
// the log.
func (s *logStorage) release(upTo, applied uint64) {
	moved := applied != s.applied
	s.applied = applied
	for s.appliedCount < len(s.recent) && s.recent[s.appliedCount].Index <= applied {
		s.appliedBytes += len(s.recent[s.appliedCount].Data)
		s.appliedCount++
	}
	if len(s.recent) == 0 {
		return
	}
	if s.recent[0].Index <= upTo {
		n := 0
		for n < len(s.recent) && s.recent[n].Index <= upTo {
			n++
		}
		s.dropFront(n)
	}
	if moved {
		s.trim() // entries now applied may be over their bound
	}
}

func (s *logStorage) forget() {
	s.drop(0, len(s.recent))
	s.recent = s.recent[:0]
	s.appliedCount, s.appliedBytes = 0, 0
}

// fromMemory returns entries [lo, hi) from memory if it holds them all.
func (s *logStorage) fromMemory(lo, hi, maxSize uint64) ([]raftpb.Entry, bool) {
	if len(s.recent) == 0 || lo < s.recent[0].Index || hi-1 > s.recent[len(s.recent)-1].Index || lo >= hi {
		return nil, false
	}
	from := int(lo - s.recent[0].Index)
	to := int(hi - s.recent[0].Index)
	var size uint64
	n := from
	for ; n < to; n++ {
		size += uint64(s.recent[n].Size())
		if size > maxSize && n > from {
			break
		}
	}
	return append([]raftpb.Entry(nil), s.recent[from:n]...), true
}

var _ raft.Storage = (*logStorage)(nil)

// confState returns the group's configuration as of the applied index
// raft starts from: raft applies the configuration changes after it again
// (they are applied before the hard state that says so is saved), and a
// change applied twice would break the configuration.
func (s *logStorage) confState() (raftpb.ConfState, error) {
	confs, err := decodeConfs(s.log.ConfState())
	if err != nil || len(confs) == 0 {
		if err != nil {
			err = fmt.Errorf("%s: %w", s.log.Name(), err)
		}
		return raftpb.ConfState{}, err
	}
	cs, ok := confAtIndex(confs, s.startApplied)
	if !ok {
		return raftpb.ConfState{}, fmt.Errorf("%s: no raft configuration is known at applied index %d", s.log.Name(), s.startApplied)
	}
	return cs, nil
}

func (s *logStorage) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	h := s.log.HardState()
	hs := raftpb.HardState{Term: h.Term, Vote: h.Vote, Commit: h.Commit}
	// The commit index is checkpointed lazily and can never exceed what was
	// durable; still, never hand raft a commit beyond the log.
	if last := s.log.LastIndex(); hs.Commit > last {
		s.logger.Warn("hard state commit beyond the log; clamping", "commit", hs.Commit, "last_index", last)
		hs.Commit = last
	}
	if first := s.log.FirstIndex(); hs.Commit < first-1 {
		hs.Commit = first - 1
	}
	cs, err := s.confState()
	return hs, cs, err
}

func (s *logStorage) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	if out, ok := s.fromMemory(lo, hi, maxSize); ok {
		return out, nil
	}
	ents, err := s.log.Entries(lo, hi, maxSize)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]raftpb.Entry, len(ents))
	for i, e := range ents {
		out[i] = raftpb.Entry{Index: e.Index, Term: e.Term, Type: raftpb.EntryType(e.Type), Data: e.Data}
	}
	return out, nil
}

func (s *logStorage) Term(i uint64) (uint64, error) {
	t, err := s.log.Term(i)
	return t, mapErr(err)
}

func (s *logStorage) LastIndex() (uint64, error) { return s.log.LastIndex(), nil }

func (s *logStorage) FirstIndex() (uint64, error) { return s.log.FirstIndex(), nil }

// Snapshot returns the snapshot a follower behind the log's start
// installs: for a partition, made now as of the entry before the log's
// first; otherwise the latest saved one. A group without one answers that
// none is available, and raft keeps probing.
func (s *logStorage) Snapshot() (raftpb.Snapshot, error) {
	if s.maker != nil {
		return s.makeSnapshot()
	}
	snap, ok, err := s.log.LatestSnapshot()
	if err != nil {
		return raftpb.Snapshot{}, &storageError{err}
	}
	if !ok {
		return raftpb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	cs, err := SnapshotConfState(snap)
	if err != nil {
		return raftpb.Snapshot{}, &storageError{err}
	}
	return raftpb.Snapshot{Data: snap.Data, Metadata: raftpb.SnapshotMetadata{Index: snap.Index, Term: snap.Term, ConfState: cs}}, nil
}

// makeSnapshot builds a partition's snapshot at the entry before the log's
// first, with the configuration in force at that entry.
func (s *logStorage) makeSnapshot() (raftpb.Snapshot, error) {
	index := s.log.FirstIndex() - 1
	if index == 0 {
		return raftpb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	term, err := s.log.Term(index)
	if err != nil {
		return raftpb.Snapshot{}, mapErr(err)
	}
	confs, err := decodeConfs(s.log.ConfState())
	if err != nil {
		return raftpb.Snapshot{}, &storageError{err}
	}
	cs, ok := confAtIndex(confs, index)
	if !ok {
		return raftpb.Snapshot{}, &storageError{fmt.Errorf("no raft configuration is known at index %d", index)}
	}
	data, err := s.maker.MakeSnapshot(index)
	if err != nil {
		return raftpb.Snapshot{}, &storageError{fmt.Errorf("make the snapshot at %d: %w", index, err)}
	}
	s.logger.Info("sending a snapshot of the log's start to a follower behind it", "index", index, "term", term, "bytes", len(data))
	return raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{Index: index, Term: term, ConfState: cs}}, nil
}

// storageError marks an error of the log that raft cannot handle (it
// panics with it): the group's worker recovers it and fails the group.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrCompacted):
		return raft.ErrCompacted
	case errors.Is(err, storage.ErrUnavailable):
		return raft.ErrUnavailable
	default:
		return &storageError{err}
	}
}
