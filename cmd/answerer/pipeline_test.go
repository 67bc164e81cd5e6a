package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestPipelineKfake(t *testing.T) {
	testPipeline(t, kafkatest.Fake(t), testenv.Prefix("kfake"), "")
}

func TestIntegrationPipeline(t *testing.T) {
	prefix := testenv.Prefix("it-answerer")
	brokers := kafkatest.Real(t, prefix)
	testPipeline(t, brokers, prefix, testenv.RedisURL(t))
}

// reader finds the messages of a topic that reply to a query.
type reader struct {
	t       *testing.T
	brokers []string
	topic   string
}

func (r reader) replyTo(queryID string) domain.Message {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var found []domain.Message
		for _, rec := range kafkatest.ReadAll(r.t, r.brokers, r.topic, 0, 2*time.Second) {
			m, err := kafka.DecodeValue(rec.Value)
			if err == nil && m.ReplyTo == queryID {
				found = append(found, m)
			}
		}
		if len(found) > 1 {
			r.t.Fatalf("%d messages on %s reply to %s, want 1", len(found), r.topic, queryID)
		}
		if len(found) == 1 {
			return found[0]
		}
	}
	r.t.Fatalf("no message on %s replies to %s", r.topic, queryID)
	return domain.Message{}
}

// testPipeline runs the answerer on brokers (and Redis when redisURL is
// set) and follows questions through query → prompt → answer.
func testPipeline(t *testing.T, brokers []string, prefix, redisURL string) {
	cfg := testConfig(brokers, prefix)
	cfg.Redis.URL, cfg.Redis.KeyPrefix = redisURL, prefix
	startApp(t, cfg)

	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix = brokers, prefix
	cl, err := kafka.NewClient(kcfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	pub := kafka.NewPublisher(cl, kcfg)
	ask := func(session, text string) domain.Message {
		t.Helper()
		q := domain.Message{MessageID: domain.NewMessageID(), SessionID: session, UserID: "alice", Type: domain.TypeQuery, Text: text, CreatedAt: time.Now()}
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := pub.Publish(context.Background(), q)
			if err == nil {
				return q
			}
			if time.Now().After(deadline) {
				t.Fatalf("publish: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // the answerer creates the topics
		}
	}
	prompts := reader{t, brokers, prefix + "prompt"}
	answers := reader{t, brokers, prefix + "answer"}

	session := "sess-" + prefix
	q := ask(session, "How do I start kchat on my laptop with make?")
	p := prompts.replyTo(q.MessageID)
	if p.Text != q.Text || len(p.Citations) == 0 || p.MessageID != domain.DerivedID(q.MessageID, "prompt") {
		t.Fatalf("prompt %+v", p)
	}
	a := answers.replyTo(q.MessageID)
	if len(a.Citations) == 0 || a.Citations[0].Source != "running.md" || !strings.Contains(a.Text, "[") {
		t.Fatalf("answer %q cites %+v, want running.md", a.Text, a.Citations)
	}
	key, err := domain.NewAnswerKey([]byte(testAnswerKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Verify(p); err != nil {
		t.Fatalf("the prompt is not signed: %v", err)
	}
	if err := key.Verify(a); err != nil {
		t.Fatalf("the answer is not signed: %v", err)
	}
	t.Logf("answer: %s (cites %s › %s)", a.Text, a.Citations[0].Source, a.Citations[0].Title)

	off := ask(session, "What is the capital of France?")
	if a := answers.replyTo(off.MessageID); a.Text != llm.NoAnswer || len(a.Citations) != 0 {
		t.Fatalf("off-topic answer %q with %d citations", a.Text, len(a.Citations))
	}

	rude := ask(session, "how the fuck do I acknowledge a message in manual mode?")
	p = prompts.replyTo(rude.MessageID)
	if strings.Contains(p.Text, "fuck") || !strings.Contains(p.Text, "acknowledge a message") {
		t.Fatalf("prompt question %q is not censored", p.Text)
	}
	// The session's earlier exchanges are in this prompt, each once.
	hist := domain.PromptFromMessage(p).History
	var got []string
	for _, h := range hist {
		got = append(got, string(h.Role)+":"+h.MessageID)
	}
	want := []string{
		"user:" + q.MessageID, "assistant:" + domain.DerivedID(q.MessageID, "answer"),
		"user:" + off.MessageID, "assistant:" + domain.DerivedID(off.MessageID, "answer"),
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("history %v, want %v", got, want)
	}
}
