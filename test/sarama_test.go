package test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/chronik-stream/chronik/test/harness"
)

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.ClientID = "sarama-e2e"
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 10
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	return c
}

// saramaGroupRun consumes want records with a group of members sarama
// consumer groups. Sarama delivers per claim; a shared counter stops every
// member at exactly want and marks (then commits) only what was taken.
func saramaGroupRun(t *testing.T, addr, topic, group string, members, want int, commit bool) []received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := &saramaHandler{want: want, commit: commit, done: make(chan struct{})}
	var wg sync.WaitGroup
	var groups []sarama.ConsumerGroup
	for range members {
		cg, err := sarama.NewConsumerGroup([]string{addr}, group, saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, cg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && !h.finished() {
				if err := cg.Consume(ctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) && ctx.Err() == nil {
					t.Logf("consume: %v", err)
				}
			}
		}()
	}
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("sarama group consumed %d of %d", h.count(), want)
	}
	cancel()
	wg.Wait()
	for _, cg := range groups {
		cg.Close()
	}
	return h.got
}

type saramaHandler struct {
	want     int
	commit   bool
	mu       sync.Mutex
	got      []received
	done     chan struct{}
	doneOnce sync.Once
}

func (h *saramaHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func (h *saramaHandler) finished() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	if h.commit {
		s.Commit()
	}
	return nil
}

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		if len(h.got) >= h.want {
			h.mu.Unlock()
			return nil
		}
		r := received{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)}
		for _, hd := range m.Headers {
			if string(hd.Key) == "idx" {
				r.Header = string(hd.Value)
			}
		}
		h.got = append(h.got, r)
		s.MarkMessage(m, "")
		full := len(h.got) >= h.want
		h.mu.Unlock()
		if full {
			if h.commit {
				s.Commit()
			}
			h.doneOnce.Do(func() { close(h.done) })
			return nil
		}
	}
	return nil
}

// TestSaramaScenario runs the client scenario with sarama.
func TestSaramaScenario(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	topic, group := "sarama-e2e", "sarama-group"

	adm, err := sarama.NewClusterAdmin([]string{n.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	adm.Close()

	p, err := sarama.NewSyncProducer([]string{n.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]*sarama.ProducerMessage, 0, scenarioMessages)
	for i := range scenarioMessages {
		msgs = append(msgs, &sarama.ProducerMessage{
			Topic: topic, Key: sarama.StringEncoder(msgKey(i)), Value: sarama.StringEncoder(msgValue(i)),
			Headers: []sarama.RecordHeader{{Key: []byte("idx"), Value: []byte(strconv.Itoa(i))}},
		})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	p.Close()

	// Members share one counter that stops at exactly the number wanted and
	// marks only what it counted; every session commits its marks when it
	// ends (also at a rebalance), so a partition that moves is resumed
	// where it was left.
	first := saramaGroupRun(t, n.Addr(), topic, group, 2, scenarioFirst, true)
	n.Kill()
	n.Start()
	resumed := saramaGroupRun(t, n.Addr(), topic, group, 2, scenarioMessages-scenarioFirst, true)
	fresh := saramaGroupRun(t, n.Addr(), topic, "sarama-fresh", 2, scenarioMessages, false)
	checkScenario(t, first, resumed, fresh)

	adm, err = sarama.NewClusterAdmin([]string{n.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	topics, err := adm.ListTopics()
	if err != nil || topics[topic].NumPartitions != 3 {
		t.Fatalf("list topics: %v %+v", err, topics[topic])
	}
	groups, err := adm.ListConsumerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups[group]; !ok {
		t.Fatalf("group %s not listed: %v", group, groups)
	}
	cfg, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil || len(cfg) == 0 {
		t.Fatalf("describe config: %v %v", err, cfg)
	}
}
