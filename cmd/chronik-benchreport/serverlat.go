package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// produceBuckets is the cumulative count of Produce requests per latency
// bucket bound (ms), summed over a system's nodes, from the servers'
// chronik_kafka_request_latency_ms histogram.
type produceBuckets map[float64]float64

const produceBucketPrefix = `chronik_kafka_request_latency_ms_bucket{api="Produce",le="`

// scrapeProduceBuckets reads the Produce latency histogram of every node.
func scrapeProduceBuckets(ctx context.Context, metricsAddrs []string) (produceBuckets, error) {
	out := produceBuckets{}
	for _, addr := range metricsAddrs {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			cancel()
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("scrape %s: %w", addr, err)
		}
		err = parseProduceBuckets(bufio.NewScanner(resp.Body), out)
		resp.Body.Close()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", addr, err)
		}
	}
	return out, nil
}

func parseProduceBuckets(sc *bufio.Scanner, into produceBuckets) error {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, produceBucketPrefix)
		if !ok {
			continue
		}
		le, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			return fmt.Errorf("unexpected bucket line %q", line)
		}
		bound := math.Inf(1)
		if le != "+Inf" {
			b, err := strconv.ParseFloat(le, 64)
			if err != nil {
				return fmt.Errorf("bucket bound in %q: %w", line, err)
			}
			bound = b
		}
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("bucket count in %q: %w", line, err)
		}
		into[bound] += n
	}
	return sc.Err()
}

// quantileBound returns the smallest bucket bound under which at least q
// of the requests counted between before and after fall, and how many
// requests that was. The histogram's buckets double, so this is an upper
// bound on the server's q-quantile, not an estimate.
func quantileBound(before, after produceBuckets, q float64) (bound float64, requests float64) {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0, 0
	}
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0, 0
	}
	for _, b := range bounds {
		if after[b]-before[b] >= q*total {
			return b, total
		}
	}
	return math.Inf(1), total
}
