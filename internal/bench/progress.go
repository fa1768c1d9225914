package bench

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Progress output has two forms. On a terminal a bar is redrawn in place
// with \r a few times a second; anywhere else (a pipe, a CI log) a plain
// line is printed every few seconds, because \r-redraws turn into
// thousands of lines there.
const (
	terminalRedrawEvery = 250 * time.Millisecond
	plainLineEveryDef   = 5 * time.Second
	// progressBarWidth is the number of cells in the bar.
	progressBarWidth = 30
)

// plainLineEvery is a var so tests can shorten it.
var plainLineEvery = plainLineEveryDef

// progressEnd is what a run knows about its end: a message count, a
// duration, or neither (then no bar is drawn, only the counters).
type progressEnd struct {
	count    int64
	duration time.Duration
}

// progressSnapshot is one observation of a run.
type progressSnapshot struct {
	what      string
	done      int64 // messages so far
	elapsed   time.Duration
	msgsPerS  float64 // over the last redraw interval
	sizeBytes int
	end       progressEnd
}

// fraction is the share of the run completed, in [0, 1]; ok is false when
// the run has no known end.
func (s progressSnapshot) fraction() (f float64, ok bool) {
	switch {
	case s.end.count > 0:
		f = float64(s.done) / float64(s.end.count)
	case s.end.duration > 0:
		f = s.elapsed.Seconds() / s.end.duration.Seconds()
	default:
		return 0, false
	}
	return min(max(f, 0), 1), true
}

// remaining estimates the time left: exact for a duration-bound run, from
// the current rate for a count-bound one (unknown while the rate is 0).
func (s progressSnapshot) remaining() (time.Duration, bool) {
	switch {
	case s.end.duration > 0 && s.end.count == 0:
		return max(s.end.duration-s.elapsed, 0), true
	case s.end.count > 0 && s.msgsPerS > 0:
		left := float64(max(s.end.count-s.done, 0)) / s.msgsPerS
		return time.Duration(left * float64(time.Second)), true
	}
	return 0, false
}

// formatProgress renders one progress line (without \r or newline). With a
// known end it draws a bar:
//
//	produce [#########.....................]  31%  3s/10s left 7s   41234 msgs/s   40.3 MB/s
func formatProgress(s progressSnapshot) string {
	var b strings.Builder
	b.WriteString(s.what)
	if f, ok := s.fraction(); ok {
		filled := int(f * progressBarWidth)
		fmt.Fprintf(&b, " [%s%s] %3.0f%%", strings.Repeat("#", filled), strings.Repeat(".", progressBarWidth-filled), f*100)
	}
	fmt.Fprintf(&b, " %6s", formatSeconds(s.elapsed))
	if left, ok := s.remaining(); ok {
		fmt.Fprintf(&b, " left %-6s", formatSeconds(left))
	}
	fmt.Fprintf(&b, " %10d msgs %9.0f msgs/s %8.1f MB/s", s.done, s.msgsPerS, s.msgsPerS*float64(s.sizeBytes)/1e6)
	return b.String()
}

// formatSeconds prints a duration in whole seconds, as minutes and
// seconds from a minute up (a long sustained run stays readable).
func formatSeconds(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// isTerminal reports whether w is a terminal (an *os.File, or anything
// with a file descriptor, on a tty).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress reports n (messages done) on w until the returned func is
// called: a bar redrawn in place on a terminal, a plain line every
// plainLineEvery elsewhere. A nil w reports nothing.
func progress(w io.Writer, what string, n *atomic.Int64, size int, start time.Time, end progressEnd) func() {
	if w == nil {
		return func() {}
	}
	tty := isTerminal(w)
	every := plainLineEvery
	if tty {
		every = terminalRedrawEvery
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		// The rate shown is over the last second or so even when the bar
		// is redrawn more often, so it does not jitter.
		window := max(every, time.Second)
		type mark struct {
			at time.Time
			n  int64
		}
		marks := []mark{{start, 0}}
		draw := func(now time.Time, final bool) {
			cur := n.Load()
			marks = append(marks, mark{now, cur})
			for len(marks) > 2 && now.Sub(marks[1].at) >= window {
				marks = marks[1:]
			}
			first := marks[0]
			rate := 0.0
			if dt := now.Sub(first.at).Seconds(); dt > 0 {
				rate = float64(cur-first.n) / dt
			}
			line := formatProgress(progressSnapshot{what: what, done: cur, elapsed: now.Sub(start), msgsPerS: rate, sizeBytes: size, end: end})
			switch {
			case tty && final:
				fmt.Fprintf(w, "\r%s\n", line)
			case tty:
				fmt.Fprintf(w, "\r%s", line)
			case !final:
				fmt.Fprintln(w, line)
			}
		}
		for {
			select {
			case <-stop:
				draw(time.Now(), true)
				return
			case now := <-t.C:
				draw(now, false)
			}
		}
	}()
	return func() { close(stop); <-done }
}
