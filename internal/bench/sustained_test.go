package bench

import (
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
