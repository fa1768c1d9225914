// Package group is Chronik's classic (pre-KIP-848) consumer group
// coordinator: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
// OffsetFetch, DescribeGroups, ListGroups, DeleteGroups and OffsetDelete,
// with Kafka's semantics.
//
// # Storage
//
// Group metadata and committed offsets are records of the internal topic
// __consumer_offsets, in Kafka's own formats (records.go). A group lives on
// partition PartitionFor(group); this node coordinates it exactly while it
// leads that partition. The broker reports leadership with BecameLeader and
// Resigned; BecameLeader replays the partition (load.go) before any of its
// groups is served. The coordinator keeps each partition small by writing
// snapshots of its live state and deleting the log before them
// (compact.go), and expires offsets (retention.go).
//
// # Concurrency
//
// Each led partition is a shard (shard.go) whose single goroutine owns its
// groups and offsets. Handle only routes: it pushes a closure onto the
// shard's unbounded queue and returns. Requests that wait (JoinGroup,
// SyncGroup, writes) park a reply closure on the member or on the write;
// Partitions callbacks and timers push closures onto the same queue. The
// loop contract, for every write:
//
//  1. decide and build the records in the loop;
//  2. Partitions.Append (callbacks arrive on any goroutine, in any order);
//  3. apply the outcome in the loop, in the order the writes were issued
//     (shard.writes), so memory changes in log order;
//  4. answer the request, after memory reflects the write.
//
// In-memory offsets and group metadata therefore only ever hold committed
// writes: what a reload would rebuild.
//
// Files follow the Kafka API keys: 08_offset_commit.go ... 47_offset_delete.go,
// each opening with its behaviour and version notes and registering its
// version range for APIVersions.
package group
