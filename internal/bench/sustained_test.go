package bench

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDeliveryCheck(t *testing.T) {
	for _, tc := range []struct {
		name       string
		acked      []int64
		seen       []int64
		want       DeliveryReport
		wantPassed bool
	}{
		{
			name: "all delivered once", acked: []int64{0, 1, 2, 63, 64, 199}, seen: []int64{199, 0, 64, 1, 2, 63},
			want:       DeliveryReport{Acknowledged: 6, Consumed: 6},
			wantPassed: true,
		},
		{
			name: "a lost message", acked: []int64{0, 1, 2, 130}, seen: []int64{0, 2},
			want: DeliveryReport{Acknowledged: 4, Consumed: 2, Missing: 2, FirstMissing: []int64{1, 130}},
		},
		{
			name: "a duplicate", acked: []int64{5, 6}, seen: []int64{5, 6, 6},
			want: DeliveryReport{Acknowledged: 2, Consumed: 2, Duplicates: 1},
		},
		{
			// A produce that timed out may still have been written.
			name: "present but never acknowledged is allowed", acked: []int64{1}, seen: []int64{1, 2},
			want:       DeliveryReport{Acknowledged: 1, Consumed: 2, Unacknowledged: 1},
			wantPassed: true,
		},
		{
			name: "a sequence number beyond the run counts as missing", acked: []int64{0, 100000}, seen: []int64{0},
			want: DeliveryReport{Acknowledged: 1, Consumed: 1, Missing: 1},
		},
	} {
		c := newDeliveryCheck(200)
		for _, s := range tc.acked {
			c.ack(s)
		}
		for _, s := range tc.seen {
			c.see(s)
		}
		got := c.report()
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: report = %+v, want %+v", tc.name, got, tc.want)
		}
		if got.OK() != tc.wantPassed {
			t.Errorf("%s: OK() = %v", tc.name, got.OK())
		}
	}
}

func TestMetricValue(t *testing.T) {
	text := `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes_total 1
process_resident_memory_bytes 2.7115520e+07
process_virtual_memory_bytes 1.3e+09
`
	v, err := metricValue(strings.NewReader(text), "process_resident_memory_bytes")
	if err != nil || v != 27115520 {
		t.Fatalf("metricValue = %v, %v", v, err)
	}
	if _, err := metricValue(strings.NewReader("go_goroutines 5\n"), "process_resident_memory_bytes"); err == nil {
		t.Fatal("a missing metric was accepted")
	}
}

func TestIntervalRecorder(t *testing.T) {
	r := newIntervalRecorder()
	for i := range 100 {
		r.record(time.Duration(i+1) * time.Millisecond)
	}
	r.errors.Add(2)
	st := r.take(2*time.Second, 10*time.Second)
	if st.MsgsPerSec != 50 || st.Errors != 2 || st.EndSeconds != 10 || st.P99 < 98 || st.P99 > 100 {
		t.Fatalf("interval = %+v", st)
	}
	if st := r.take(time.Second, 11*time.Second); st.MsgsPerSec != 0 || st.Errors != 0 {
		t.Fatalf("the next interval starts empty: %+v", st)
	}
}

// TestRSSSummary: a heap's sawtooth around a flat level is no growth, and
// a steady climb is, whatever the single first and last samples say.
func TestRSSSummary(t *testing.T) {
	const mib = 1 << 20
	sawtooth := func(t float64) float64 { return (60 + float64(int(t)%7)*5) * mib } // 60-90 MiB
	var flat, climbing RSSReport
	for s := 1; s <= 600; s++ {
		x := float64(s)
		flat.series = append(flat.series, [2]float64{x, sawtooth(x)})
		climbing.series = append(climbing.series, [2]float64{x, sawtooth(x) + x/600*15*mib})
	}
	// A sample before the first interval (10 s) is not counted.
	flat.series = append([][2]float64{{0.5, 20 * mib}}, flat.series...)
	flat.summarize(10, 600, rssWindow(10*time.Minute).Seconds())
	climbing.summarize(10, 600, rssWindow(10*time.Minute).Seconds())
	if flat.WindowSeconds != 60 || flat.Samples != 591 {
		t.Fatalf("window %v s, %d samples; want 60 s, 591", flat.WindowSeconds, flat.Samples)
	}
	if flat.WarmBytes != 75*mib || flat.EndBytes != 75*mib {
		t.Fatalf("flat: warm %.1f MiB, end %.1f MiB; want the 75 MiB medians", flat.WarmBytes/mib, flat.EndBytes/mib)
	}
	if math.Abs(flat.GrowthPercent) > 0.5 || math.Abs(flat.TrendPercentPerHour) > 2 {
		t.Fatalf("flat: growth %.2f%%, trend %.2f%%/h; want about 0", flat.GrowthPercent, flat.TrendPercentPerHour)
	}
	// 15 MiB over 600 s on a 75 MiB base: +20% over the run, about +120%/h.
	if climbing.GrowthPercent < 15 || climbing.TrendPercentPerHour < 100 || climbing.TrendPercentPerHour > 140 {
		t.Fatalf("climbing: growth %.2f%%, trend %.2f%%/h; want about +17%% and +120%%/h", climbing.GrowthPercent, climbing.TrendPercentPerHour)
	}
}
