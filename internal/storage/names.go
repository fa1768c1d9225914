package storage

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/chronik-stream/chronik/internal/topicname"
)

// Namespaces of a store: each is a directory of the data directory, so a
// log of one can never be mistaken for a log of another, whatever name a
// client chose for its topic.
const (
	// internalDir holds the node's own logs (the catalog's raft log).
	internalDir = "internal"
	// partitionDir holds partition logs as kafka/<topic>/<partition>_<topic id>.
	partitionDir = "kafka"
	// legacyDir holds the partition logs of a format-1 store, named
	// <topic>-<partition> and bound to no topic id, until they are adopted.
	legacyDir = "legacy"
)

// LogName says where a log lives in a store. Build one with InternalLog or
// PartitionLog; a partition log is bound to its topic's id, so a topic
// deleted and created again under the same name never finds the old log.
type LogName struct {
	path string // relative to the data directory, with '/' separators
}

// String returns the log's path relative to the data directory.
func (n LogName) String() string { return n.path }

// IsZero reports whether n is the zero LogName.
func (n LogName) IsZero() bool { return n.path == "" }

// InternalLog names one of the node's own logs. name is chosen by the
// server, never by a client: lower-case letters, digits, '-' and '_'.
func InternalLog(name string) LogName {
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		panic(fmt.Sprintf("storage: bad internal log name %q", name))
	}
	return LogName{path: internalDir + "/" + name}
}

// PartitionLog names the log of one partition of the topic with the given
// id. The topic name must be a legal Kafka topic name.
func PartitionLog(topic string, partition int32, topicID [16]byte) (LogName, error) {
	if err := topicname.Validate(topic); err != nil {
		return LogName{}, fmt.Errorf("partition log: %w", err)
	}
	if partition < 0 {
		return LogName{}, fmt.Errorf("partition log: partition %d is negative", partition)
	}
	if topicID == ([16]byte{}) {
		return LogName{}, fmt.Errorf("partition log of %s-%d: no topic id", topic, partition)
	}
	return LogName{path: fmt.Sprintf("%s/%s/%d_%s", partitionDir, topic, partition, hex.EncodeToString(topicID[:]))}, nil
}

// legacyLog names a format-1 partition log awaiting adoption.
func legacyLog(name string) LogName { return LogName{path: legacyDir + "/" + name} }

// PartitionRef is what a partition log's name says about it.
type PartitionRef struct {
	Topic     string
	Partition int32
	TopicID   [16]byte
}

// Partition returns the partition a partition log belongs to.
func (n LogName) Partition() (PartitionRef, bool) {
	rest, ok := strings.CutPrefix(n.path, partitionDir+"/")
	if !ok {
		return PartitionRef{}, false
	}
	topic, leaf, ok := strings.Cut(rest, "/")
	if !ok {
		return PartitionRef{}, false
	}
	p, id, ok := strings.Cut(leaf, "_")
	if !ok {
		return PartitionRef{}, false
	}
	part, err := strconv.ParseInt(p, 10, 32)
	raw, herr := hex.DecodeString(id)
	if err != nil || herr != nil || len(raw) != 16 || part < 0 {
		return PartitionRef{}, false
	}
	ref := PartitionRef{Topic: topic, Partition: int32(part)}
	copy(ref.TopicID[:], raw)
	return ref, true
}

// IsLegacy reports whether n is a format-1 partition log not yet adopted.
func (n LogName) IsLegacy() bool { return strings.HasPrefix(n.path, legacyDir+"/") }

// parseLogName checks a path found on disk or in the checkpoint.
func parseLogName(path string) (LogName, bool) {
	n := LogName{path: path}
	switch {
	case strings.HasPrefix(path, internalDir+"/"):
		name := strings.TrimPrefix(path, internalDir+"/")
		return n, name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-_") == ""
	case strings.HasPrefix(path, legacyDir+"/"):
		name := strings.TrimPrefix(path, legacyDir+"/")
		return n, name != "" && !strings.ContainsAny(name, "/\\") && name != "." && name != ".."
	default:
		ref, ok := n.Partition()
		return n, ok && topicname.Validate(ref.Topic) == nil
	}
}

func (n LogName) dir(root string) string { return filepath.Join(root, filepath.FromSlash(n.path)) }
