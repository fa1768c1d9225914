// Package raftnode hosts many etcd raft groups on one node: the metadata
// group and one group per partition replica. A small pool of workers drives
// the groups' RawNodes, so thousands of groups cost goroutines in proportion
// to cores, not to groups.
//
// # The loop of one group
//
// A group is processed by at most one worker at a time. A worker takes the
// group's inbox (ticks, raft messages, closures), then:
//
//  1. Ticks the RawNode and steps every message in arrival order.
//  2. Runs the closures (proposals, status queries) on the RawNode.
//  3. Handles each Ready. Raft runs with AsyncStorageWrites, so the Ready's
//     messages carry the storage work:
//     - MsgStorageAppend: the hard state and entries are written to the
//     group's storage.Log now (page cache) and its responses are delivered
//     only once the group commit flusher reports them durable. A leader's
//     MsgApp to followers is not behind this: replication and the local
//     fsync run in parallel, and the leader counts itself towards the quorum
//     only after its own MsgStorageAppendResp.
//     - MsgStorageApply: committed entries go to the StateMachine now and
//     the response is stepped back at once.
//     - Everything else goes to the Transport.
//
// Entries never pass through the group twice: the partition log is the raft
// log, so "applying" a Kafka batch only moves the high watermark.
package raftnode
