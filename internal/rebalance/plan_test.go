package rebalance

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// apply returns the partitions after moves.
func apply(parts []Partition, moves []Move) []Partition {
	out := slices.Clone(parts)
	for _, m := range moves {
		for i := range out {
			if out[i].Topic == m.Topic && out[i].Partition == m.Partition {
				out[i].Replicas = m.To
			}
		}
	}
	return out
}

func spread(parts []Partition, brokers []int32) (replicas, leaders map[int32]int) {
	replicas, leaders = map[int32]int{}, map[int32]int{}
	for _, b := range brokers {
		replicas[b], leaders[b] = 0, 0
	}
	for _, p := range parts {
		for _, r := range p.Replicas {
			replicas[r]++
		}
		leaders[p.Replicas[0]]++
	}
	return replicas, leaders
}

func within(counts map[int32]int, d int) bool {
	lo, hi := -1, -1
	for _, c := range counts {
		if lo < 0 || c < lo {
			lo = c
		}
		if c > hi {
			hi = c
		}
	}
	return hi-lo <= d
}

// The roadmap's scenario: nine partitions with three replicas on three
// brokers, and a fourth joins.
func TestFourthBrokerTakesItsShare(t *testing.T) {
	var parts []Partition
	for p := range int32(9) {
		r := []int32{1 + p%3, 1 + (p+1)%3, 1 + (p+2)%3}
		parts = append(parts, Partition{Topic: "test", Partition: p, Replicas: r})
	}
	brokers := []int32{1, 2, 3, 4}
	moves := Plan(Input{Partitions: parts, Brokers: brokers, Balance: true})
	after := apply(parts, moves)
	replicas, leaders := spread(after, brokers)
	if !within(replicas, 1) || !within(leaders, 1) {
		t.Fatalf("after %d moves: replicas %v, leaders %v", len(moves), replicas, leaders)
	}
	for _, b := range brokers {
		if leaders[b] < 2 || leaders[b] > 3 {
			t.Fatalf("broker %d leads %d partitions: %v", b, leaders[b], leaders)
		}
	}
	moved := 0
	for _, m := range moves {
		for _, r := range m.To {
			if !slices.Contains(m.From, r) {
				moved++
			}
		}
	}
	// 27 replicas over 4 brokers: the new one takes 6, no more moves.
	if moved != 6 {
		t.Fatalf("%d replicas moved, want 6: %v", moved, moves)
	}
	if again := Plan(Input{Partitions: after, Brokers: brokers, Balance: true}); len(again) != 0 {
		t.Fatalf("a balanced placement is planned again: %v", again)
	}
}

func TestDrainOnlyMovesReplicasOffRemovedBrokers(t *testing.T) {
	parts := []Partition{
		{Topic: "a", Partition: 0, Replicas: []int32{1, 2, 3}},
		{Topic: "a", Partition: 1, Replicas: []int32{2, 3, 4}},
		{Topic: "b", Partition: 0, Replicas: []int32{4, 1}},
	}
	moves := Plan(Input{Partitions: parts, Brokers: []int32{1, 2, 3}})
	after := apply(parts, moves)
	for _, p := range after {
		if slices.Contains(p.Replicas, 4) || len(p.Replicas) != len(parts[slices.IndexFunc(parts, func(q Partition) bool { return q.Topic == p.Topic && q.Partition == p.Partition })].Replicas) {
			t.Fatalf("after draining broker 4: %v", after)
		}
	}
	if len(moves) != 2 || after[0].Replicas[0] != 1 {
		t.Fatalf("moves %v", moves)
	}
}

// Random placements: a plan never duplicates a replica within a
// partition, never changes a replication factor, drains every removed
// broker, evens replica counts to within one, and is stable.
func TestPlanProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 500 {
		n := 2 + rng.IntN(6)
		all := make([]int32, n)
		for i := range all {
			all[i] = int32(i + 1)
		}
		var parts []Partition
		for p := range rng.IntN(40) + 1 {
			rf := 1 + rng.IntN(min(n, 3))
			perm := rng.Perm(n)
			r := make([]int32, rf)
			for i := range r {
				r[i] = all[perm[i]]
			}
			parts = append(parts, Partition{Topic: fmt.Sprint("t", p%3), Partition: int32(p), Replicas: r})
		}
		brokers := all
		if rng.IntN(2) == 0 && n > 3 {
			brokers = all[:n-1] // the last one is being removed
		}
		after := apply(parts, Plan(Input{Partitions: parts, Brokers: brokers, Balance: true}))
		for i, p := range after {
			if len(p.Replicas) != len(parts[i].Replicas) {
				t.Fatalf("iter %d: %v changed its replication factor: %v", iter, parts[i], p)
			}
			seen := map[int32]bool{}
			for _, r := range p.Replicas {
				if seen[r] || !slices.Contains(brokers, r) {
					t.Fatalf("iter %d: %v placed as %v on brokers %v", iter, parts[i], p.Replicas, brokers)
				}
				seen[r] = true
			}
		}
		if replicas, _ := spread(after, brokers); !within(replicas, 1) {
			t.Fatalf("iter %d: replicas %v", iter, replicas)
		}
		if again := Plan(Input{Partitions: after, Brokers: brokers, Balance: true}); len(again) != 0 {
			t.Fatalf("iter %d: planned again: %v", iter, again)
		}
	}
}

func TestDrainKeepsReplicasOfBrokersThatAreDown(t *testing.T) {
	parts := []Partition{{Topic: "a", Partition: 0, Replicas: []int32{1, 2, 4}}, {Topic: "a", Partition: 1, Replicas: []int32{3, 5, 2}}}
	moves := Plan(Input{Partitions: parts, Brokers: []int32{1, 2, 3}, Keep: []int32{5}})
	if len(moves) != 1 || moves[0].Partition != 0 || !slices.Equal(moves[0].To, []int32{1, 2, 3}) {
		t.Fatalf("moves %v", moves)
	}
}
