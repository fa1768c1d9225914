package test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

func needKcat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not installed (make deps installs Debian's kcat): %v", err)
	}
	return p
}

// kcat runs kcat with args and stdin, and returns its stdout.
func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, needKcat(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// TestKcatCompressionRoundTrip produces with every codec kcat has, reads the
// records back with kcat, and checks with franz-go that each batch is stored
// with the codec it was sent with.
func TestKcatCompressionRoundTrip(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	const count = 2000
	var in strings.Builder
	for i := range count {
		fmt.Fprintf(&in, "%s:%s\n", msgKey(i), msgValue(i))
	}
	codecs := map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for codec, attr := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			kcat(t, in.String(), "-b", n.Addr(), "-P", "-t", topic, "-K", ":", "-z", codec, "-X", "linger.ms=20")
			out := kcat(t, "", "-b", n.Addr(), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %k %s\n")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != count {
				t.Fatalf("read %d records back, want %d", len(lines), count)
			}
			seen := map[string]bool{}
			for _, l := range lines {
				f := strings.Fields(l)
				if len(f) != 4 || !strings.HasPrefix(f[2], "key-") {
					t.Fatalf("bad line %q", l)
				}
				i, _ := strconv.Atoi(strings.TrimPrefix(f[2], "key-"))
				if f[3] != msgValue(i) || seen[f[2]] {
					t.Fatalf("record %q: wrong value or repeated", l)
				}
				seen[f[2]] = true
			}
			cl := franzClient(t, n.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			defer cl.Close()
			got, withCodec := 0, 0
			ctx := harness.Context(t, time.Minute)
			for got < count && ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					got++
					// librdkafka sends a batch uncompressed when compressing
					// does not make it smaller (a lone small record).
					switch c := r.Attrs.CompressionType(); c {
					case attr:
						withCodec++
					case 0:
					default:
						t.Fatalf("record at %d/%d stored with codec %d, sent with %d", r.Partition, r.Offset, c, attr)
					}
				})
			}
			if got != count || withCodec < count/2 {
				t.Fatalf("franz-go read %d records, %d of them in batches compressed with codec %d", got, withCodec, attr)
			}
		})
	}
}

// TestKcatScenario runs the client scenario with kcat: a balanced consumer
// group (-G) of two kcat processes, each stopping after its share (-c), with
// librdkafka committing what each delivered. kcat cannot give each message
// its own header, so every message carries the same one and the message
// number comes from the key.
func TestKcatScenario(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	topic, group := "kcat-e2e", "kcat-group"
	kadmCreate(t, n.Addr(), topic, 3)
	var in strings.Builder
	for i := range scenarioMessages {
		fmt.Fprintf(&in, "%s:%s\n", msgKey(i), msgValue(i))
	}
	kcat(t, in.String(), "-b", n.Addr(), "-P", "-t", topic, "-K", ":", "-H", "source=kcat", "-X", "acks=all")

	consume := func(group string, members, each int) []received {
		var mu sync.Mutex
		var out []received
		var wg sync.WaitGroup
		for range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := kcat(t, "", "-b", n.Addr(), "-G", group, "-c", strconv.Itoa(each), "-q", "-f", "%t %p %o %k %s %h\n",
					"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000", topic)
				for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
					f := strings.Fields(l)
					if len(f) != 6 || f[5] != "source=kcat" {
						t.Errorf("bad kcat line %q", l)
						return
					}
					p, _ := strconv.Atoi(f[1])
					o, _ := strconv.ParseInt(f[2], 10, 64)
					i, _ := strconv.Atoi(strings.TrimPrefix(f[3], "key-"))
					mu.Lock()
					out = append(out, received{Topic: f[0], Partition: int32(p), Offset: o, Key: f[3], Value: f[4], Header: strconv.Itoa(i)})
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return out
	}
	first := consume(group, 2, scenarioFirst/2)
	n.Kill()
	n.Start()
	resumed := consume(group, 1, scenarioMessages-scenarioFirst)
	fresh := consume(topic+"-fresh", 1, scenarioMessages)
	checkScenario(t, first, resumed, fresh)
}
