package storage

import (
	"errors"
	"time"
)

// ApplyRetention deletes whole segments from the front of the log that are
// past retention.ms (by their newest timestamp) or that keep the log above
// retention.bytes. Only committed segments go. The active segment is rolled
// first when all of it has expired, so an idle partition also empties.
func (l *Log) ApplyRetention(now time.Time) error {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.Lock()
	dropped, err := l.applyRetentionLocked(now)
	l.mu.Unlock()
	return errors.Join(err, l.finishDelete(dropped))
}

// applyRetentionLocked takes the segments retention deletes off the log and
// returns them for finishDelete.
func (l *Log) applyRetentionLocked(now time.Time) ([]*segment, error) {
	if l.closed {
		return nil, ErrClosed
	}
	var dropped []*segment
	take := func(del func(*segment) bool) error {
		d, err := l.deleteSegmentsLocked(del)
		dropped = append(dropped, d...)
		return err
	}
	cfg := l.cfg
	if cfg.RetentionMs >= 0 {
		cutoff := now.Add(-cfg.RetentionMs).UnixMilli()
		expired := func(s *segment) bool { return s.maxTimestamp() < cutoff }
		if err := take(expired); err != nil {
			return dropped, err
		}
		// An idle active segment is rolled to be deleted only once it holds
		// a record that expired: one holding only raft's own entries (a new
		// leader's empty entry) frees nothing, and deleting it would leave a
		// follower that has not fetched it unable to catch up.
		if a := l.active(); len(l.segs) == 1 && a.idx.len() > 0 && a.maxTimestamp() >= 0 && expired(a) && a.lastIndex() <= l.committed {
			if err := l.roll(); err != nil {
				return dropped, err
			}
			if err := take(expired); err != nil {
				return dropped, err
			}
		}
	}
	if cfg.RetentionBytes >= 0 {
		var size int64
		for _, s := range l.segs {
			size += s.size
		}
		excess := size - cfg.RetentionBytes
		if err := take(func(s *segment) bool {
			if excess < s.size {
				return false
			}
			excess -= s.size
			return true
		}); err != nil {
			return dropped, err
		}
	}
	return dropped, nil
}
