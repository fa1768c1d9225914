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
)
