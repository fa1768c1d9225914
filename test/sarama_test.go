package test

import (
	"context"
	"errors"
	"fmt"
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
	c.Producer.Compression = sarama.CompressionLZ4
	c.Net.MaxOpenRequests = 1
	// Enough retries to outlast a failover: Kafka's producers retry until a
	// two-minute delivery timeout.
	c.Producer.Retry.Max = 60
	c.Producer.Retry.Backoff = 250 * time.Millisecond
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	return c
}

// saramaGroupRun consumes want records with a group of members sarama
// consumer groups. Sarama delivers per claim; a shared counter stops every
// member at exactly want and marks (then commits) only what was taken.
func saramaGroupRun(t *testing.T, addrs []string, topic, group string, members, want int, commit bool) []received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := &saramaHandler{want: want, commit: commit, done: make(chan struct{})}
	var wg sync.WaitGroup
	var groups []sarama.ConsumerGroup
	for range members {
		cg, err := sarama.NewConsumerGroup(addrs, group, saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, cg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			logged := map[string]bool{}
			for ctx.Err() == nil && !h.finished() {
				err := cg.Consume(ctx, []string{topic}, h)
				if err == nil || errors.Is(err, sarama.ErrClosedConsumerGroup) || ctx.Err() != nil {
					continue
				}
				// A node is down (cluster mode): Consume fails at once until
				// sarama finds the coordinator elsewhere. Retry after a
				// backoff, as an application would, and log each error once.
				if !logged[err.Error()] {
					logged[err.Error()] = true
					t.Logf("consume: %v (retrying)", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
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

// saramaProduceScenario produces the scenario's records with sarama's
// idempotent async producer, through the target's kill.
func saramaProduceScenario(t *testing.T, s *scenarioTarget, topic string) {
	t.Helper()
	p, err := sarama.NewAsyncProducer(s.addrs(), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked, failed int
	var firstErr error
	var drained sync.WaitGroup
	drained.Add(2)
	go func() {
		defer drained.Done()
		for range p.Successes() {
			mu.Lock()
			acked++
			mu.Unlock()
		}
	}()
	go func() {
		defer drained.Done()
		for e := range p.Errors() {
			mu.Lock()
			failed++
			if firstErr == nil {
				firstErr = e
			}
			mu.Unlock()
		}
	}()
	defer func() {
		p.AsyncClose() // closes Successes and Errors once everything is answered
		drained.Wait()
	}()
	ctx := harness.Context(t, 2*time.Minute)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			m := &sarama.ProducerMessage{
				Topic: topic, Key: sarama.StringEncoder(msgKey(i)), Value: sarama.StringEncoder(msgValue(i)),
				Headers: []sarama.RecordHeader{{Key: []byte("idx"), Value: []byte(strconv.Itoa(i))}},
			}
			select {
			case p.Input() <- m:
			case <-ctx.Done():
				t.Fatalf("sarama took no more records after %d", i)
			}
		}
	}
	wait := func(n int) {
		harness.WaitFor(t, fmt.Sprintf("sarama's answers to %d records", n), 2*time.Minute, func() error {
			mu.Lock()
			defer mu.Unlock()
			if acked+failed < n {
				return fmt.Errorf("%d acknowledged, %d failed", acked, failed)
			}
			return nil
		})
		mu.Lock()
		defer mu.Unlock()
		if failed > 0 {
			t.Fatalf("%d of %d records failed, first: %v", failed, n, firstErr)
		}
	}
	s.produceInSteps(true, send, wait, func() int {
		mu.Lock()
		defer mu.Unlock()
		return acked
	})
}

// TestSaramaScenario runs the client scenario with sarama.
func TestSaramaScenario(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode scenarioMode) {
		topic, group := "sarama-e2e", "sarama-group"
		s := newScenarioTarget(t, mode, topic)
		adm, err := sarama.NewClusterAdmin(s.addrs(), saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: s.replication()}, false); err != nil {
			t.Fatal(err)
		}
		adm.Close()
		saramaProduceScenario(t, s, topic)
		s.afterProduce()
		s.checkCodec(codecLZ4)

		// Members share one counter that stops at exactly the number wanted
		// and marks only what it counted; every session commits its marks
		// when it ends (also at a rebalance), so a partition that moves is
		// resumed where it was left.
		first := saramaGroupRun(t, s.addrs(), topic, group, 2, scenarioFirst, true)
		s.betweenPasses(group)
		resumed := saramaGroupRun(t, s.addrs(), topic, group, 2, scenarioMessages-scenarioFirst, true)
		fresh := saramaGroupRun(t, s.addrs(), topic, "sarama-fresh", 2, scenarioMessages, false)
		checkScenario(t, first, resumed, fresh)

		adm, err = sarama.NewClusterAdmin(s.addrs(), saramaConfig())
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
		s.checkOffsets(group)
	})
}
