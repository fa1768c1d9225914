package bench

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFormatProgress(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    progressSnapshot
		want string
	}{
		{
			name: "duration bound",
			s:    progressSnapshot{what: "produce", done: 30000, elapsed: 3 * time.Second, msgsPerS: 10000, sizeBytes: 1000, end: progressEnd{duration: 10 * time.Second}},
			want: "produce [#########.....................]  30%     3s left 7s          30000 msgs     10000 msgs/s     10.0 MB/s",
		},
		{
			name: "count bound, remaining from the rate",
			s:    progressSnapshot{what: "consume", done: 750, elapsed: 90 * time.Second, msgsPerS: 50, sizeBytes: 100, end: progressEnd{count: 1000}},
			want: "consume [######################........]  75%  1m30s left 5s            750 msgs        50 msgs/s      0.0 MB/s",
		},
		{
			name: "count bound, no rate yet",
			s:    progressSnapshot{what: "e2e", done: 0, elapsed: 0, end: progressEnd{count: 10}},
			want: "e2e [..............................]   0%     0s          0 msgs         0 msgs/s      0.0 MB/s",
		},
		{
			name: "no known end: counters only",
			s:    progressSnapshot{what: "produce", done: 5, elapsed: 2 * time.Second, msgsPerS: 2.5, sizeBytes: 10},
			want: "produce     2s          5 msgs         2 msgs/s      0.0 MB/s",
		},
		{
			name: "overrun is capped at 100%",
			s:    progressSnapshot{what: "produce", done: 1, elapsed: 11 * time.Second, end: progressEnd{duration: 10 * time.Second}},
			want: "produce [##############################] 100%    11s left 0s              1 msgs         0 msgs/s      0.0 MB/s",
		},
	} {
		if got := formatProgress(tc.s); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// A writer that is not a terminal gets whole lines, never \r.
func TestProgressPlainLinesWhenNotATerminal(t *testing.T) {
	plainLineEvery = 20 * time.Millisecond
	defer func() { plainLineEvery = plainLineEveryDef }()
	var out lockedBuffer
	var n atomic.Int64
	n.Store(42)
	stop := progress(&out, "produce", &n, 100, time.Now(), progressEnd{duration: time.Second})
	// Wait for two lines rather than sleep for them: a loaded machine may
	// run the ticker late.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	s := out.String()
	if strings.Contains(s, "\r") {
		t.Fatalf("plain progress contains \\r: %q", s)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "produce [") || !strings.Contains(lines[0], "42 msgs") {
		t.Fatalf("want several progress lines, got %q", s)
	}
}

// lockedBuffer is a bytes.Buffer that the progress goroutine writes while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
