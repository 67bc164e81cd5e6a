package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// openAIServer speaks the chat-completions streaming format; it fails the
// first failures calls with a 500.
func openAIServer(t *testing.T, failures int64, chunks ...string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= failures {
			http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range chunks {
			fmt.Fprintf(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", c)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func askOne(t *testing.T, brokers []string, prefix, text string) domain.Message {
	t.Helper()
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix = brokers, prefix
	cl, err := kafka.NewClient(kcfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	q := domain.Message{MessageID: domain.NewMessageID(), SessionID: "s-" + prefix, UserID: "bob", Type: domain.TypeQuery, Text: text, CreatedAt: time.Now()}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := kafka.NewPublisher(cl, kcfg).Publish(context.Background(), q)
		if err == nil {
			return q
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestOpenAIGeneratorStreamsAndRetries(t *testing.T) {
	brokers, prefix := kafkatest.Fake(t), testenv.Prefix("kfake")
	srv, calls := openAIServer(t, 1, "Run ", "`make run` ", "[1].")
	cfg := testConfig(brokers, prefix)
	cfg.Answerer.LLM.Generator, cfg.Answerer.LLM.BaseURL, cfg.Answerer.LLM.Model = "openai", srv.URL, "test-model"
	cfg.Answerer.Attempts = 3
	startApp(t, cfg)
	q := askOne(t, brokers, prefix, "How do I start kchat?")
	a := reader{t, brokers, prefix + "answer"}.replyTo(q.MessageID)
	if a.Text != "Run `make run` [1]." || len(a.Citations) != 1 || a.Metadata["error"] != nil {
		t.Fatalf("answer %q citations %+v metadata %v", a.Text, a.Citations, a.Metadata)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls to the model, want 2 (one failure, one retry)", calls.Load())
	}
}

func TestOpenAIGeneratorFailureAnswer(t *testing.T) {
	brokers, prefix := kafkatest.Fake(t), testenv.Prefix("kfake")
	srv, calls := openAIServer(t, 1<<30)
	cfg := testConfig(brokers, prefix)
	cfg.Answerer.LLM.Generator, cfg.Answerer.LLM.BaseURL, cfg.Answerer.LLM.Model = "openai", srv.URL, "test-model"
	cfg.Answerer.Attempts = 3
	startApp(t, cfg)
	q := askOne(t, brokers, prefix, "How do I start kchat?")
	a := reader{t, brokers, prefix + "answer"}.replyTo(q.MessageID)
	if a.Text != domain.FailedAnswerText || a.Metadata["error"] == nil || len(a.Citations) != 0 {
		t.Fatalf("failure answer %q metadata %v", a.Text, a.Metadata)
	}
	if !strings.Contains(fmt.Sprint(a.Metadata["error"]), "3 attempts") || calls.Load() != 3 {
		t.Fatalf("error %v after %d calls, want 3 attempts", a.Metadata["error"], calls.Load())
	}
	// The stream moves on: the next question is handled too.
	q2 := askOne(t, brokers, prefix, "And how do I stop it?")
	reader{t, brokers, prefix + "answer"}.replyTo(q2.MessageID)
}

func TestOpenAIGeneratorTimeoutIsRetried(t *testing.T) {
	brokers, prefix := kafkatest.Fake(t), testenv.Prefix("kfake")
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // hang past the timeout
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Done [1].\"}}]}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(brokers, prefix)
	cfg.Answerer.LLM.Generator, cfg.Answerer.LLM.BaseURL, cfg.Answerer.LLM.Model = "openai", srv.URL, "test-model"
	cfg.Answerer.LLM.Timeout = 300 * time.Millisecond
	startApp(t, cfg)
	q := askOne(t, brokers, prefix, "How do I start kchat?")
	a := reader{t, brokers, prefix + "answer"}.replyTo(q.MessageID)
	if a.Text != "Done [1]." || calls.Load() != 2 {
		t.Fatalf("answer %q after %d calls", a.Text, calls.Load())
	}
}
