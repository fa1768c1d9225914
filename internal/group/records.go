package group

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
)

// The records of __consumer_offsets, in Kafka's own formats (kmsg holds the
// codecs). A key starts with an int16 version that says what it is:
//
//	0, 1  OffsetCommitKey   (group, topic, partition) → OffsetCommitValue
//	2     GroupMetadataKey  (group)                   → GroupMetadataValue
//	3+    newer record types (KIP-848 groups, ...) that this coordinator skips
//
// A nil value is a tombstone: the key is deleted. Replaying a partition
// from its log start keeps the last value of every key.
const (
	offsetKeyVersion        = 1 // what Kafka writes
	groupKeyVersion         = 2
	offsetValueVersion      = 3 // with leader epoch, without expire timestamp
	offsetValueVersionExpir = 1 // with an explicit expire timestamp (OffsetCommit v2-4 retention)
	groupValueVersion       = 3 // with group instance ids
)

// compactionHeader marks the first record of a compaction snapshot, so the
// coordinator can recognise the snapshot's first batch when it reads it back
// (see compact.go). Kafka's readers ignore record headers.
const compactionHeader = "chronik.compaction"

// topicPartition names a partition of a user topic whose offset a group commits.
type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string { return fmt.Sprintf("%s-%d", tp.topic, tp.partition) }

// offsetCommit is one committed offset as stored in an OffsetCommitValue.
type offsetCommit struct {
	offset      int64
	leaderEpoch int32 // -1: unknown
	metadata    string
	commitTime  int64 // ms since the epoch
	expireTime  int64 // ms since the epoch; -1: expire by the retention rules
}

// record is one key/value pair of the offsets log; value nil is a tombstone.
type record struct {
	key, value []byte
}

func offsetKey(group string, tp topicPartition) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.topic, Partition: tp.partition}
	return k.AppendTo(nil)
}

func offsetValue(o offsetCommit) []byte {
	v := kmsg.OffsetCommitValue{
		Version:         offsetValueVersion,
		Offset:          o.offset,
		LeaderEpoch:     o.leaderEpoch,
		Metadata:        o.metadata,
		CommitTimestamp: o.commitTime,
	}
	if o.expireTime >= 0 {
		v.Version = offsetValueVersionExpir
		v.ExpireTimestamp = o.expireTime
	}
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// groupValue encodes v as the current GroupMetadataValue version.
func groupValue(v *kmsg.GroupMetadataValue) []byte {
	v.Version = groupValueVersion
	return v.AppendTo(nil)
}

// maxBatchBytes bounds the batches the coordinator builds from many records
// (compaction snapshots, expiration sweeps), well below the default
// message.max.bytes of 1 MiB.
const maxBatchBytes = 512 << 10

// buildBatches encodes recs as uncompressed v2 batches of at most about
// maxBatchBytes each, timestamped ts. The first record of the first batch
// carries the given headers.
func buildBatches(recs []record, ts int64, first []kmsg.Header) [][]byte {
	var out [][]byte
	var cur []recordbatch.Record
	size := 0
	flush := func() {
		if len(cur) == 0 {
			return
		}
		out = append(out, recordbatch.Build(recordbatch.Batch{
			ProducerID:    -1,
			ProducerEpoch: -1,
			BaseSequence:  -1,
			Records:       cur,
		}))
		cur, size = nil, 0
	}
	for i, r := range recs {
		n := len(r.key) + len(r.value) + 32
		if size > 0 && size+n > maxBatchBytes {
			flush()
		}
		rec := recordbatch.Record{Timestamp: ts, Key: r.key, Value: r.value}
		if i == 0 {
			rec.Headers = first
		}
		cur = append(cur, rec)
		size += n
	}
	flush()
	return out
}

// buildBatch encodes recs as one batch, so that they are committed or lost
// together.
func buildBatch(recs []record, ts int64) []byte {
	rs := make([]recordbatch.Record, len(recs))
	for i, r := range recs {
		rs[i] = recordbatch.Record{Timestamp: ts, Key: r.key, Value: r.value}
	}
	return recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: rs})
}

// logEntry is one decoded record of the offsets log.
type logEntry struct {
	group string
	// Exactly one of the two kinds is set.
	isOffset bool
	tp       topicPartition
	offset   *offsetCommit // nil: tombstone
	isGroup  bool
	meta     *kmsg.GroupMetadataValue // nil: tombstone
	metaRaw  []byte
}

// errUnknownKey is returned by decodeEntry for records of a type this
// coordinator does not read (a newer key version).
var errUnknownKey = errors.New("unknown key version")

// decodeEntry decodes one record of the offsets log.
// The value is copied first: decoded byte fields alias their source.
func decodeEntry(key, value []byte) (logEntry, error) {
	value = clone(value)
	if len(key) < 2 {
		return logEntry{}, fmt.Errorf("key of %d bytes", len(key))
	}
	switch v := int16(binary.BigEndian.Uint16(key)); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return logEntry{}, fmt.Errorf("offset commit key: %w", err)
		}
		e := logEntry{group: k.Group, isOffset: true, tp: topicPartition{k.Topic, k.Partition}}
		if value == nil {
			return e, nil
		}
		var val kmsg.OffsetCommitValue
		if err := val.ReadFrom(value); err != nil {
			return logEntry{}, fmt.Errorf("offset commit value of %s/%s: %w", k.Group, e.tp, err)
		}
		o := offsetCommit{
			offset:      val.Offset,
			leaderEpoch: -1,
			metadata:    val.Metadata,
			commitTime:  val.CommitTimestamp,
			expireTime:  -1,
		}
		if val.Version >= 3 {
			o.leaderEpoch = val.LeaderEpoch
		}
		if val.Version == 1 {
			o.expireTime = val.ExpireTimestamp
		}
		e.offset = &o
		return e, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return logEntry{}, fmt.Errorf("group metadata key: %w", err)
		}
		e := logEntry{group: k.Group, isGroup: true}
		if value == nil {
			return e, nil
		}
		var val kmsg.GroupMetadataValue
		if err := val.ReadFrom(value); err != nil {
			return logEntry{}, fmt.Errorf("group metadata value of %s: %w", k.Group, err)
		}
		e.meta, e.metaRaw = &val, value
		return e, nil
	default:
		return logEntry{}, fmt.Errorf("%w %d", errUnknownKey, v)
	}
}
