package raftnode

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-stream/chronik/internal/storage"
)

// A group's configuration is kept with its history: each configuration
// with the index of the entry that brought it in, from the one in force at
// the log's start on. A snapshot of a partition is made at the entry
// before the log's first, and must carry the configuration in force there,
// not the current one: a follower installing it replays every
// configuration change after it, and a change replayed onto a later
// configuration breaks it (a voter added again becomes a learner).
//
// On disk (the log's opaque configuration bytes):
//
//	byte   confsMagic
//	uvarint count
//	per configuration: uvarint index, uvarint size, raftpb.ConfState
//
// Bytes not starting with confsMagic are a bare raftpb.ConfState, as
// earlier releases and saved snapshots write it: the configuration in
// force from the log's start on. A protobuf message never starts with
// confsMagic: its low three bits would be wire type 7, which does not exist.
const confsMagic = 0xff

// confAt is a configuration and the index from which it is in force.
type confAt struct {
	index uint64
	conf  raftpb.ConfState
}

func decodeConfs(b []byte) ([]confAt, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != confsMagic {
		var cs raftpb.ConfState
		if err := cs.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("decode raft configuration: %w", err)
		}
		return []confAt{{conf: cs}}, nil
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("decode raft configuration history: bad count")
	}
	b = b[k:]
	out := make([]confAt, 0, n)
	for range n {
		idx, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return nil, fmt.Errorf("decode raft configuration history: bad index")
		}
		size, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 || uint64(len(b)-k1-k2) < size {
			return nil, fmt.Errorf("decode raft configuration history: bad size")
		}
		var cs raftpb.ConfState
		if err := cs.Unmarshal(b[k1+k2 : k1+k2+int(size)]); err != nil {
			return nil, fmt.Errorf("decode raft configuration at %d: %w", idx, err)
		}
		out = append(out, confAt{index: idx, conf: cs})
		b = b[k1+k2+int(size):]
	}
	return out, nil
}

func encodeConfs(confs []confAt) ([]byte, error) {
	out := []byte{confsMagic}
	out = binary.AppendUvarint(out, uint64(len(confs)))
	for _, c := range confs {
		b, err := c.conf.Marshal()
		if err != nil {
			return nil, err
		}
		out = binary.AppendUvarint(out, c.index)
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

// SnapshotConfState returns the configuration a saved snapshot was taken
// with. A snapshot this node took holds one configuration; one installed
// from the leader holds it in the log's configuration history format.
func SnapshotConfState(snap storage.Snapshot) (raftpb.ConfState, error) {
	confs, err := decodeConfs(snap.Conf)
	if err != nil {
		return raftpb.ConfState{}, fmt.Errorf("decode the configuration of snapshot %d: %w", snap.Index, err)
	}
	cs, ok := confAtIndex(confs, snap.Index)
	if !ok {
		return raftpb.ConfState{}, fmt.Errorf("snapshot %d holds no configuration in force at its index", snap.Index)
	}
	return cs, nil
}

// confAtIndex returns the configuration in force at index: the last one
// brought in at or before it.
func confAtIndex(confs []confAt, index uint64) (raftpb.ConfState, bool) {
	for i := len(confs) - 1; i >= 0; i-- {
		if confs[i].index <= index {
			return confs[i].conf, true
		}
	}
	return raftpb.ConfState{}, false
}

// withConf adds the configuration brought in at index and drops those no
// snapshot can need: a snapshot is at firstIndex-1 or later, so of the
// configurations at or before that, only the last is kept.
func withConf(confs []confAt, index uint64, cs raftpb.ConfState, firstIndex uint64) []confAt {
	// A configuration brought in again at an index the history already
	// passes (a replaced log tail) replaces what followed it.
	for len(confs) > 0 && confs[len(confs)-1].index >= index {
		confs = confs[:len(confs)-1]
	}
	confs = append(confs, confAt{index: index, conf: cs})
	keepFrom := 0
	for i := range confs {
		if confs[i].index <= firstIndex-1 {
			keepFrom = i
		}
	}
	return confs[keepFrom:]
}

// ConfStateAt returns the encoded raft configuration (raftpb.ConfState)
// in force at index in log: what a snapshot taken there carries.
func ConfStateAt(log *storage.Log, index uint64) ([]byte, error) {
	confs, err := decodeConfs(log.ConfState())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", log.Name(), err)
	}
	cs, ok := confAtIndex(confs, index)
	if !ok {
		return nil, fmt.Errorf("%s: no raft configuration is known at index %d", log.Name(), index)
	}
	return cs.Marshal()
}
