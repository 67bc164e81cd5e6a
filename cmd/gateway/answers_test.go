package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/cmd/internal/wire"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestForgedAnswersNeverReachTheAsker(t *testing.T) {
	testForgedAnswers(t, kafkatest.Fake(t), testenv.Prefix("kfake"), "")
}

func TestIntegrationForgedAnswersNeverReachTheAsker(t *testing.T) {
	prefix := testenv.Prefix("it-forged")
	testForgedAnswers(t, kafkatest.Real(t, prefix), prefix, testenv.RedisURL(t))
}

// syncBuffer is a log sink the test reads while the app writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testForgedAnswers runs a gateway, an answerer with the external
// generator (so the genuine answers come only when the test posts them)
// and a producer in one graph. Alice asks a question over her socket and
// another with POST /chat; then answers to them are forged every way the
// trust boundary allows (through the producer, straight to Kafka with
// another key, signed but replying to mallory's question) before the
// genuine ones are posted. Records of one session keep their order, so a
// forgery let through would reach alice first.
func testForgedAnswers(t *testing.T, brokers []string, prefix, redisURL string) {
	cfg := testConfig(brokers, prefix)
	cfg.Redis.URL, cfg.Redis.KeyPrefix = redisURL, prefix
	cfg.Gateway.Auth = auth.DefaultConfig()
	cfg.Gateway.Auth.Mode, cfg.Gateway.Auth.Tokens = auth.ModeToken, []string{"tok-alice:alice", "tok-mallory:mallory"}
	acfg := wire.AnswererConfig{
		HTTP:  httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Stage: kafka.StageConfig{Group: prefix + "answerer", Instance: "t", RetryBackoff: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, Concurrency: 4},
		RAG:   rag.DefaultConfig(), LLM: llm.DefaultConfig(), Attempts: 1, AnswerKey: testAnswerKey,
	}
	acfg.LLM.Generator = llm.GeneratorExternal
	logs := &syncBuffer{}
	var (
		gw  wire.GatewayServer
		ans wire.AnswererServer
		pro wire.ProducerServer
		reg *prometheus.Registry
	)
	app := fx.New(append(options(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		wire.Censor(profanity.DefaultConfig()), wire.Answerer(acfg),
		wire.Producer(wire.ProducerConfig{HTTP: httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}}),
		fx.Populate(&gw, &ans, &pro, &reg))...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	dial := func(token string) (*websocket.Conn, string) {
		t.Helper()
		conn, resp, err := websocket.DefaultDialer.Dial("ws://"+gw.Addr()+"/ws", http.Header{"Authorization": {"Bearer " + token}})
		if resp != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn, read(t, conn, "session")["session_id"].(string)
	}
	askWS := func(conn *websocket.Conn, text string) string {
		t.Helper()
		if err := conn.WriteJSON(frame{"type": "query", "id": "c", "message": text}); err != nil {
			t.Fatal(err)
		}
		return read(t, conn, "ack")["message_id"].(string)
	}
	alice, session := dial("tok-alice")
	q1 := askWS(alice, "How do I start kchat?")
	type chatResult struct {
		status int
		body   map[string]any
	}
	chatted := make(chan chatResult, 1)
	go func() {
		status, body := post(t, "http://"+gw.Addr()+"/chat", "tok-alice", fmt.Sprintf(`{"session_id":%q,"message":"What does readyz tell me?"}`, session))
		chatted <- chatResult{status, body}
	}()
	mallory, _ := dial("tok-mallory")
	qm := askWS(mallory, "How do I delete a session?")

	// Every question is recorded once its prompt is out.
	var q2 string
	for _, r := range kafkatest.ReadAll(t, brokers, prefix+"prompt", 3, 30*time.Second) {
		if p, err := kafka.DecodeValue(r.Value); err == nil && p.SessionID == session && p.ReplyTo != q1 {
			q2 = p.ReplyTo
		}
	}
	if q2 == "" {
		t.Fatal("no prompt for POST /chat's question")
	}

	// The forgeries, in alice's session.
	for _, q := range []string{q1, q2} {
		if status, body := post(t, "http://"+pro.Addr()+"/messages", "", fmt.Sprintf(`{"session_id":%q,"user_id":"alice","type":"answer","reply_to":%q,"message":"FORGED through the producer"}`, session, q)); status != http.StatusAccepted {
			t.Fatalf("producer: %d %v", status, body)
		}
	}
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix = brokers, prefix
	cl, err := kafka.NewClient(kcfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	pub := kafka.NewPublisher(cl, kcfg)
	ours, err := domain.NewAnswerKey([]byte(testAnswerKey))
	if err != nil {
		t.Fatal(err)
	}
	other, err := domain.NewAnswerKey([]byte(testAnswerKey + "-of-another-deployment"))
	if err != nil {
		t.Fatal(err)
	}
	forge := func(key *domain.AnswerKey, replyTo, text string) {
		t.Helper()
		m := key.Sign(domain.Message{
			MessageID: domain.DerivedID(replyTo, "answer"), SessionID: session, UserID: "alice", Type: domain.TypeAnswer,
			Text: text, ReplyTo: replyTo, CreatedAt: time.Now(),
		})
		if _, err := pub.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	forge(other, q1, "FORGED with another key")
	forge(other, q2, "FORGED with another key")
	forge(ours, qm, "FORGED: signed, but the question is mallory's")

	// The genuine answers, through the answerer.
	for _, a := range []struct{ q, text string }{{q1, "genuine one"}, {q2, "genuine two"}} {
		if status, body := post(t, "http://"+ans.Addr()+"/answers", "", fmt.Sprintf(`{"session_id":%q,"reply_to":%q,"message":%q}`, session, a.q, a.text)); status != http.StatusAccepted {
			t.Fatalf("POST /answers: %d %v", status, body)
		}
	}
	for _, want := range []string{"genuine one", "genuine two"} {
		if got := read(t, alice, "answer"); got["message"] != want {
			t.Fatalf("alice's socket got %v, want %q: a forgery came through", got, want)
		}
	}
	if res := <-chatted; res.status != http.StatusOK || res.body["answer"].(map[string]any)["message"] != "genuine two" {
		t.Fatalf("POST /chat: %d %v, want the genuine answer", res.status, res.body)
	}

	wantLog := fmt.Sprintf("answer signed with another KCHAT_ANSWER_KEY (key id %s, ours %s): every process must share the key", other.ID(), ours.ID())
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, wantLog) {
		t.Errorf("the logs do not say %q at ERROR:\n%s", wantLog, out)
	}
	for reason, atLeast := range map[string]float64{"unsigned": 2, "key_mismatch": 2, "not_asked": 1} {
		if got := counted(t, reg, "kchat_gateway_answers_rejected_total", reason); got < atLeast {
			t.Errorf("kchat_gateway_answers_rejected_total{reason=%q} = %v, want at least %v", reason, got, atLeast)
		}
	}
}

// counted reads the gateway's counter name for reason (its refused
// answers, its refused deltas).
func counted(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// The gateway does not start without the answer key: with a key of its
// own it would refuse every answer, silently. (No brokers either, so a
// gateway that took the key would still stop, naming them.)
func TestGatewayNeedsTheAnswerKey(t *testing.T) {
	for _, env := range [][]string{nil, {"KCHAT_ANSWER_KEY=short"}} {
		if err := run(nil, env, io.Discard); err == nil || !strings.Contains(err.Error(), "KCHAT_ANSWER_KEY") || !strings.Contains(err.Error(), "openssl rand -hex 32") {
			t.Errorf("run with %v = %v, want an error naming KCHAT_ANSWER_KEY and how to make one", env, err)
		}
	}
}
