package config

import "github.com/chronik-stream/chronik/internal/membudget"

// BaseMemoryBytes is the part of a node's memory bound that does not grow
// with what clients send: the Go runtime, the binary, the catalog,
// consumer groups and the indexes of active segments of a few hundred
// partitions. A fresh node uses about 17 MiB.
const BaseMemoryBytes = 64 << 20

// MemoryLimit is the memory, in bytes, the bounds let a node hold live,
// beside its client connections:
//
//	kafka.queued_max_request_bytes + kafka.queued_max_fetch_bytes
//	+ 32 MiB of response buffers kept for reuse + 64 MiB base
//	+ raft.advanced.max_uncommitted_bytes + raft.advanced.entry_cache_bytes
//	+ 2 x 64 MiB per peer (raft messages queued to it and read from it)
//	+ 128 MiB of decompressed batches
//	+ kafka.log_cleaner_dedupe_buffer_size + 2 MiB + 64 KiB of cleaner I/O buffers
//	  + 3 x kafka.message_max_bytes (a batch being cleaned), if the
//	  cleaner is enabled
//
// The raft terms are produced batches kept after their response until
// they are committed and every follower has them. chronik-server gives
// the sum to the Go runtime as its soft memory limit (unless GOMEMLIMIT is
// set), so that garbage does not double the heap.
func (c *Config) MemoryLimit() int64 {
	peers := 0
	if c.Cluster.Enabled {
		peers = max(len(c.Cluster.Peers.Nodes)-1, 0)
	}
	var cleaner int64
	if c.Kafka.LogCleanerEnable {
		cleaner = c.Kafka.LogCleanerDedupeBufferSize + 2<<20 + 64<<10 + 3*int64(c.Kafka.MessageMaxBytes)
	}
	return c.Kafka.QueuedMaxRequestBytes + c.Kafka.QueuedMaxFetchBytes +
		membudget.ResponseBufferBytes + BaseMemoryBytes +
		c.Raft.Advanced.MaxUncommittedBytes + c.Raft.Advanced.EntryCacheBytes +
		int64(peers)*2*membudget.PeerQueueBytes + membudget.DecompressBytes + cleaner
}

// MemoryBound is the resident memory, in bytes, a node with this
// configuration and that many client connections stays under
// (docs/configuration.md, "Resource bounds"):
//
//	MemoryLimit() + 136 KiB per connection + kafka.socket_request_max_bytes
//
// The last term is the collector's overshoot: a large request buffer is
// allocated before the collection it sets off frees the ones before it.
func (c *Config) MemoryBound(connections int) int64 {
	return c.MemoryLimit() + int64(connections)*membudget.ConnectionBytes + int64(c.Kafka.SocketRequestMaxBytes)
}
