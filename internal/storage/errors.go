package storage

import (
	"errors"
	"fmt"
)

// ErrCompacted is returned for raft indexes below the first index of the log.
var ErrCompacted = errors.New("requested index is below the start of the log")

// ErrUnavailable is returned for raft indexes above the last index.
var ErrUnavailable = errors.New("requested index is beyond the end of the log")

// ErrClosed is returned by operations on a closed log or store.
var ErrClosed = errors.New("log is closed")

// OffsetOutOfRangeError is returned for Kafka offsets outside
// [logStartOffset, nextOffset].
type OffsetOutOfRangeError struct {
	Offset, LogStart, NextOffset int64
}

func (e *OffsetOutOfRangeError) Error() string {
	return fmt.Sprintf("offset %d is out of range [%d, %d]", e.Offset, e.LogStart, e.NextOffset)
}

// CorruptionError names the place where stored data failed its checks.
// Readers never return data from past that place.
type CorruptionError struct {
	Path  string // segment file
	Pos   int64  // byte position of the damaged frame
	Index uint64 // raft index expected there
	Err   error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt log data in %s at byte %d (raft index %d): %v", e.Path, e.Pos, e.Index, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }
