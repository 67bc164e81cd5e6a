package main

import (
	"context"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
)

func TestHistoryRecordedOnceAcrossRetriesMemory(t *testing.T) {
	testHistoryAcrossRetries(t, memory.NewSessions(memory.SessionsConfig{MaxTurns: 50, TTL: time.Hour}))
}

func TestIntegrationHistoryRecordedOnceAcrossRetriesRedis(t *testing.T) {
	cfg := redis.DefaultConfig()
	cfg.URL, cfg.KeyPrefix = testenv.RedisURL(t), testenv.Prefix("it-hist")
	s, err := redis.NewSessions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	testHistoryAcrossRetries(t, s)
}

// testHistoryAcrossRetries runs each stage twice for every question, as a
// crash between the session write and the Kafka commit would: both turns of
// every exchange are recorded once, and the next prompt contains them.
func testHistoryAcrossRetries(t *testing.T, sessions ports.SessionStore) {
	idx, err := rag.New(rag.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	prepare := &app.PreparePrompt{Sessions: sessions, Retriever: idx, Censor: profanity.New(profanity.DefaultConfig()), TopK: 3}
	key, err := domain.NewAnswerKey([]byte(testAnswerKey))
	if err != nil {
		t.Fatal(err)
	}
	answer := &app.Answer{Sessions: sessions, Generator: llm.NewExtractive(), Key: key, Attempts: 1}
	ctx := context.Background()
	session := "hist-" + domain.NewMessageID()
	var exchanges []string
	var last domain.Message
	for i, text := range []string{"How do I start kchat?", "How do I acknowledge a message in manual mode?", "What does readyz tell me?"} {
		q := domain.Message{MessageID: domain.NewMessageID(), SessionID: session, UserID: "carol", Type: domain.TypeQuery, Text: text}
		var p domain.Message
		for range 2 { // the stage is retried
			if p, err = prepare.Execute(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		p = key.Sign(p) // as the retrieve stage does
		hist := domain.PromptFromMessage(p).History
		if len(hist) != 2*i {
			t.Fatalf("question %d: prompt has %d history turns, want %d", i, len(hist), 2*i)
		}
		for j, h := range hist {
			if h.MessageID != exchanges[j] {
				t.Fatalf("question %d: history turn %d is %s, want %s", i, j, h.MessageID, exchanges[j])
			}
		}
		var a1, a2 domain.Message
		if a1, err = answer.Execute(ctx, p); err != nil {
			t.Fatal(err)
		}
		if a2, err = answer.Execute(ctx, p); err != nil {
			t.Fatal(err)
		}
		if a1.MessageID != a2.MessageID || a1.Text != a2.Text {
			t.Fatalf("a retried answer differs: %+v vs %+v", a1, a2)
		}
		exchanges = append(exchanges, q.MessageID, a1.MessageID)
		last = a1
	}
	turns, err := sessions.Recent(ctx, session, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(turns) != len(exchanges) {
		t.Fatalf("session holds %d turns, want %d (each once)", len(turns), len(exchanges))
	}
	for i, tr := range turns {
		if tr.MessageID != exchanges[i] {
			t.Fatalf("turn %d is %s, want %s", i, tr.MessageID, exchanges[i])
		}
	}
	if tr := turns[len(turns)-1]; tr.Role != domain.RoleAssistant || tr.Text != last.Text || len(tr.Citations) != len(last.Citations) {
		t.Fatalf("last turn %+v, want the answer with its citations", tr)
	}
}
