package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

var (
	idA = [16]byte{0xa}
	idB = [16]byte{0xb}
)

func partitionLog(t *testing.T, topic string, p int32, id [16]byte) LogName {
	t.Helper()
	n, err := PartitionLog(topic, p, id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPartitionLogNames(t *testing.T) {
	n := partitionLog(t, "orders.v1", 7, idA)
	ref, ok := n.Partition()
	if !ok || ref.Topic != "orders.v1" || ref.Partition != 7 || ref.TopicID != idA {
		t.Fatalf("%s parsed as %+v %v", n, ref, ok)
	}
	if _, ok := InternalLog("catalog").Partition(); ok {
		t.Fatal("an internal log parsed as a partition log")
	}
	for _, bad := range []struct {
		topic string
		p     int32
		id    [16]byte
	}{
		{"..", 0, idA}, {"a/b", 0, idA}, {"", 0, idA}, {"x", -1, idA}, {"x", 0, [16]byte{}},
	} {
		if n, err := PartitionLog(bad.topic, bad.p, bad.id); err == nil {
			t.Errorf("PartitionLog(%q, %d, %x) = %s, want an error", bad.topic, bad.p, bad.id, n)
		}
	}
	// Whatever a topic is called, its logs live apart from the node's own.
	clash := partitionLog(t, "__cluster_metadata", 0, idA)
	if clash == InternalLog("catalog") || filepath.Dir(clash.dir("/d")) == filepath.Dir(InternalLog("catalog").dir("/d")) {
		t.Fatalf("partition log %s shares the internal namespace", clash)
	}
}

// A topic deleted and created again gets a new id, so its logs are new
// logs: the old one is never opened for it.
func TestRecreatedTopicGetsAFreshLog(t *testing.T) {
	e := newEnv(t)
	old, err := e.store.OpenLog(partitionLog(t, "t", 0, idA), DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	appendBatches(t, old, 1, makeBatch(3, 0, "old"))
	old.SetHardState(HardState{Term: 5, Vote: 2, Commit: 1})
	if err := old.Sync(); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	fresh, err := e.store.OpenLog(partitionLog(t, "t", 0, idB), DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	if fresh.LastIndex() != 0 || fresh.NextOffset() != 0 || fresh.HardState() != (HardState{}) {
		t.Fatalf("new topic's log has last index %d, next offset %d, hard state %+v", fresh.LastIndex(), fresh.NextOffset(), fresh.HardState())
	}
	names, err := e.store.LogNames()
	if err != nil || len(names) != 2 {
		t.Fatalf("log names %v %v, want the old and the new", names, err)
	}
}

// A format-1 store moves to the legacy namespace; a log is then adopted
// under its partition name with its checkpointed state.
func TestFormat1Migration(t *testing.T) {
	dir := t.TempDir()
	// Lay out a format-1 store by hand: logs at the top level.
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.OpenLog(InternalLog("catalog"), DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	appendBatches(t, l, 1, makeBatch(2, 0, "x"))
	l.SetHardState(HardState{Term: 3, Vote: 1, Commit: 1})
	if err := l.Commit(1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := readCheckpoint(filepath.Join(dir, checkpointName))
	if err != nil {
		t.Fatal(err)
	}
	st["orders-0"] = st["internal/catalog"]
	delete(st, "internal/catalog")
	if err := os.WriteFile(filepath.Join(dir, checkpointName), encodeCheckpoint(st), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "internal", "catalog"), filepath.Join(dir, "orders-0")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "internal"))
	if err := os.WriteFile(filepath.Join(dir, metaFileName), []byte("format=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	names, _ := s.LogNames()
	if len(names) != 1 || !names[0].IsLegacy() {
		t.Fatalf("after migration the store holds %v, want one legacy log", names)
	}
	to := partitionLog(t, "orders", 0, idA)
	if ok, err := s.AdoptLegacyLog("orders-0", to); !ok || err != nil {
		t.Fatalf("adopt: %v %v", ok, err)
	}
	if ok, err := s.AdoptLegacyLog("orders-0", to); ok || err != nil {
		t.Fatalf("second adopt: %v %v, want nothing to adopt", ok, err)
	}
	l, err = s.OpenLog(to, DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != 1 || l.HighWatermark() != 2 || l.HardState().Term != 3 {
		t.Fatalf("adopted log: last %d hw %d hard state %+v", l.LastIndex(), l.HighWatermark(), l.HardState())
	}
}

// A log whose directory vanished while the checkpoint remembers it held
// entries reopens empty and in repair: its replica must not vote as if it
// still held what it acknowledged.
func TestLostLogDirectoryStartsInRepair(t *testing.T) {
	e := newEnv(t)
	name := partitionLog(t, "t", 0, idA)
	l, err := e.store.OpenLog(name, DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	appendBatches(t, l, 1, makeBatch(2, 0, "a"), makeBatch(2, 0, "b"))
	l.SetHardState(HardState{Term: 4, Vote: 2, Commit: 2})
	if err := l.Commit(2); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(name.dir(e.dir)); err != nil {
		t.Fatal(err)
	}
	e.open()
	l, err = e.store.OpenLog(name, DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != 0 || l.HighWatermark() != 0 {
		t.Fatalf("lost log reopened with last %d hw %d", l.LastIndex(), l.HighWatermark())
	}
	if hs := l.HardState(); hs.Term != 4 || hs.Vote != 2 || hs.Commit != 0 {
		t.Fatalf("hard state %+v: want term and vote kept, commit 0", hs)
	}
	if ru := l.RepairUntil(); ru != 2 {
		t.Fatalf("repair until %d, want 2", ru)
	}
}

// LogNames includes logs only the checkpoint knows, so a removal cut
// short by a crash can be finished.
func TestLogNamesIncludeCheckpointOnly(t *testing.T) {
	e := newEnv(t)
	name := partitionLog(t, "t", 0, idA)
	l, err := e.store.OpenLog(name, DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	appendBatches(t, l, 1, makeBatch(1, 0, "a"))
	e.store.Close()
	os.RemoveAll(name.dir(e.dir))
	e.open()
	names, err := e.store.LogNames()
	if err != nil || len(names) != 1 || names[0] != name {
		t.Fatalf("names %v %v, want %s", names, err, name)
	}
	if err := e.store.RemoveLog(name); err != nil {
		t.Fatal(err)
	}
	if names, _ := e.store.LogNames(); len(names) != 0 {
		t.Fatalf("names %v after removal", names)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "kafka", "t")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("topic directory left behind: %v", err)
	}
}
