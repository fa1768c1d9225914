// Package rebalance plans where partition replicas and leaderships should
// go so that every broker holds, and leads, about as many partitions as
// the others, and so that brokers being removed hold none. It only plans:
// the plan is carried out as partition reassignments (the first replica
// of each partition is its preferred leader).
package rebalance

import (
	"cmp"
	"slices"
)

// Partition is one partition's current replicas (the first is its
// preferred leader).
type Partition struct {
	Topic     string
	Partition int32
	Replicas  []int32
}

// Move is a new replica list for a partition.
type Move struct {
	Topic     string
	Partition int32
	From      []int32
	To        []int32
}

// Input is what a plan is made from.
type Input struct {
	Partitions []Partition
	// Brokers may hold replicas; a replica on a broker neither here nor in
	// Keep (one being decommissioned) is always moved to one of them.
	Brokers []int32
	// Keep are brokers whose replicas stay where they are but which get
	// no new ones (down for now).
	Keep []int32
	// Balance also evens out replica and leader counts; without it only
	// replicas on brokers not listed move.
	Balance bool
}

// Plan returns the moves that take the partitions to a balanced
// placement: replicas off brokers not in Brokers, then replica counts per
// broker within one of each other, then preferred-leader counts within one
// (by reordering replicas, which moves no data). A partition with more
// replicas than there are brokers keeps the replicas it cannot place. The
// plan is deterministic and moves as few replicas as it can.
func Plan(in Input) []Move {
	brokers := slices.Sorted(slices.Values(in.Brokers))
	if len(brokers) == 0 {
		return nil
	}
	parts := make([]Partition, len(in.Partitions))
	for i, p := range in.Partitions {
		parts[i] = Partition{Topic: p.Topic, Partition: p.Partition, Replicas: slices.Clone(p.Replicas)}
	}
	slices.SortFunc(parts, func(a, b Partition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	replicaCount := func() map[int32]int {
		n := map[int32]int{}
		for _, b := range brokers {
			n[b] = 0
		}
		for _, p := range parts {
			for _, r := range p.Replicas {
				if _, ok := n[r]; ok {
					n[r]++
				}
			}
		}
		return n
	}

	// Drain brokers not listed: each such replica goes to the least
	// loaded broker that does not hold the partition, in its place.
	counts := replicaCount()
	for i := range parts {
		for j, r := range parts[i].Replicas {
			if _, ok := counts[r]; ok || slices.Contains(in.Keep, r) {
				continue
			}
			if to, ok := leastLoaded(brokers, counts, parts[i].Replicas); ok {
				parts[i].Replicas[j] = to
				counts[to]++
			}
		}
	}

	if in.Balance {
		balanceReplicas(parts, brokers, counts)
		balanceLeaders(parts, brokers)
	}

	type key struct {
		topic     string
		partition int32
	}
	before := map[key][]int32{}
	for _, p := range in.Partitions {
		before[key{p.Topic, p.Partition}] = p.Replicas
	}
	var moves []Move
	for _, p := range parts {
		from := before[key{p.Topic, p.Partition}]
		if !slices.Equal(from, p.Replicas) {
			moves = append(moves, Move{Topic: p.Topic, Partition: p.Partition, From: slices.Clone(from), To: p.Replicas})
		}
	}
	return moves
}

// leastLoaded returns the broker with the fewest replicas (lowest id on a
// tie) that is not in exclude.
func leastLoaded(brokers []int32, counts map[int32]int, exclude []int32) (int32, bool) {
	best, found := int32(0), false
	for _, b := range brokers {
		if slices.Contains(exclude, b) {
			continue
		}
		if !found || counts[b] < counts[best] {
			best, found = b, true
		}
	}
	return best, found
}

// balanceReplicas moves replicas from the most to the least loaded broker
// until their counts are within one, or no partition allows a move.
func balanceReplicas(parts []Partition, brokers []int32, counts map[int32]int) {
	for {
		hi, lo := extremes(brokers, counts)
		if counts[hi]-counts[lo] <= 1 {
			return
		}
		moved := false
		// A replica that is not the preferred leader moves first: its
		// move does not change which broker leads.
		for _, leaderToo := range []bool{false, true} {
			for i := range parts {
				r := parts[i].Replicas
				j := slices.Index(r, hi)
				if j < 0 || slices.Contains(r, lo) || (j == 0) != leaderToo {
					continue
				}
				r[j] = lo
				counts[hi]--
				counts[lo]++
				moved = true
				break
			}
			if moved {
				break
			}
		}
		if !moved {
			return
		}
	}
}

// balanceLeaders reorders replicas so that preferred-leader counts are
// within one of each other where the replica placement allows it.
func balanceLeaders(parts []Partition, brokers []int32) {
	counts := map[int32]int{}
	for _, b := range brokers {
		counts[b] = 0
	}
	for _, p := range parts {
		if len(p.Replicas) > 0 {
			counts[p.Replicas[0]]++
		}
	}
	for range len(parts) * len(brokers) {
		hi, lo := extremes(brokers, counts)
		if counts[hi]-counts[lo] <= 1 {
			return
		}
		moved := false
		for i := range parts {
			r := parts[i].Replicas
			if len(r) == 0 || r[0] != hi {
				continue
			}
			if j := slices.Index(r, lo); j > 0 {
				r[0], r[j] = r[j], r[0]
				counts[hi]--
				counts[lo]++
				moved = true
				break
			}
		}
		if !moved {
			// No partition led by hi has a replica on lo: hand one of hi's
			// to whichever of its replicas leads fewest, if that evens out.
			for i := range parts {
				r := parts[i].Replicas
				if len(r) < 2 || r[0] != hi {
					continue
				}
				j := 1
				for k := 2; k < len(r); k++ {
					if counts[r[k]] < counts[r[j]] {
						j = k
					}
				}
				if counts[hi]-counts[r[j]] > 1 {
					counts[hi]--
					counts[r[j]]++
					r[0], r[j] = r[j], r[0]
					moved = true
					break
				}
			}
		}
		if !moved {
			return
		}
	}
}

// extremes returns the brokers with the most and the fewest (lowest id on
// ties).
func extremes(brokers []int32, counts map[int32]int) (hi, lo int32) {
	hi, lo = brokers[0], brokers[0]
	for _, b := range brokers[1:] {
		if counts[b] > counts[hi] {
			hi = b
		}
		if counts[b] < counts[lo] {
			lo = b
		}
	}
	return hi, lo
}
