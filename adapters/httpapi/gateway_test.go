package httpapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// quietFeed is an answer feed that never answers.
type quietFeed struct{}

// Reply is unset and Widen a no-op: the test's feed reads every answer.
func (quietFeed) Reply(string) domain.Reply { return domain.Reply{} }

func (quietFeed) Widen(context.Context) (func(), error) { return func() {}, nil }

func (quietFeed) Subscribe(context.Context, func(domain.Message)) error { return nil }

// acceptAll takes every query.
type acceptAll struct{}

func (acceptAll) PublishQuery(context.Context, domain.Message) error { return nil }

// newGateway is the gateway's chat routes on in-memory sessions; the user
// is the bearer token itself, and "bad" is refused.
func newGateway(t *testing.T, burst int) http.Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	sessions := memory.NewSessions(memory.SessionsConfig{MaxTurns: 50, TTL: time.Hour})
	ask := &app.Ask{Sessions: sessions, Publisher: acceptAll{}, Limiter: ratelimit.New(ratelimit.Config{Rate: 0.001, Burst: burst})}
	g := &httpapi.Gateway{
		Chat:    &app.Chat{Ask: ask, Answers: &app.Answers{Feed: quietFeed{}}, Timeout: 10 * time.Millisecond},
		History: &app.SessionHistory{Sessions: sessions, Limit: 10},
		Authenticate: func(r *http.Request) (string, error) {
			user := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if user == "" || user == "bad" {
				return "", errors.New("unauthorized: token expired")
			}
			return user, nil
		},
		Log: log,
	}
	s := httpapi.NewServer(httpapi.ServerConfig{Addr: ":0"}, "gateway", nil, log)
	g.Register(s.API())
	return s.Handler()
}

func authed(t *testing.T, h http.Handler, method, path, user, body string) response {
	t.Helper()
	return doWith(t, h, method, path, "application/json", body, http.Header{"Authorization": {"Bearer " + user}})
}

// POST /chat obeys the per-user limit, as the WebSocket does: 429 with
// Retry-After, and nothing published.
func TestChatIsRateLimited(t *testing.T) {
	h := newGateway(t, 2)
	for i := range 2 {
		if r := authed(t, h, http.MethodPost, "/chat", "alice", `{"message":"hi"}`); r.status != http.StatusGatewayTimeout {
			t.Fatalf("question %d: %d %s, want 504 (published; no answerer here)", i+1, r.status, r.raw)
		}
	}
	r := authed(t, h, http.MethodPost, "/chat", "alice", `{"message":"hi"}`)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("third question: %d (Retry-After %q), want 429 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	if r := authed(t, h, http.MethodPost, "/chat", "bob", `{"message":"hi"}`); r.status != http.StatusGatewayTimeout {
		t.Fatalf("another user: %d, want 504: limits are per user", r.status)
	}
}

// A refused credential gets a generic 401: which check failed stays in the
// log.
func TestUnauthorizedSaysLittle(t *testing.T) {
	h := newGateway(t, 10)
	r := authed(t, h, http.MethodPost, "/chat", "bad", `{"message":"hi"}`)
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("%d %v, want 401 with WWW-Authenticate: Bearer", r.status, r.header)
	}
	if strings.Contains(r.raw, "expired") || strings.Count(strings.ToLower(r.raw), "unauthorized") > 1 {
		t.Fatalf("401 body says too much: %s", r.raw)
	}
}

// Reading a session that does not exist is 404 and creates nothing.
func TestHistoryOfAnUnknownSession(t *testing.T) {
	h := newGateway(t, 10)
	if r := authed(t, h, http.MethodGet, "/sessions/future/history", "mallory", ""); r.status != http.StatusNotFound {
		t.Fatalf("history of an unknown session: %d %s, want 404", r.status, r.raw)
	}
	if r := authed(t, h, http.MethodDelete, "/sessions/future", "mallory", ""); r.status != http.StatusNotFound {
		t.Fatalf("delete of an unknown session: %d %s, want 404", r.status, r.raw)
	}
	if r := authed(t, h, http.MethodGet, "/sessions/a%1Bb/history", "mallory", ""); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("history of an id with ESC: %d %s, want 422", r.status, r.raw)
	}
}
