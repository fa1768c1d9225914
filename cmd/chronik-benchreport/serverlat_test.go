package main

import (
	"bufio"
	"strings"
	"testing"
)

func TestQuantileBoundFromScrapes(t *testing.T) {
	scrape := func(text string) produceBuckets {
		b := produceBuckets{}
		if err := parseProduceBuckets(bufio.NewScanner(strings.NewReader(text)), b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := scrape(`# HELP x
chronik_kafka_request_latency_ms_bucket{api="Produce",le="0.8"} 10
chronik_kafka_request_latency_ms_bucket{api="Produce",le="1.6"} 10
chronik_kafka_request_latency_ms_bucket{api="Produce",le="3.2"} 10
chronik_kafka_request_latency_ms_bucket{api="Produce",le="+Inf"} 10
chronik_kafka_request_latency_ms_bucket{api="Fetch",le="0.8"} 999
`)
	after := scrape(`chronik_kafka_request_latency_ms_bucket{api="Produce",le="0.8"} 60
chronik_kafka_request_latency_ms_bucket{api="Produce",le="1.6"} 1000
chronik_kafka_request_latency_ms_bucket{api="Produce",le="3.2"} 1009
chronik_kafka_request_latency_ms_bucket{api="Produce",le="+Inf"} 1010
`)
	// 1000 requests in the interval: 50 under 0.8 ms, 990 under 1.6 ms,
	// 999 under 3.2 ms.
	if b, n := quantileBound(before, after, 0.99); b != 1.6 || n != 1000 {
		t.Fatalf("p99 bound %v over %v requests, want 1.6 over 1000", b, n)
	}
	if b, _ := quantileBound(before, after, 0.999); b != 3.2 {
		t.Fatalf("p99.9 bound %v, want 3.2", b)
	}
	if b, n := quantileBound(after, after, 0.99); b != 0 || n != 0 {
		t.Fatalf("no requests: %v %v", b, n)
	}
}
