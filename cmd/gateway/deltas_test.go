package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/adapters/wire"
	wiring "github.com/kchat/kchat/cmd/internal/wire"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestDeltasReachOnlyTheAskingSession(t *testing.T) {
	testDeltas(t, kafkatest.Fake(t), testenv.Prefix("kfake"), "")
}

func TestIntegrationDeltasReachOnlyTheAskingSession(t *testing.T) {
	prefix := testenv.Prefix("it-deltas")
	testDeltas(t, kafkatest.Real(t, prefix), prefix, testenv.RedisURL(t))
}

// testDeltas runs a gateway and an answerer with the external generator
// (so nothing streams but what the test writes) in one graph. Alice asks
// over her socket; the test writes the answer's deltas to the stream
// topic itself, as the answerer would (wire.Delta, signed with the answer
// key): an attempt that breaks off, forgeries of every kind amid them,
// then the retry whole. Alice's socket gets the deltas in order and the
// retry's make the final answer; her other session's socket and mallory's
// get none; the forgeries are dropped and counted.
func testDeltas(t *testing.T, brokers []string, prefix, redisURL string) {
	cfg := testConfig(brokers, prefix)
	cfg.Redis.URL, cfg.Redis.KeyPrefix = redisURL, prefix
	cfg.Gateway.Auth = auth.DefaultConfig()
	cfg.Gateway.Auth.Mode, cfg.Gateway.Auth.Tokens = auth.ModeToken, []string{"tok-alice:alice", "tok-mallory:mallory"}
	acfg := wiring.AnswererConfig{
		HTTP:  httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Stage: kafka.StageConfig{Group: prefix + "answerer", Instance: "t", RetryBackoff: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, Concurrency: 4},
		RAG:   rag.DefaultConfig(), LLM: llm.DefaultConfig(), Attempts: 1, AnswerKey: testAnswerKey,
	}
	acfg.LLM.Generator = llm.GeneratorExternal

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := domain.StreamTopicName(prefix)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatal(err)
	}

	var (
		gw  wiring.GatewayServer
		ans wiring.AnswererServer
		reg *prometheus.Registry
	)
	app := fx.New(append(options(cfg, slog.New(slog.DiscardHandler)),
		wiring.Censor(profanity.DefaultConfig()), wiring.Answerer(acfg), fx.Populate(&gw, &ans, &reg))...)
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	dial := func(token, query string) (*websocket.Conn, string) {
		t.Helper()
		conn, resp, err := websocket.DefaultDialer.Dial("ws://"+gw.Addr()+"/ws"+query, http.Header{"Authorization": {"Bearer " + token}})
		if resp != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn, read(t, conn, "session")["session_id"].(string)
	}
	alice, session := dial("tok-alice", "")
	aliceElsewhere, _ := dial("tok-alice", "")
	mallory, _ := dial("tok-mallory", "")
	if err := alice.WriteJSON(frame{"type": "query", "id": "c", "message": "How do I start kchat?"}); err != nil {
		t.Fatal(err)
	}
	q := read(t, alice, "ack")["message_id"].(string)
	kafkatest.ReadAll(t, brokers, prefix+"prompt", 1, 30*time.Second) // the question is recorded once its prompt is out

	ours, err := domain.NewAnswerKey([]byte(testAnswerKey))
	if err != nil {
		t.Fatal(err)
	}
	other, err := domain.NewAnswerKey([]byte(testAnswerKey + "-of-another-deployment"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(d domain.Delta) {
		t.Helper()
		v, _ := json.Marshal(wire.DeltaOf(d))
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(d.SessionID), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	delta := func(attempt int64, seq int, text string) domain.Delta {
		return domain.Delta{ReplyTo: q, SessionID: session, UserID: "alice", Attempt: attempt, Seq: seq, Text: text}
	}
	final := []string{"Run `make run`: ", "it embeds a broker ", "and keeps sessions in memory."}
	write(ours.SignDelta(delta(100, 0, "Run make")))
	write(ours.SignDelta(delta(100, 1, " r")))                   // the generation dies here
	write(other.SignDelta(delta(100, 2, "FORGED: another key"))) //
	write(delta(200, 0, "FORGED: unsigned"))                     //
	tampered := ours.SignDelta(delta(200, 0, final[0]))
	tampered.Text = "FORGED: tampered"
	write(tampered)
	write(ours.SignDelta(domain.Delta{ReplyTo: q, SessionID: session, UserID: "mallory", Attempt: 300, Seq: 0, Text: "FORGED: mallory's"}))
	for i, text := range final { // the retry
		write(ours.SignDelta(delta(200, i, text)))
	}

	var got []string
	var text strings.Builder
	for len(got) < 2+len(final) {
		f := read(t, alice, "answer_delta")
		if f["reply_to"] != q {
			t.Fatalf("delta frame %v", f)
		}
		got = append(got, fmt.Sprintf("%v/%v:%v", f["attempt"], f["seq"], f["text"]))
		if f["seq"] == float64(0) {
			text.Reset()
		}
		text.WriteString(f["text"].(string))
	}
	if want := "100/0:Run make 100/1: r 200/0:" + final[0] + " 200/1:" + final[1] + " 200/2:" + final[2]; strings.Join(got, " ") != want {
		t.Errorf("alice's deltas %q, want %q", strings.Join(got, " "), want)
	}
	if text.String() != strings.Join(final, "") {
		t.Errorf("the final attempt's deltas make %q, want %q", text.String(), strings.Join(final, ""))
	}
	if status, body := post(t, "http://"+ans.Addr()+"/answers", "", fmt.Sprintf(`{"session_id":%q,"reply_to":%q,"message":%q}`, session, q, text.String())); status != http.StatusAccepted {
		t.Fatalf("POST /answers: %d %v", status, body)
	}
	// read skips nothing but the frames it is not waiting for: an
	// answer_delta before the answer would be a forgery let through.
	_ = alice.SetReadDeadline(time.Now().Add(30 * time.Second))
	var f frame
	if err := alice.ReadJSON(&f); err != nil || f["type"] != "answer" || f["message"] != strings.Join(final, "") {
		t.Fatalf("after the deltas alice got %v (%v), want the final answer", f, err)
	}
	for name, conn := range map[string]*websocket.Conn{"alice's other session": aliceElsewhere, "mallory": mallory} {
		if err := conn.WriteJSON(frame{"type": "ping"}); err != nil {
			t.Fatal(err)
		}
		for {
			var f frame
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			if err := conn.ReadJSON(&f); err != nil {
				t.Fatal(err)
			}
			if f["type"] == "pong" {
				break
			}
			if f["type"] == "answer_delta" || f["type"] == "answer" {
				t.Errorf("%s's socket got %v", name, f)
			}
		}
	}
	for reason, want := range map[string]float64{"key_mismatch": 1, "unsigned": 1, "bad_signature": 1} {
		if got := counted(t, reg, "kchat_gateway_deltas_rejected_total", reason); got != want {
			t.Errorf("kchat_gateway_deltas_rejected_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}
