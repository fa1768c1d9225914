package raftnode

import "context"

// CachedEntries is the number of entries g keeps in memory, read on its
// worker; for the tests of package raftnode_test.
func CachedEntries(g *Group) (int, error) {
	return Query(context.Background(), g, func(l Loop) int { return len(l.g.storage.recent) })
}
