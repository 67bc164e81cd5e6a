package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

func TestPostAnswer(t *testing.T) {
	key, err := domain.NewAnswerKey([]byte("a key of at least thirty-two bytes, for tests"))
	if err != nil {
		t.Fatal(err)
	}
	sessions := memory.NewSessions(memory.SessionsConfig{MaxTurns: 50, TTL: time.Hour})
	if _, err := sessions.Record(context.Background(), "s1", "alice", domain.Turn{Role: domain.RoleUser, MessageID: "q1", Text: "how?"}, 10); err != nil {
		t.Fatal(err)
	}
	broker := memory.NewBroker("")
	log := slog.New(slog.DiscardHandler)
	s := httpapi.NewServer(httpapi.ServerConfig{Addr: ":0"}, "kchat answerer", nil, log)
	(&httpapi.Answerer{Post: &app.PostAnswer{Sessions: sessions, Publisher: broker, Key: key}, Log: log}).Register(s.API())
	h := s.Handler()

	tests := []struct {
		name string
		body string
		want int
	}{
		{"an answer", `{"session_id":"s1","reply_to":"q1","message":"Like this [1].","citations":[{"n":1,"source":"running.md"}]}`, http.StatusAccepted},
		{"the same again", `{"session_id":"s1","reply_to":"q1","message":"Like this [1].","citations":[{"n":1,"source":"running.md"}]}`, http.StatusAccepted},
		{"another answer", `{"session_id":"s1","reply_to":"q1","message":"Otherwise."}`, http.StatusConflict},
		{"no such question", `{"session_id":"s1","reply_to":"q9","message":"x"}`, http.StatusNotFound},
		{"no reply_to", `{"session_id":"s1","message":"x"}`, http.StatusUnprocessableEntity},
		{"a producer-style signature field", `{"session_id":"s1","reply_to":"q1","message":"x","signature":"abc"}`, http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		r := do(t, h, http.MethodPost, "/answers", "application/json", tt.body)
		if r.status != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.raw, tt.want)
		}
		if tt.want == http.StatusAccepted && (r.body["message_id"] != domain.DerivedID("q1", "answer") || r.body["topic"] != "answer") {
			t.Errorf("%s: body %s", tt.name, r.raw)
		}
	}
}

// The producer never signs, nor passes a signature on: a message that
// brings one is refused whole.
func TestProducerTakesNoSignature(t *testing.T) {
	broker := memory.NewBroker("")
	h := newProducer(t, broker, broker)
	for _, path := range []string{"/messages", "/messages/batch"} {
		body := `{"session_id":"s1","user_id":"alice","type":"answer","reply_to":"q1","message":"forged","signature":"0123abcd.AAAA"}`
		if path == "/messages/batch" {
			body = `{"messages":[` + body + `]}`
		}
		if r := do(t, h, http.MethodPost, path, "application/json", body); r.status != http.StatusUnprocessableEntity {
			t.Errorf("POST %s with a signature: %d %s, want 422", path, r.status, r.raw)
		}
	}
	for _, msgs := range broker.Messages("answer") {
		if len(msgs) != 0 {
			t.Fatalf("published %+v", msgs)
		}
	}
}
