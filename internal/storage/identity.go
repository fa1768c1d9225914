package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// identityFile records which node a data directory belongs to.
const identityFile = "node.id"

// Identity is what a data directory records about the node that owns it.
type Identity struct {
	NodeID uint64
	// ClusterID is the cluster the node joined; "" until it has.
	ClusterID string
	// Incarnation is chosen at random when the directory is first used.
	// A node whose directory was wiped or replaced has another one, so the
	// cluster can tell it from the node that held the old directory's
	// raft votes and acknowledged entries.
	Incarnation string
}

// NewIncarnation returns a fresh random incarnation.
func NewIncarnation() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ReadIdentity reads the identity of the data directory dir; ok is false
// when it has none (a new directory).
func ReadIdentity(dir string) (id Identity, ok bool, err error) {
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("read node identity: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "node_id":
			if id.NodeID, err = strconv.ParseUint(v, 10, 64); err != nil {
				return id, false, fmt.Errorf("%s: bad node_id %q", path, v)
			}
		case "cluster_id":
			id.ClusterID = v
		case "incarnation":
			id.Incarnation = v
		}
	}
	if id.NodeID == 0 {
		return id, false, fmt.Errorf("%s names no node_id; it is not a chronik identity file", path)
	}
	return id, true, nil
}

// WriteIdentity records id in dir, atomically and durably.
func WriteIdentity(dir string, id Identity) error {
	data := fmt.Sprintf("node_id=%d\ncluster_id=%s\nincarnation=%s\n", id.NodeID, id.ClusterID, id.Incarnation)
	if err := writeFileAtomic(filepath.Join(dir, identityFile), []byte(data), nil); err != nil {
		return fmt.Errorf("write node identity: %w", err)
	}
	return nil
}
