package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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

// kcatProduceScenario produces the scenario's records with one idempotent
// kcat producer (librdkafka's enable.idempotence, acks=all, lz4) fed line
// by line through the target's kill; kcat exits 0 only if every record was
// delivered. kcat tells nothing of acknowledgements while it runs, and it
// holds the last lines it was given until it reads more (it reads ahead of
// each line): the first step is taken as under way once the partitions'
// end offsets hold half of it, and the rest of it is in kcat's hands with
// the second step when the leader is killed.
func kcatProduceScenario(t *testing.T, s *scenarioTarget, topic string) {
	t.Helper()
	ctx := harness.Context(t, 3*time.Minute)
	cmd := exec.CommandContext(ctx, needKcat(t), "-b", s.bootstrap(), "-P", "-t", topic, "-K", ":", "-H", "source=kcat",
		"-X", "acks=all", "-X", "enable.idempotence=true", "-z", "lz4")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // the test failed before kcat ended
	send := func(from, to int) {
		var in strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&in, "%s:%s\n", msgKey(i), msgValue(i))
		}
		if _, err := io.WriteString(stdin, in.String()); err != nil {
			t.Fatalf("write to kcat: %v\n%s", err, errb.String())
		}
	}
	wait := func(n int) {
		if n < scenarioMessages {
			n /= 2
			cl := s.running()
			defer cl.Close()
			harness.WaitFor(t, fmt.Sprintf("%s to hold %d records", topic, n), time.Minute, func() error {
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
				if err != nil {
					return err
				}
				total := 0
				ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
				if total < n {
					return fmt.Errorf("%d records", total)
				}
				return nil
			})
			return
		}
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, errb.String())
		}
	}
	s.produceInSteps(true, send, wait, nil)
}

// TestKcatScenario runs the client scenario with kcat: a balanced consumer
// group (-G) of two kcat processes, each stopping after its share (-c), with
// librdkafka committing what each delivered. kcat cannot give each message
// its own header, so every message carries the same one and the message
// number comes from the key.
func TestKcatScenario(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode scenarioMode) {
		topic, group := "kcat-e2e", "kcat-group"
		s := newScenarioTarget(t, mode, topic)
		adm := kadm.NewClient(seedsClient(t, s.addrs()))
		if _, err := adm.CreateTopic(harness.Context(t, time.Minute), 3, s.replication(), nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		adm.Close()
		kcatProduceScenario(t, s, topic)
		s.afterProduce()
		s.checkCodec(codecLZ4)

		consume := func(group string, members, each int) []received {
			var mu sync.Mutex
			var out []received
			var wg sync.WaitGroup
			for range members {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out1 := kcat(t, "", "-b", s.bootstrap(), "-G", group, "-c", strconv.Itoa(each), "-q", "-f", "%t %p %o %k %s %h\n",
						"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000", topic)
					for _, l := range strings.Split(strings.TrimSpace(out1), "\n") {
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
		s.betweenPasses(group)
		resumed := consume(group, 1, scenarioMessages-scenarioFirst)
		fresh := consume(topic+"-fresh", 1, scenarioMessages)
		checkScenario(t, first, resumed, fresh)
		s.checkOffsets(group)
	})
}
