package group

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// Loading a partition (BecameLeader). The loader goroutine reads the
// partition from its log start to the high watermark it sees first and
// replays every record into a loadState; only when that is complete does
// the loop install it and start serving. A partition is never served from
// a partial load: a failed read starts the load over after loadRetry.

var errStopped = errors.New("shard stopped")

// loadState is a replayed partition: the last value of every key.
type loadState struct {
	groups  map[string]*loadedGroup
	bytes   int64 // size of the batches read
	records int
	skipped int // records of unknown types or that did not decode
	end     int64
}

type loadedGroup struct {
	meta    *kmsg.GroupMetadataValue // nil: none or tombstoned
	raw     []byte
	offsets map[topicPartition]offsetCommit
}

// load runs on its own goroutine.
func (s *shard) load() {
	defer s.c.wg.Done()
	start := time.Now()
	for {
		st, err := s.read()
		if err == nil {
			s.q.push(func() { s.install(st, start) })
			return
		}
		if errors.Is(err, errStopped) {
			return
		}
		s.log.Warn("loading offsets partition failed; retrying", "err", err)
		select {
		case <-s.quit:
			return
		case <-time.After(loadRetry):
		}
	}
}

func (s *shard) stopping() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// read replays the partition from its log start to its high watermark.
func (s *shard) read() (*loadState, error) {
	parts := s.c.parts
	st := &loadState{groups: map[string]*loadedGroup{}}
	start := parts.LogStartOffset(s.p)
	off, target := start, int64(-1)
	for target < 0 || off < target {
		if s.stopping() {
			return nil, errStopped
		}
		batches, next, hw, err := parts.Read(s.p, off, loadReadBytes)
		if err != nil {
			return nil, fmt.Errorf("read from offset %d: %w", off, err)
		}
		if target < 0 {
			target = hw
		}
		if len(batches) == 0 {
			if off >= target {
				break
			}
			if next > off {
				off = next
				continue
			}
			return nil, fmt.Errorf("no batch at offset %d below the high watermark %d", off, target)
		}
		if err := st.replay(batches, start, s); err != nil {
			return nil, fmt.Errorf("batches from offset %d: %w", off, err)
		}
		if next <= off {
			return nil, fmt.Errorf("read from offset %d made no progress", off)
		}
		off = next
	}
	st.end = off
	return st, nil
}

// replay applies whole concatenated batches; records below start (in a
// batch that straddles the log start) are skipped.
func (st *loadState) replay(b []byte, start int64, s *shard) error {
	for len(b) > 0 {
		n := recordbatch.Size(b)
		if n < recordbatch.HeaderSize || n > len(b) {
			return fmt.Errorf("batch of %d bytes in %d", n, len(b))
		}
		batch := b[:n]
		b = b[n:]
		st.bytes += int64(n)
		h, err := recordbatch.ParseHeader(batch)
		if err != nil {
			return err
		}
		if h.IsControl() {
			continue
		}
		recs, err := recordbatch.RecordsOf(batch)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Offset < start || r.Key == nil {
				continue
			}
			e, err := decodeEntry(r.Key, r.Value)
			if err != nil {
				st.skipped++
				level := "skipping undecodable record"
				if errors.Is(err, errUnknownKey) {
					level = "skipping record of an unknown type"
				}
				s.log.Warn(level, "offset", r.Offset, "err", err)
				continue
			}
			st.records++
			st.take(e)
		}
	}
	return nil
}

func (st *loadState) take(e logEntry) {
	lg := st.groups[e.group]
	if lg == nil {
		lg = &loadedGroup{offsets: map[topicPartition]offsetCommit{}}
		st.groups[e.group] = lg
	}
	switch {
	case e.isOffset && e.offset == nil:
		delete(lg.offsets, e.tp)
	case e.isOffset:
		lg.offsets[e.tp] = *e.offset
	case e.isGroup:
		lg.meta, lg.raw = e.meta, e.metaRaw
	}
}

// install makes a loaded partition's groups live and starts serving them.
// Groups that had members come back Stable in their last generation, with
// those members and assignments; each member's session starts now, so
// members that keep heartbeating stay, and the others expire and cause a
// rebalance, as in Kafka.
func (s *shard) install(st *loadState, started time.Time) {
	if s.stopped {
		return
	}
	now := time.Now()
	offsets := 0
	for id, lg := range st.groups {
		if lg.meta == nil && len(lg.offsets) == 0 {
			continue
		}
		g := newGroup(id)
		g.offsets = lg.offsets
		offsets += len(lg.offsets)
		if v := lg.meta; v != nil {
			g.meta = lg.raw
			g.protocolType = v.ProtocolType
			g.generation = v.Generation
			if v.CurrentStateTimestamp > 0 {
				g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
			}
			if v.Protocol != nil && *v.Protocol != "" && len(v.Members) > 0 {
				g.protocol = *v.Protocol
				if v.Leader != nil {
					g.leader = *v.Leader
				}
				g.state = stateStable
				for _, vm := range v.Members {
					m := &member{
						id:               vm.MemberID,
						clientID:         vm.ClientID,
						clientHost:       vm.ClientHost,
						sessionTimeout:   msDuration(vm.SessionTimeoutMillis),
						rebalanceTimeout: msDuration(vm.RebalanceTimeoutMillis),
						protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
						assignment:       vm.Assignment,
						seen:             now,
					}
					if vm.InstanceID != nil {
						m.instanceID = strPtr(*vm.InstanceID)
					}
					if m.rebalanceTimeout <= 0 {
						m.rebalanceTimeout = m.sessionTimeout
					}
					g.add(m)
					s.startSession(g, m)
				}
				if g.members[g.leader] == nil {
					g.leader = g.sortedMembers()[0].id
				}
			}
		}
		s.groups[id] = g
	}
	s.sinceCompaction = st.bytes
	s.loaded = true
	s.log.Info("loaded offsets partition", "groups", len(s.groups), "offsets", offsets,
		"records", st.records, "skipped", st.skipped, "bytes", st.bytes, "end", st.end, "took", time.Since(started))
	s.scheduleSweep()
	s.maybeCompact()
}
