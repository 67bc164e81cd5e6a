package ws

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/ports"
)

// What the handler learns from the gateway's edge (adapters/auth): the
// client behind a request, its scheme, and the visitor cookie of
// KCHAT_AUTH=none. These tests wire the real Authenticator in front, as
// the gateway does.

// edgeServer is a Handler behind auth's Edge middleware, authenticating
// with a, with limiter on the questions (nil: none).
func edgeServer(t *testing.T, a *auth.Authenticator, mutate func(*Config), limiter ports.Limiter, opts ...Option) (*Handler, string) {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	sessions := memory.NewSessions(memory.SessionsConfig{MaxTurns: 50, TTL: time.Hour})
	f := &feed{subscribed: make(chan struct{})}
	answers := &app.Answers{Feed: f}
	ask := &app.Ask{Sessions: sessions, Publisher: &publisher{}, Limiter: limiter}
	open := &app.OpenSession{Sessions: sessions, Answers: answers, HistoryLimit: 200}
	h := New(cfg, open, ask, a.AuthenticateUpgrade, slog.New(slog.DiscardHandler), opts...)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 2)
	go func() { ran <- h.Run(ctx) }()
	go func() { ran <- answers.Run(ctx) }()
	<-f.subscribed
	srv := httptest.NewServer(a.Edge(h))
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-ran; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
		srv.Close()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func noneMode(t *testing.T) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Config{Mode: auth.ModeNone, CookieKey: "0123456789abcdef0123456789abcdef"}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// answer is what a handshake got back: its status and headers.
type answer struct {
	StatusCode int
	Status     string
	Header     http.Header
}

// dialFrom dials url from the loopback address 127.0.0.<host> with header,
// returning the connection (nil when refused) and the answer.
func dialFrom(t *testing.T, url string, host byte, header http.Header) (*websocket.Conn, answer) {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, host)}}).DialContext,
	}
	conn, resp, err := d.Dial(url, header)
	var got answer
	if resp != nil {
		got = answer{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header}
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp == nil {
			t.Fatalf("dial from 127.0.0.%d: %v", host, err)
		}
		return nil, got
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, got
}

// A visitor without a cookie gets its identity with the 101, and keeps it
// on its next socket; a forged cookie gets a new identity (KCHAT_AUTH=none,
// issue 13 item 4).
func TestVisitorCookieOnTheUpgrade(t *testing.T) {
	a := noneMode(t)
	_, url := edgeServer(t, a, nil, nil)
	conn, resp := dialFrom(t, url, 1, nil)
	if conn == nil {
		t.Fatalf("upgrade refused: %s", resp.Status)
	}
	user := readType(t, conn, "session")["user_id"].(string)
	set := resp.Header.Values("Set-Cookie")
	if !strings.HasPrefix(user, "visitor-") || len(set) != 1 || !strings.Contains(set[0], "HttpOnly") {
		t.Fatalf("user %q, Set-Cookie %q: want a visitor id and its HttpOnly cookie with the 101", user, set)
	}
	cookie, err := http.ParseSetCookie(set[0])
	if err != nil {
		t.Fatal(err)
	}
	again, resp := dialFrom(t, url, 1, http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}})
	if got := readType(t, again, "session")["user_id"]; got != user || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("reconnect with the cookie: user %v, Set-Cookie %q; want %s and no new cookie", got, resp.Header.Values("Set-Cookie"), user)
	}
	forged := strings.Replace(cookie.Value, user, user[:len(user)-1]+"0", 1)
	if forged == cookie.Value {
		forged = strings.Replace(cookie.Value, user, user[:len(user)-1]+"1", 1)
	}
	other, _ := dialFrom(t, url, 1, http.Header{"Cookie": {cookie.Name + "=" + forged}, "X-User-ID": {user}})
	if got := readType(t, other, "session")["user_id"]; got == user {
		t.Fatal("a tampered cookie (and X-User-ID) got the visitor's identity")
	}
}

// One visitor opening more sockets than its cap is refused; others are
// not, from the same address or another (issue 13 item 4).
func TestOneVisitorManySockets(t *testing.T) {
	a := noneMode(t)
	h, url := edgeServer(t, a, func(c *Config) { c.MaxConnsPerUser = 20 }, nil,
		ClientLimit(100, func(r *http.Request) string { return a.ClientOf(r).Key() }))
	first, resp := dialFrom(t, url, 2, nil)
	cookie, _ := http.ParseSetCookie(resp.Header.Get("Set-Cookie"))
	readType(t, first, "session")
	jar := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}
	refused := 0
	for range 24 {
		if conn, resp := dialFrom(t, url, 2, jar); conn == nil {
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("refused with %s, want 429", resp.Status)
			}
			refused++
		}
	}
	if refused != 5 {
		t.Fatalf("%d of 25 sockets of one visitor refused, want 5 (cap 20)", refused)
	}
	for host := byte(2); host <= 3; host++ {
		if conn, resp := dialFrom(t, url, host, nil); conn == nil {
			t.Fatalf("another visitor from 127.0.0.%d refused: %s", host, resp.Status)
		}
	}
	eventually(t, "22 sockets of 3 users registered", func() bool {
		conns, users := h.Open()
		return conns == 22 && users == 3
	})
}

// An address cannot take more sockets than its cap by taking many
// identities; a socket that closes gives its place back.
func TestSocketsPerAddress(t *testing.T) {
	a := noneMode(t)
	h, url := edgeServer(t, a, nil, nil, ClientLimit(3, func(r *http.Request) string { return a.ClientOf(r).Key() }))
	var held []*websocket.Conn
	for i := range 3 {
		conn, resp := dialFrom(t, url, 4, nil)
		if conn == nil {
			t.Fatalf("socket %d refused: %s", i+1, resp.Status)
		}
		readType(t, conn, "session")
		held = append(held, conn)
	}
	if conn, resp := dialFrom(t, url, 4, nil); conn != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a 4th identity from one address: %v, want 429", resp.Status)
	}
	if conn, _ := dialFrom(t, url, 5, nil); conn == nil {
		t.Fatal("another address refused")
	}
	_ = held[0].Close()
	eventually(t, "the closed socket's place given back", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.perClient["127.0.0.4"] == 2
	})
	if conn, resp := dialFrom(t, url, 4, nil); conn == nil {
		t.Fatalf("after a close, the address is still refused: %s", resp.Status)
	}
}

// The questions of a socket carry its client: the limit per address
// counts the questions of every identity an address takes.
func TestQuestionsPerAddress(t *testing.T) {
	a := noneMode(t)
	limiter := auth.ClientLimiter{
		Users:   ratelimit.New(ratelimit.Config{Rate: 100, Burst: 100}),
		Clients: ratelimit.New(ratelimit.Config{Rate: 0.001, Burst: 4}),
	}
	_, url := edgeServer(t, a, nil, limiter, ConnContext(a.ConnContext))
	codes := map[string]int{}
	for i := range 6 { // six visitors, one question each, from one address
		conn, resp := dialFrom(t, url, 6, nil)
		if conn == nil {
			t.Fatalf("socket refused: %s", resp.Status)
		}
		readType(t, conn, "session")
		_ = conn.WriteJSON(frame{"type": "query", "id": fmt.Sprint(i), "message": "hi"})
		f := read(t, conn)
		if f["type"] == "error" {
			codes[f["code"].(string)]++
		} else {
			codes[f["type"].(string)]++
		}
	}
	if codes["ack"] != 4 || codes[codeRateLimited] != 2 {
		t.Fatalf("six identities from one address: %v, want 4 acks then 2 rate_limited", codes)
	}
	conn, _ := dialFrom(t, url, 7, nil)
	readType(t, conn, "session")
	_ = conn.WriteJSON(frame{"type": "query", "id": "x", "message": "hi"})
	readType(t, conn, "ack")
}

// The Origin check compares scheme, host and port exactly (issue 13, item
// 13): the gateway's own origin is the scheme the client used plus Host.
func TestOriginCheck(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		scheme  string // the scheme SchemeOf reports ("" default)
		tls     bool
		host    string
		origin  string
		want    bool
	}{
		{"no Origin (not a browser)", nil, "", false, "gw:8002", "", true},
		{"own origin", nil, "", false, "gw:8002", "http://gw:8002", true},
		{"own origin, case", nil, "", false, "GW:8002", "HTTP://gw:8002", true},
		{"own origin, default port", nil, "", false, "gw", "http://gw:80", true},
		{"https to an http gateway", nil, "", false, "gw:8002", "https://gw:8002", false},
		{"ws scheme", nil, "", false, "gw:8002", "ws://gw:8002", false},
		{"user info", nil, "", false, "gw:8002", "http://evil@gw:8002", false},
		{"other port", nil, "", false, "gw:8002", "http://gw:8003", false},
		{"no port against a port", nil, "", false, "gw:8002", "http://gw", false},
		{"other host", nil, "", false, "gw:8002", "http://evil:8002", false},
		{"suffix host", nil, "", false, "gw:8002", "http://gw:8002.evil", false},
		{"null", nil, "", false, "gw:8002", "null", false},
		{"path", nil, "", false, "gw:8002", "http://gw:8002/x", false},
		{"TLS: https", nil, "", true, "gw", "https://gw", true},
		{"TLS: http", nil, "", true, "gw", "http://gw", false},
		{"behind a TLS proxy", nil, "https", false, "chat.example", "https://chat.example", true},
		{"behind a TLS proxy, http", nil, "https", false, "chat.example", "http://chat.example", false},
		{"allowed", []string{"https://app.example"}, "", false, "gw:8002", "https://app.example", true},
		{"allowed, default port written", []string{"https://app.example"}, "", false, "gw:8002", "https://app.example:443", true},
		{"allowed host, other scheme", []string{"https://app.example"}, "", false, "gw:8002", "http://app.example", false},
		{"allowed host, user info", []string{"https://app.example"}, "", false, "gw:8002", "https://x@app.example", false},
		{"allowed list excludes own", []string{"https://app.example"}, "", false, "gw:8002", "http://gw:8002", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.AllowedOrigins = tt.allowed
			var opts []Option
			if tt.scheme != "" {
				opts = append(opts, SchemeOf(func(*http.Request) string { return tt.scheme }))
			}
			h := New(cfg, nil, nil, nil, slog.New(slog.DiscardHandler), opts...)
			r := httptest.NewRequest(http.MethodGet, "/ws", nil)
			r.Host = tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if got := h.checkOrigin(r); got != tt.want {
				t.Fatalf("checkOrigin(Origin %q, Host %q) = %v, want %v", tt.origin, r.Host, got, tt.want)
			}
		})
	}
}

// Refused upgrades say nothing about which check failed.
func TestUnauthorizedUpgradeIsGeneric(t *testing.T) {
	a, err := auth.New(auth.Config{Mode: auth.ModeToken, Tokens: []string{"t-alice:alice"}}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, url := edgeServer(t, a, nil, nil)
	for _, h := range []http.Header{nil, {"Authorization": {"Bearer nope"}}, {"Authorization": {"Basic x"}}} {
		conn, resp := dialFrom(t, url, 1, h)
		if conn != nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Fatalf("%v: %v, want 401 with WWW-Authenticate: Bearer", h, resp.Status)
		}
	}
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws") + "?access_token=expired")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	if got := string(body[:n]); strings.Contains(got, "unknown token") || strings.Contains(got, "unauthorized: ") {
		t.Fatalf("401 body %q names the failed check", got)
	}
	conn, _ := dialFrom(t, url+"?access_token=t-alice", 1, nil)
	if conn == nil {
		t.Fatal("the access_token parameter is refused on /ws, where browsers need it")
	}
}
