package group

import (
	"slices"
	"time"
)

// Offsets retention. Every OffsetsRetentionCheckInterval the shard expires
// offsets, as Kafka's offsets.retention.minutes does:
//
//   - In an Empty group an offset expires OffsetsRetention after the later
//     of its commit and the moment the group became Empty (Kafka counts
//     from the latter only, which expires a commit made to an
//     already-empty group at once; Chronik keeps it the full retention).
//   - In a Stable "consumer" group, offsets of topics no member subscribes
//     to expire OffsetsRetention after their commit.
//   - An offset committed with a retention time (OffsetCommit v2-4)
//     expires at its expire timestamp instead.
//   - Offsets with a commit in flight are kept.
//
// Expired offsets are deleted with tombstones (one batch per group). An
// Empty group left without offsets is deleted too (tombstone of its
// metadata), as Kafka does.

func (s *shard) scheduleSweep() {
	s.sweepTimer = s.after(s.c.cfg.OffsetsRetentionCheckInterval, func() {
		s.sweep(time.Now())
		s.scheduleSweep()
	})
}

func (s *shard) sweep(now time.Time) {
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		g := s.groups[id]
		if g.state == stateDead || g.inflight > 0 {
			continue
		}
		expired := s.expiredOffsets(g, now)
		if g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 &&
			len(g.pendingCommits) == 0 && len(expired) == len(g.offsets) {
			if g.meta == nil && len(g.offsets) == 0 {
				s.maybeDrop(g)
				continue
			}
			n := len(expired)
			s.removeGroup(g, func(err error) {
				if err != nil {
					s.log.Warn("removing expired group failed", "group", id, "err", err)
					return
				}
				s.log.Info("removed expired group", "group", id, "offsets", n)
			})
			continue
		}
		if len(expired) == 0 {
			continue
		}
		recs := make([]record, len(expired))
		for i, tp := range expired {
			recs[i] = record{key: offsetKey(id, tp)}
		}
		g.inflight++
		s.append([][]byte{buildBatch(recs, now.UnixMilli())}, func(err error) {
			g.inflight--
			if err != nil {
				s.log.Warn("expiring offsets failed", "group", id, "err", err)
				return
			}
			for _, tp := range expired {
				delete(g.offsets, tp)
			}
			s.log.Info("expired offsets", "group", id, "offsets", len(expired))
			s.maybeDrop(g)
		})
	}
}

// expiredOffsets lists the offsets of g that have expired at now.
func (s *shard) expiredOffsets(g *group, now time.Time) []topicPartition {
	retention := s.c.cfg.OffsetsRetention.Milliseconds()
	nowMs := now.UnixMilli()
	var since int64 // offsets do not expire before since + retention
	var subscribed map[string]bool
	switch g.state {
	case stateEmpty:
		if g.protocolType != "" {
			since = g.stateSince.UnixMilli()
		}
	case stateStable:
		topics, known := g.subscribedTopics()
		if !known {
			return nil
		}
		subscribed = topics
	default:
		return nil
	}
	var out []topicPartition
	for tp, o := range g.offsets {
		if g.pendingCommits[tp] > 0 || subscribed[tp.topic] {
			continue
		}
		if o.expireTime >= 0 {
			if nowMs >= o.expireTime {
				out = append(out, tp)
			}
			continue
		}
		if nowMs-max(o.commitTime, since) >= retention {
			out = append(out, tp)
		}
	}
	slices.SortFunc(out, compareTP)
	return out
}
