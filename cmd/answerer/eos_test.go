package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// TestIntegrationExactlyOnceAcrossKills kills the answerer (kill -9) three
// times while 300 queries flow; afterwards every query has exactly one
// prompt and one answer, as read at read_committed.
func TestIntegrationExactlyOnceAcrossKills(t *testing.T) {
	prefix := testenv.Prefix("it-eos")
	brokers := kafkatest.Real(t, prefix)
	redisURL := testenv.RedisURL(t)
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(kcfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, kcfg, log, append(kafka.PipelineTopics(kcfg), kafka.DeadLetterTopics(kcfg)...)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub := kafka.NewPublisher(cl, kcfg)

	bin := proctest.Build(t, "github.com/kchat/kchat/cmd/answerer")
	start := func() *proctest.Proc {
		return proctest.Start(t, bin, "KCHAT_ANSWERER_ADDR",
			"KCHAT_KAFKA_BROKERS="+strings.Join(brokers, ","),
			"KCHAT_TOPIC_PREFIX="+prefix,
			"KCHAT_REDIS_URL="+redisURL,
			"KCHAT_REDIS_PREFIX="+prefix,
			"KCHAT_ANSWERER_GROUP="+prefix+"answerer",
			"KCHAT_ANSWERER_INSTANCE=eos-test", // a restart fences the killed process
			"KCHAT_ANSWERER_SESSION_TIMEOUT=6s",
			"KCHAT_ANSWER_KEY="+testAnswerKey,
		)
	}
	proc := start()

	const n = 300
	ids := make([]string, n)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			q := domain.Message{
				MessageID: domain.NewMessageID(), SessionID: fmt.Sprintf("s%d", i%25), UserID: "u",
				Type: domain.TypeQuery, Text: fmt.Sprintf("How do I acknowledge a message in manual mode? (%d)", i), CreatedAt: time.Now(),
			}
			ids[i] = q.MessageID
			if _, err := pub.Publish(context.Background(), q); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			time.Sleep(40 * time.Millisecond) // about 12 s of traffic
		}
	})
	for kill := range 3 {
		time.Sleep(3 * time.Second)
		proc.Kill()
		t.Logf("kill -9 #%d", kill+1)
		proc = start()
	}
	wg.Wait()

	count := func(topic string) map[string]int {
		byQuery := map[string]int{}
		deadline := time.Now().Add(120 * time.Second)
		for {
			clear(byQuery)
			for _, r := range kafkatest.ReadAll(t, brokers, topic, 0, 3*time.Second) {
				m, err := kafka.DecodeValue(r.Value)
				if err != nil {
					t.Fatalf("%s: %v", topic, err)
				}
				byQuery[m.ReplyTo]++
			}
			if len(byQuery) >= n || time.Now().After(deadline) {
				return byQuery
			}
			time.Sleep(time.Second)
		}
	}
	for _, topic := range []string{prefix + "prompt", prefix + "answer"} {
		byQuery := count(topic)
		missing, dups := 0, 0
		for _, id := range ids {
			switch c := byQuery[id]; {
			case c == 0:
				missing++
			case c > 1:
				dups += c - 1
			}
		}
		if missing > 0 || dups > 0 {
			t.Errorf("%s: %d queries without output, %d duplicates (read_committed)", topic, missing, dups)
		}
		t.Logf("%s: %d of %d queries have exactly one record", topic, n-missing, n)
	}
	if err := proc.Stop(30 * time.Second); err != nil {
		t.Error(err)
	}
}
