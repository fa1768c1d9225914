// Package storage is Chronik's durable partition log. One Log holds one
// partition; it is both the Kafka partition log and the partition's Raft log
// (docs/storage.md explains why). A Store owns every Log of a node, the group
// commit flusher that makes their appends durable together, the checkpoint
// of small per-log state, and background retention.
//
// # Layout
//
//	<data dir>/
//	  store.checkpoint         high watermarks, log start offsets, raft hard states
//	  <topic>-<partition>/
//	    00000000000000000001.log   segment: header, then frames
//	    00000000000000000001.idx   dense index: one 32-byte entry per frame
//
// Segments are named after the Raft index of their first entry (zero padded
// to 20 digits). Every frame holds one Raft entry. Entries whose data is a
// Kafka record batch (IsBatchData) take Kafka offsets. All other entries
// (empty entries a new leader appends, configuration changes, commands)
// take none and are never served to Kafka consumers.
//
// # Invariants
//
//   - Raft indexes are dense: segment i+1 starts at the last index of
//     segment i plus one.
//   - Kafka offsets are dense over batch entries: a batch's baseOffset equals
//     the nextOffset of the entry before it.
//   - Only the last segment (the active one) is written; the others are
//     sealed and immutable, so they can be copied or uploaded as they are.
//     The log cleaner replaces a sealed segment of a compacted log by a
//     copy holding the same entries (fewer records), in one rename.
//   - logStartOffset <= highWatermark <= nextOffset.
//
// # Durability
//
// Append writes frames to the page cache and returns; the Flusher fdatasyncs
// every dirty log in one round and then calls each waiter whose append is
// covered. Nothing is reported durable before its fdatasync returned.
package storage
