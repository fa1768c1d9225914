package meta

import "slices"

// Assign places count new partitions with rf replicas each on brokers.
// Replica lists rotate over the brokers so that replicas, and the first
// replica of each partition (the preferred leader), spread evenly; start
// offsets the rotation, so that partitions added later continue it.
func Assign(brokers []int32, count, rf, start int) [][]int32 {
	ids := slices.Clone(brokers)
	slices.Sort(ids)
	n := len(ids)
	out := make([][]int32, count)
	for p := range count {
		reps := make([]int32, rf)
		for j := range rf {
			reps[j] = ids[(start+p+j)%n]
		}
		out[p] = reps
	}
	return out
}
