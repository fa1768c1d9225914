package membudget

// Memory a node holds for its Kafka clients beside the two budgets. They
// enter the node's memory bound (config.Config.MemoryBound).
const (
	// ResponseBufferBytes is the capacity of the response encode buffers
	// the Kafka listener keeps for reuse between responses, and
	// MaxPooledResponse the largest one it keeps.
	ResponseBufferBytes = 32 << 20
	MaxPooledResponse   = 16 << 20
	// ConnectionBytes is what each open connection holds whatever it
	// sends: its read and write buffers (64 KiB each) and goroutine stacks.
	ConnectionBytes = 136 << 10
	// PeerQueueBytes bounds the raft messages queued for one peer; what
	// does not fit is dropped (raft sends it again). A node holds up to
	// that much for each peer it sends to, and about as much read from each.
	PeerQueueBytes = 64 << 20
	// DecompressBytes is the budget of batches decompressed and their
	// records decoded, node-wide: produced batches whose records a topic
	// makes the node read (compacted, with timestamp bounds, or recompressed
	// to its compression.type), batches the log cleaner compacts, and
	// timestamp lookups. A few kilobytes of compressed zeros expand to
	// hundreds of megabytes; a batch whose records need more than the
	// whole budget is refused, and others wait for room.
	DecompressBytes = 128 << 20
)
