package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTimes are the machine's aggregate CPU counters from /proc/stat, in
// clock ticks.
type cpuTimes struct{ idle, total uint64 }

// readCPUTimes reads the "cpu" line of /proc/stat. Idle counts idle and
// iowait: time no process could use a core.
func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseCPUTimes(string(b))
}

func parseCPUTimes(stat string) (cpuTimes, error) {
	line, _, _ := strings.Cut(stat, "\n")
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var t cpuTimes
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: field %d of %q: %w", i+1, line, err)
		}
		t.total += v
		if i == 3 || i == 4 { // idle, iowait
			t.idle += v
		}
	}
	return t, nil
}

// busyPercent is the share of the machine's CPU time in use between a and b.
func busyPercent(a, b cpuTimes) float64 {
	total := b.total - a.total
	if total == 0 {
		return 0
	}
	return float64(total-(b.idle-a.idle)) / float64(total) * 100
}
