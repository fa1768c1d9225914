package raftnode

import (
	"errors"
	"fmt"
	"log/slog"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-stream/chronik/internal/storage"
)

// logStorage serves raft's reads from the partition log.
type logStorage struct {
	log    *storage.Log
	logger *slog.Logger
}

var _ raft.Storage = (*logStorage)(nil)

func (s *logStorage) confState() (raftpb.ConfState, error) {
	var cs raftpb.ConfState
	if b := s.log.ConfState(); len(b) > 0 {
		if err := cs.Unmarshal(b); err != nil {
			return cs, fmt.Errorf("decode raft configuration of %s: %w", s.log.Name(), err)
		}
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

// Snapshot describes the log's start: everything before FirstIndex is gone
// (retention, DeleteRecords), so a follower that needs it must restart its
// log there. The state a snapshot has to carry beyond that (producer state)
// comes with snapshot support for followers.
func (s *logStorage) Snapshot() (raftpb.Snapshot, error) {
	return raftpb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrCompacted):
		return raft.ErrCompacted
	case errors.Is(err, storage.ErrUnavailable):
		return raft.ErrUnavailable
	default:
		return err
	}
}
