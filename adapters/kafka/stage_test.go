package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestStageKfake(t *testing.T) {
	t.Parallel()
	testStage(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationStage(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-stage")
	testStage(t, kafkatest.Real(t, prefix), prefix)
}

// testStage runs a query → prompt stage whose transform fails with
// ErrUnavailable now and then, over records that include poison: every
// query gets exactly one prompt, poison goes to the dead-letter topic.
func testStage(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	dlq := kafka.DeadLetterTopic(prefix + "query")
	if err := kafka.NewTopicAdmin(cl, cfg, log, append(kafka.PipelineTopics(cfg), kafka.DeadLetterTopics(cfg)...)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub := kafka.NewPublisher(cl, cfg)
	const n = 40
	var ids []string
	for i := range n {
		q := domain.Message{MessageID: domain.NewMessageID(), SessionID: fmt.Sprintf("s%d", i%7), UserID: "u", Type: domain.TypeQuery, Text: fmt.Sprintf("q%d", i)}
		ids = append(ids, q.MessageID)
		if _, err := pub.Publish(context.Background(), q); err != nil {
			t.Fatal(err)
		}
		if i == 10 {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: prefix + "query", Value: []byte("poison")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var calls, running, mostRunning atomic.Int64
	var perSession sync.Map // session → *atomic.Int64 running, which must never exceed 1
	transform := func(_ context.Context, q domain.Message) (domain.Message, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := mostRunning.Load(); n > m && !mostRunning.CompareAndSwap(m, n); m = mostRunning.Load() {
		}
		mine, _ := perSession.LoadOrStore(q.SessionID, new(atomic.Int64))
		if mine.(*atomic.Int64).Add(1) > 1 {
			t.Errorf("session %s: two of its messages transformed at once", q.SessionID)
		}
		defer mine.(*atomic.Int64).Add(-1)
		time.Sleep(2 * time.Millisecond) // a store round trip: lets sessions overlap
		if calls.Add(1)%9 == 0 {
			return domain.Message{}, fmt.Errorf("flaky: %w", domain.ErrUnavailable)
		}
		return domain.NewPromptMessage(q, domain.Prompt{Question: strings.ToUpper(q.Text)}, time.Now()), nil
	}
	scfg := kafka.StageConfig{Group: prefix + "answerer", Instance: "test", RetryBackoff: 10 * time.Millisecond, SessionTimeout: 6 * time.Second, Concurrency: 4}
	stage := kafka.NewStage("retrieve", domain.TypeQuery, cfg, scfg, log, nil, transform)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { runErr = stage.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if runErr != nil {
			t.Errorf("stage: %v", runErr)
		}
	})
	select {
	case <-done:
		t.Fatalf("stage stopped: %v", runErr)
	case <-time.After(2 * time.Second):
	}
	recs := kafkatest.ReadAll(t, brokers, prefix+"prompt", n, 60*time.Second)
	byQuery := map[string]int{}
	order := map[string][]string{} // session → query ids, in prompt order
	for _, r := range recs {
		m, err := kafka.DecodeValue(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		byQuery[m.ReplyTo]++
		order[m.SessionID] = append(order[m.SessionID], m.ReplyTo)
		if m.MessageID != domain.DerivedID(m.ReplyTo, "prompt") || !strings.HasPrefix(m.Text, "Q") {
			t.Errorf("prompt %+v", m)
		}
	}
	for _, id := range ids {
		if byQuery[id] != 1 {
			t.Errorf("query %s has %d prompts, want 1", id, byQuery[id])
		}
	}
	// A session's prompts come in the order of its queries, though
	// sessions are transformed concurrently.
	for i, id := range ids {
		session := fmt.Sprintf("s%d", i%7)
		if len(order[session]) == 0 || order[session][0] != id {
			t.Fatalf("session %s: prompts in order %v, want query %s next (queries in order %v)", session, order[session], id, ids)
		}
		order[session] = order[session][1:]
	}
	if mostRunning.Load() < 2 {
		t.Errorf("at most %d transforms ran at once: sessions of a batch are not transformed concurrently", mostRunning.Load())
	}
	dead := kafkatest.ReadAll(t, brokers, dlq, 1, 30*time.Second)
	if string(dead[0].Value) != "poison" || len(dead) != 1 {
		t.Fatalf("dead letters: %d, first %q", len(dead), dead[0].Value)
	}
	reason := ""
	for _, h := range dead[0].Headers {
		if h.Key == "kchat-dlq-reason" {
			reason = string(h.Value)
		}
	}
	if !strings.Contains(reason, "envelope") {
		t.Errorf("dead letter reason %q", reason)
	}
	if calls.Load() <= n {
		t.Errorf("transform ran %d times: the flaky failures were not retried", calls.Load())
	}
}
