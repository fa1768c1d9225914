//go:build race

package storage

// raceEnabled shortens the longest property tests under the race
// detector, which runs them ten times slower; the full runs are in the
// plain test run.
const raceEnabled = true
