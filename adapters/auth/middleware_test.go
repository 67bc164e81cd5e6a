package auth_test

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchat/kchat/adapters/auth"
)

const otherKey = "fedcba9876543210fedcba9876543210" // 32 bytes, not secret

// logBuffer is a concurrency-safe log sink for slog's JSON handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// visitorsOf is an Authenticator in none mode with key (empty: a random
// one), its log and its metrics.
func visitorsOf(t *testing.T, key string) (*auth.Authenticator, *logBuffer, *prometheus.Registry) {
	t.Helper()
	logs, reg := &logBuffer{}, prometheus.NewRegistry()
	a, err := auth.New(auth.Config{Mode: auth.ModeNone, CookieKey: key, TrustedProxies: []string{"10.0.0.0/8"}},
		slog.New(slog.NewJSONHandler(logs, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	return a, logs, reg
}

// visit sends r through Edge to a handler that authenticates twice, and
// returns the user and the response's Set-Cookie headers.
func visit(t *testing.T, a *auth.Authenticator, r *http.Request) (string, []string) {
	t.Helper()
	var users []string
	h := a.Edge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 2 {
			u, err := a.Authenticate(r)
			if err != nil {
				t.Fatalf("Authenticate in none mode: %v", err)
			}
			users = append(users, u)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if users[0] != users[1] {
		t.Fatalf("one request, two visitors: %v", users)
	}
	return users[0], rec.Result().Header.Values("Set-Cookie")
}

// withCookie is a request to /ws from peer carrying the visitor cookie
// value (none if empty).
func withCookie(value string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	if value != "" {
		r.AddCookie(&http.Cookie{Name: auth.VisitorCookie, Value: value})
	}
	return r
}

// cookieValue is the value of the visitor cookie in Set-Cookie headers.
func cookieValue(t *testing.T, setCookies []string) string {
	t.Helper()
	if len(setCookies) != 1 {
		t.Fatalf("Set-Cookie %q, want one visitor cookie", setCookies)
	}
	c, err := http.ParseSetCookie(setCookies[0])
	if err != nil || c.Name != auth.VisitorCookie {
		t.Fatalf("Set-Cookie %q: %v", setCookies[0], err)
	}
	return c.Value
}

// KCHAT_AUTH=none: a visitor without a cookie gets an identity of its own
// in an HttpOnly, SameSite=Lax cookie, and keeps it when it comes back.
func TestVisitorGetsAnIdentityOfItsOwn(t *testing.T) {
	a, _, _ := visitorsOf(t, secret)
	first, set := visit(t, a, withCookie(""))
	if !strings.HasPrefix(first, "visitor-") {
		t.Fatalf("visitor id %q", first)
	}
	c, err := http.ParseSetCookie(set[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 1 || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.MaxAge < 86400 {
		t.Fatalf("Set-Cookie %q: want one HttpOnly, SameSite=Lax, Path=/, lasting, not Secure over http", set)
	}
	again, set2 := visit(t, a, withCookie(c.Value))
	if again != first || len(set2) != 0 {
		t.Fatalf("coming back with the cookie: user %q (want %q), Set-Cookie %q (want none)", again, first, set2)
	}
	other, _ := visit(t, a, withCookie(""))
	if other == first {
		t.Fatal("two visitors without cookies got the same identity")
	}
	// Another replica with the same key knows the visitor.
	b, _, _ := visitorsOf(t, secret)
	if got, _ := visit(t, b, withCookie(c.Value)); got != first {
		t.Fatalf("a replica with the same key sees %q, want %q", got, first)
	}
}

// Nobody names itself in none mode: the seed's X-User-ID header and
// user_id parameter, and bearer tokens, are ignored.
func TestVisitorCannotNameItself(t *testing.T) {
	a, _, _ := visitorsOf(t, secret)
	r := httptest.NewRequest(http.MethodGet, "/ws?user_id=alice", nil)
	r.Header.Set("X-User-ID", "alice")
	r.Header.Set("Authorization", "Bearer alice")
	if got, _ := visit(t, a, r); got == "alice" || !strings.HasPrefix(got, "visitor-") {
		t.Fatalf("user %q, want a visitor id of its own", got)
	}
}

// A forged, tampered or foreign cookie never grants the identity it
// claims: the client gets a new one, and the rejection is counted; a
// cookie of another key is an ERROR naming KCHAT_COOKIE_KEY.
func TestForgedCookiesGetANewIdentity(t *testing.T) {
	a, logs, reg := visitorsOf(t, secret)
	victim, set := visit(t, a, withCookie(""))
	good := cookieValue(t, set)
	id, rest, _ := strings.Cut(good, ".")
	other, _, _ := visitorsOf(t, otherKey)
	_, otherSet := visit(t, other, withCookie(""))
	foreign := cookieValue(t, otherSet)

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name   string
		give   string
		reason string
	}{
		{"id changed, signature kept", flip(id, len(id)-1) + "." + rest, "bad_signature"},
		{"signature changed", good[:len(good)-2] + "AA", "bad_signature"},
		{"the victim's id, unsigned", victim, "malformed"},
		{"the victim's id with our key id, no mac", victim + "." + strings.Split(good, ".")[1] + ".", "bad_signature"},
		{"another key's cookie", foreign, "key_mismatch"},
		{"another key id on our signature", id + ".00000000." + strings.Split(good, ".")[2], "key_mismatch"},
		{"garbage", "x.y.z", "malformed"},
		{"not hex", strings.ToUpper(id) + "." + rest, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := rejected(t, reg, tt.reason)
			got, set := visit(t, a, withCookie(tt.give))
			if got == victim {
				t.Fatalf("the forged cookie %q got the victim's identity", tt.give)
			}
			if len(set) != 1 {
				t.Fatalf("Set-Cookie %q, want the new identity's cookie", set)
			}
			if after := rejected(t, reg, tt.reason); after != before+1 {
				t.Fatalf("rejections for %s went from %v to %v, want one more", tt.reason, before, after)
			}
		})
	}
	if l := logs.String(); !strings.Contains(l, `"level":"ERROR"`) || !strings.Contains(l, "another KCHAT_COOKIE_KEY") ||
		strings.Contains(l, secret) || strings.Contains(l, otherKey) {
		t.Fatalf("log does not say loudly, without the keys, that a cookie of another key came:\n%s", l)
	}
	// The real cookie still works alongside a forged one.
	r := withCookie("x.y.z")
	r.AddCookie(&http.Cookie{Name: auth.VisitorCookie, Value: good})
	if got, _ := visit(t, a, r); got != victim {
		t.Fatalf("with a forged and the real cookie: %q, want %q", got, victim)
	}
}

// rejected reads kchat_gateway_visitor_cookies_rejected_total{reason}.
func rejected(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kchat_gateway_visitor_cookies_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no kchat_gateway_visitor_cookies_rejected_total{reason=%q}", reason)
	return 0
}

// Without KCHAT_COOKIE_KEY (the all-in-one) the key is made up, once, with
// an INFO line; cookies of an earlier run are then expected, not an ERROR.
func TestRandomCookieKey(t *testing.T) {
	a, logs, _ := visitorsOf(t, "")
	if !strings.Contains(logs.String(), "KCHAT_COOKIE_KEY is unset") || !strings.Contains(logs.String(), `"level":"INFO"`) {
		t.Fatalf("no INFO line about the random key:\n%s", logs)
	}
	first, set := visit(t, a, withCookie(""))
	if got, _ := visit(t, a, withCookie(cookieValue(t, set))); got != first {
		t.Fatalf("the random key does not verify its own cookies: %q, want %q", got, first)
	}
	restarted, logs2, _ := visitorsOf(t, "")
	if got, _ := visit(t, restarted, withCookie(cookieValue(t, set))); got == first {
		t.Fatal("a restarted process with a new random key accepted the old cookie")
	}
	if strings.Contains(logs2.String(), `"level":"ERROR"`) {
		t.Fatalf("an earlier run's cookie logged an ERROR:\n%s", logs2)
	}
}

// The cookie is Secure when the client came over https: TLS at the
// gateway, or a trusted proxy's X-Forwarded-Proto; an untrusted peer's
// header changes nothing.
func TestVisitorCookieSecure(t *testing.T) {
	a, _, _ := visitorsOf(t, secret)
	tests := []struct {
		name string
		give func(*http.Request)
		want bool
	}{
		{"plain http", func(*http.Request) {}, false},
		{"TLS", func(r *http.Request) { r.TLS = &tls.ConnectionState{} }, true},
		{"trusted proxy says https", func(r *http.Request) {
			r.RemoteAddr = "10.0.0.2:5000"
			r.Header.Set("X-Forwarded-Proto", "https")
		}, true},
		{"untrusted peer says https", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := withCookie("")
			tt.give(r)
			_, set := visit(t, a, r)
			c, err := http.ParseSetCookie(set[0])
			if err != nil || c.Secure != tt.want {
				t.Fatalf("Set-Cookie %q: Secure %v, want %v", set, c.Secure, tt.want)
			}
		})
	}
}

// The page gives a new visitor its cookie; in token mode the page is
// public and sets none.
func TestVisitorsWrapsThePage(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("page")) })
	none, _, _ := visitorsOf(t, secret)
	token := newAuthenticator(t, auth.Config{Mode: auth.ModeToken, Tokens: []string{"t:alice"}})
	for _, tt := range []struct {
		a    *auth.Authenticator
		want int
	}{{none, 1}, {token, 0}} {
		rec := httptest.NewRecorder()
		tt.a.Edge(tt.a.Visitors(page)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if got := len(rec.Result().Header.Values("Set-Cookie")); got != tt.want || rec.Body.String() != "page" {
			t.Errorf("%s mode: %d cookies, body %q; want %d, the page", tt.a.Mode(), got, rec.Body, tt.want)
		}
	}
}

// Outside Edge (a handler mounted without it) there is nowhere to put a
// cookie: each request is a visitor of its own, never anyone else.
func TestVisitorWithoutEdge(t *testing.T) {
	a, _, _ := visitorsOf(t, secret)
	u1, err1 := a.Authenticate(withCookie(""))
	u2, err2 := a.Authenticate(withCookie(""))
	if err1 != nil || err2 != nil || u1 == u2 || !strings.HasPrefix(u1, "visitor-") {
		t.Fatalf("Authenticate without Edge: %q %v, %q %v", u1, err1, u2, err2)
	}
}
