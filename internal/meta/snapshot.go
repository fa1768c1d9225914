package meta

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/chronik-stream/chronik/internal/raftnode"
	"github.com/chronik-stream/chronik/internal/storage"
)

// SnapshotPolicy says when the catalog snapshots its state and drops the
// log entries the snapshot holds ([raft.snapshots]), so that a restart
// replays a snapshot and a short tail, and a follower that was away long
// installs the snapshot instead of entries the log no longer has.
type SnapshotPolicy struct {
	// MaxLogBytes: a snapshot is taken once the entries applied since the
	// last one hold this many bytes (max_log_size_mb)...
	MaxLogBytes int64
	// MinEntries: ...and at least this many were applied (min_interval_entries).
	MinEntries uint64
	// Compression of the snapshot: none, gzip or zstd.
	Compression string
}

// Snapshot data: one byte naming the codec, then the catalog State as
// JSON, compressed with it.
const (
	codecNone byte = 0
	codecGzip byte = 1
	codecZstd byte = 2
)

func encodeState(st *State, compression string) ([]byte, error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode catalog snapshot: %w", err)
	}
	switch compression {
	case "", "none":
		return append([]byte{codecNone}, raw...), nil
	case "gzip":
		var b bytes.Buffer
		b.WriteByte(codecGzip)
		w := gzip.NewWriter(&b)
		w.Write(raw)
		if err := w.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	case "zstd":
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			return nil, err
		}
		defer enc.Close()
		return enc.EncodeAll(raw, []byte{codecZstd}), nil
	}
	return nil, fmt.Errorf("unknown snapshot compression %q", compression)
}

func decodeState(b []byte) (*State, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("empty catalog snapshot")
	}
	var raw []byte
	switch b[0] {
	case codecNone:
		raw = b[1:]
	case codecGzip:
		r, err := gzip.NewReader(bytes.NewReader(b[1:]))
		if err != nil {
			return nil, fmt.Errorf("decode catalog snapshot: %w", err)
		}
		if raw, err = io.ReadAll(r); err != nil {
			return nil, fmt.Errorf("decode catalog snapshot: %w", err)
		}
	case codecZstd:
		dec, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		if raw, err = dec.DecodeAll(b[1:], nil); err != nil {
			return nil, fmt.Errorf("decode catalog snapshot: %w", err)
		}
	default:
		return nil, fmt.Errorf("catalog snapshot has unknown codec %d", b[0])
	}
	st := newState()
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("decode catalog snapshot: %w", err)
	}
	if st.Brokers == nil {
		st.Brokers = map[int32]Broker{}
	}
	if st.Topics == nil {
		st.Topics = map[string]*Topic{}
	}
	return st, nil
}

// maybeSnapshot snapshots the state once the policy says so; on the
// group's worker, after entries up to c.applied were applied.
func (c *Catalog) maybeSnapshot(term uint64) {
	p := c.policy
	if p.MinEntries == 0 || c.applied-c.snapIndex < p.MinEntries || c.bytesSinceSnap < p.MaxLogBytes {
		return
	}
	if err := c.snapshot(term); err != nil {
		// The log keeps its entries; the next apply tries again.
		c.logger.Error("catalog snapshot failed", "index", c.applied, "err", err)
	}
}

// Progressed implements raftnode.ProgressObserver. A member added to the
// group starts with no configuration and takes the log only from a
// snapshot that names it (from the first entry it would replay the log
// onto no configuration; raft ignores a snapshot that does not name it),
// and raft sends a snapshot only to a member behind the log's start. So
// while a member's log is empty (it says so, or has acknowledged nothing
// while raft sends it the log from the first entry), the leader makes
// sure its latest snapshot names the member and its log no longer starts
// at the first entry. A voter too: one of a new cluster's configured
// voters that starts after the others formed it joins with no
// configuration. Every leader checks: each node snapshots and compacts
// its own log, so one elected after the member was added may have
// neither.
//
// Compaction drops only segments the snapshot wholly holds; with changes
// appended beyond the applied index, the segment sealed for the snapshot
// holds them too and stays. The next try waits until they are applied.
func (c *Catalog) Progressed(l raftnode.Loop) {
	if c.applied == 0 || c.applied < c.joinSnapWait {
		return
	}
	log := c.group.Log()
	compacted := log.FirstIndex() > 1
	need := false
	for _, id := range l.EmptyLogs() {
		need = need || !compacted || !slices.Contains(c.snapMembers, id)
	}
	if !compacted {
		// Raft sends the log from the first entry to a member that has
		// acknowledged nothing; one that joined drops it without a word.
		l.WithProgress(func(id uint64, pr tracker.Progress) {
			need = need || id != c.self && pr.Match == 0 && pr.Next <= 1
		})
	}
	if !need {
		return
	}
	c.joinSnapWait = log.LastIndex()
	term, err := log.Term(c.applied)
	if err == nil {
		err = c.snapshot(term)
	}
	if err != nil {
		c.logger.Error("catalog snapshot for a new member failed", "index", c.applied, "err", err)
	}
}

// confMembers returns the members a raft configuration names.
func confMembers(cs raftpb.ConfState) []uint64 {
	return slices.Concat(cs.Voters, cs.Learners, cs.VotersOutgoing, cs.LearnersNext)
}

// snapshot writes the state as of c.applied (an entry of term) and drops
// the log's segments it covers.
func (c *Catalog) snapshot(term uint64) error {
	c.mu.RLock()
	data, err := encodeState(c.state, c.policy.Compression)
	index := c.applied
	c.mu.RUnlock()
	if err != nil {
		return err
	}
	log := c.group.Log()
	conf, err := raftnode.ConfStateAt(log, index)
	if err != nil {
		return err
	}
	snap := storage.Snapshot{Index: index, Term: term, Conf: conf, Data: data}
	cs, err := raftnode.SnapshotConfState(snap)
	if err != nil {
		return err
	}
	if err := log.SaveSnapshot(snap); err != nil {
		return err
	}
	c.snapIndex, c.bytesSinceSnap, c.snapMembers = index, 0, confMembers(cs)
	c.snapCount.Add(1)
	c.snapBytes.Store(uint64(len(data)))
	// Seal the active segment so that every entry the snapshot holds is in
	// a segment compaction may drop.
	if err := log.Roll(); err != nil {
		return err
	}
	dropped, err := log.CompactTo(index)
	c.logger.Info("catalog snapshot taken", "index", index, "bytes", len(data), "segments_dropped", dropped)
	return err
}

// Restore implements raftnode.SnapshotRestorer: the leader's snapshot
// replaces the state.
func (c *Catalog) Restore(snap raftpb.Snapshot) error {
	st, err := decodeState(snap.Data)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.state = st
	c.applied = snap.Metadata.Index
	clear(c.leftLive) // when brokers left, the snapshot does not say
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	c.snapIndex, c.bytesSinceSnap = snap.Metadata.Index, 0
	c.snapMembers = confMembers(snap.Metadata.ConfState)
	// A proposal whose entry the snapshot covers was committed or replaced
	// in entries this node never applied; the snapshot does not say which.
	c.pending = slices.DeleteFunc(c.pending, func(p pendingCall) bool {
		if p.index <= snap.Metadata.Index {
			p.cb(Result{Err: fmt.Errorf("%w: this node installed a snapshot covering the change, so whether it took effect is unknown", kerr.RequestTimedOut)})
			return true
		}
		return false
	})
	c.snapCount.Add(1)
	c.snapBytes.Store(uint64(len(snap.Data)))
	return nil
}

// SnapshotStats returns the snapshots taken or installed since start and
// the size of the last one.
func (c *Catalog) SnapshotStats() (count, bytes uint64) {
	return c.snapCount.Load(), c.snapBytes.Load()
}
