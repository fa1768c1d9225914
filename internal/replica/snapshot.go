package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-stream/chronik/internal/storage"
)

// A partition's raft snapshot is the start of its log: a follower whose
// next entry the leader no longer holds (retention or DeleteRecords
// removed it) restarts its log after the leader's first entry's
// predecessor and fetches the rest as entries. What goes with that point
// travels in the snapshot's data.
type partitionSnapshot struct {
	// NextOffset is the Kafka offset after the snapshot's index: the
	// offset the follower's log restarts at.
	NextOffset int64 `json:"next_offset"`
	// LogStartOffset is the leader's first readable offset.
	LogStartOffset int64 `json:"log_start_offset"`
	// Producers is the leader's committed producer table. It is ahead of
	// the snapshot's index; the follower then replays the entries after
	// the index on top of it, which leaves it, once caught up, with the
	// leader's table: each replayed batch is recorded again, newest last.
	Producers json.RawMessage `json:"producers"`
}

// snapshotStats counts the partition snapshots of a node, for
// chronik_raft_snapshot_count and chronik_raft_snapshot_size_bytes.
type snapshotStats struct {
	count, bytes atomic.Uint64
}

func (s *snapshotStats) add(n int) {
	if s != nil {
		s.count.Add(1)
		s.bytes.Add(uint64(n))
	}
}

// MakeSnapshot implements raftnode.SnapshotMaker; on the group's worker.
func (p *Partition) MakeSnapshot(index uint64) ([]byte, error) {
	next, err := p.log.OffsetAfter(index)
	if err != nil {
		return nil, fmt.Errorf("offset after %d: %w", index, err)
	}
	producers, err := p.producers.encodeCommitted()
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(partitionSnapshot{NextOffset: next, LogStartOffset: p.log.LogStartOffset(), Producers: producers})
	if err == nil {
		p.snapshots.add(len(data))
	}
	return data, err
}

// RestartOffset implements raftnode.SnapshotMaker.
func (p *Partition) RestartOffset(data []byte) (int64, error) {
	s, err := decodePartitionSnapshot(data)
	return s.NextOffset, err
}

// Restore implements raftnode.SnapshotRestorer: the log was reset to start
// after the snapshot; the producer table becomes the leader's, and is saved
// as of the snapshot's index so that a restart replays from there.
func (p *Partition) Restore(snap raftpb.Snapshot) error {
	s, err := decodePartitionSnapshot(snap.Data)
	if err != nil {
		return err
	}
	if err := p.producers.load(s.Producers); err != nil {
		return err
	}
	if err := p.log.SaveState(producerStateKind, snap.Metadata.Index, s.Producers); err != nil {
		return fmt.Errorf("save the producer table of snapshot %d: %w", snap.Metadata.Index, err)
	}
	p.producersSaved, p.bytesSinceSave = snap.Metadata.Index, 0
	p.snapshots.add(len(snap.Data))
	// The leader's log start may be past the restart offset (DeleteRecords
	// inside its first segment); it is taken once this log reaches it.
	if s.LogStartOffset > s.NextOffset {
		p.pendingLogStart = s.LogStartOffset
	}
	p.logger.Info("restarted the log from the leader's snapshot", "index", snap.Metadata.Index, "term", snap.Metadata.Term,
		"offset", s.NextOffset, "log_start_offset", s.LogStartOffset)
	p.publish()
	p.notifyHW()
	return nil
}

func decodePartitionSnapshot(data []byte) (partitionSnapshot, error) {
	var s partitionSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("decode partition snapshot: %w", err)
	}
	if s.NextOffset < 0 || s.LogStartOffset < 0 || len(s.Producers) == 0 {
		return s, errors.New("partition snapshot lacks its offsets or producer table")
	}
	return s, nil
}

// applyPendingLogStart moves the log start to the one a snapshot brought
// once the log has committed past it; on the worker.
func (p *Partition) applyPendingLogStart() {
	if p.pendingLogStart == 0 || p.log.HighWatermark() < p.pendingLogStart {
		return
	}
	start := p.pendingLogStart
	p.pendingLogStart = 0
	if err := p.log.SetLogStartOffset(start); err != nil && !errors.Is(err, storage.ErrClosed) {
		p.logger.Warn("could not move the log start to the leader's", "offset", start, "err", err)
	}
}
