// Package topicname holds Kafka's rules for topic names, the names Chronik
// reserves, and the collision rule: the one place that decides whether a
// name a client chose may become a topic (and so a directory on disk).
package topicname

import (
	"fmt"
	"strings"
)

// MaxLength is the longest legal topic name. Kafka chose it so that a
// partition's directory name (topic, '-', partition number) fits the 255
// bytes file systems allow.
const MaxLength = 249

// Internal topics.
const (
	// ConsumerOffsets holds consumer group state; only the group
	// coordinator writes it.
	ConsumerOffsets = "__consumer_offsets"
	// TransactionState is Kafka's transaction log; reserved so that no
	// client topic takes the name a later release needs.
	TransactionState = "__transaction_state"
	// ClusterMetadata is the name KRaft gives its metadata log; Chronik's
	// catalog is not a topic, but clients and tools know the name as
	// internal, so it is reserved.
	ClusterMetadata = "__cluster_metadata"
)

// Reserved reports whether name belongs to the server: no client may
// create, delete, write or reconfigure a topic of that name.
func Reserved(name string) bool {
	switch name {
	case ConsumerOffsets, TransactionState, ClusterMetadata:
		return true
	}
	return false
}

// Validate applies Kafka's rules: 1 to 249 characters from [a-zA-Z0-9._-],
// and neither "." nor "..".
func Validate(name string) error {
	if name == "" {
		return fmt.Errorf("topic name is empty")
	}
	if name == "." || name == ".." {
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	if len(name) > MaxLength {
		return fmt.Errorf("topic name is %d characters long, the limit is %d", len(name), MaxLength)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !legal(c) {
			return fmt.Errorf("topic name %q has the character %q; only ASCII letters, digits, '.', '_' and '-' are allowed", name, rune(c))
		}
	}
	return nil
}

func legal(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// CollisionKey is the name with '.' and '_' made equal. Kafka refuses a
// topic whose key equals an existing topic's, because metric names replace
// '.' with '_' and the two would report as one.
func CollisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }
