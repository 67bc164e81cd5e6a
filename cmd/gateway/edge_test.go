package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/restclient"
)

// The gateway's routes in token mode (issue 13, items 1, 12, 14 and 17),
// with a fake producer and consumer behind the seed's routes.

// upstream records what the fake producer or consumer got.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	got  []string // method path?query body
	body string   // what it answers, 200 JSON
}

func newUpstream(t *testing.T, body string) *upstream {
	t.Helper()
	u := &upstream{body: body}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, u.body)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.got...)
}

const browsePage = `{"status":"success","count":2,"messages":[` +
	`{"topic":"query","partition":0,"offset":0,"key":"s-a","value":{"v":1,"message_id":"q-a","session_id":"s-a","user_id":"alice","type":"query","message":"alice asks"}},` +
	`{"topic":"query","partition":1,"offset":0,"key":"s-b","value":{"v":1,"message_id":"q-b","session_id":"s-b","user_id":"bob","type":"query","message":"bob asks"}}]}`

// tokenGateway is a token-mode gateway whose seed routes reach the given
// producer and consumer.
func tokenGateway(t *testing.T, producer, consumer string) *chat {
	t.Helper()
	return startChat(t, func(cfg *Config) {
		cfg.Gateway.Auth = auth.Config{Mode: auth.ModeToken, Tokens: []string{"tok-a:alice", "tok-b:bob"}}
		cfg.Gateway.REST = restclient.DefaultConfig()
		cfg.Gateway.REST.ProducerURL, cfg.Gateway.REST.ConsumerURL = producer, consumer
	})
}

// send posts the seed's form to /send with a bearer token (none if empty).
func send(t *testing.T, base, token string, form url.Values) (int, string) {
	t.Helper()
	return sendTo(t, base+"/send", token, form)
}

func sendTo(t *testing.T, target, token string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Item 1: POST /send and GET /messages obey KCHAT_AUTH; /send publishes
// questions of the caller only; /messages only browses, the caller's own.
func TestSeedRoutesInTokenMode(t *testing.T) {
	producer := newUpstream(t, `{"status":"queued","message_id":"m-1"}`)
	consumer := newUpstream(t, browsePage)
	c := tokenGateway(t, producer.URL, consumer.URL)
	base := "http://" + c.url
	form := url.Values{"session_id": {"s-b"}, "user_id": {"bob"}, "type": {"query"}, "message": {"hi"}}

	for _, token := range []string{"", "forged"} {
		if status, _ := send(t, base, token, form); status != http.StatusUnauthorized {
			t.Errorf("POST /send with token %q: %d, want 401", token, status)
		}
		if status, _ := get(t, base+"/messages?topic=query", token); status != http.StatusUnauthorized {
			t.Errorf("GET /messages with token %q: %d, want 401", token, status)
		}
	}
	for _, typ := range []string{"answer", "prompt"} {
		f := url.Values{"session_id": {"s-a"}, "type": {typ}, "message": {"a forged " + typ}, "reply_to": {"q-a"}}
		if status, _ := send(t, base, "tok-a", f); status != http.StatusUnprocessableEntity {
			t.Errorf("POST /send type=%s: %d, want 422", typ, status)
		}
	}
	for _, q := range []string{"?type=query&latest=true", "?topic=query&latest=true", "?type=query&latest=ON"} {
		if status, _ := get(t, base+"/messages"+q, "tok-a"); status != http.StatusForbidden {
			t.Errorf("GET /messages%s: %d, want 403 (consuming)", q, status)
		}
	}
	if got := append(producer.requests(), consumer.requests()...); len(got) != 0 {
		t.Fatalf("refused requests reached the services: %q", got)
	}

	// Alice's question is alice's, whatever the form says.
	if status, body := send(t, base, "tok-a", form); status != http.StatusOK {
		t.Fatalf("POST /send as alice: %d %s", status, body)
	}
	var sent map[string]any
	if reqs := producer.requests(); len(reqs) != 1 || json.Unmarshal([]byte(reqs[0][strings.Index(reqs[0], "{"):]), &sent) != nil {
		t.Fatalf("the producer got %q", reqs)
	}
	if sent["user_id"] != "alice" || sent["type"] != "query" {
		t.Fatalf("published %v, want a query of alice", sent)
	}

	// Browsing shows alice her records only.
	status, page := get(t, base+"/messages?topic=query", "tok-a")
	msgs, _ := page["messages"].([]any)
	if status != http.StatusOK || len(msgs) != 1 || msgs[0].(map[string]any)["value"].(map[string]any)["user_id"] != "alice" {
		t.Fatalf("alice's browse: %d %v, want her one record", status, page)
	}
}

// Item 12: a token in the query string is a credential on /ws only.
func TestAccessTokenOnlyOnTheWebSocket(t *testing.T) {
	c := tokenGateway(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	base := "http://" + c.url
	for _, path := range []string{"/sessions/s-1/history?", "/messages?topic=query&"} {
		if status, _ := get(t, base+path+"access_token=tok-a", ""); status != http.StatusUnauthorized {
			t.Errorf("GET %s with ?access_token: %d, want 401", path, status)
		}
	}
	if status, _ := post(t, base+"/chat?access_token=tok-a", "", `{"message":"hi"}`); status != http.StatusUnauthorized {
		t.Errorf("POST /chat with ?access_token: %d, want 401", status)
	}
	if status, _ := sendTo(t, base+"/send?access_token=tok-a", "", url.Values{"session_id": {"s"}, "message": {"hi"}}); status != http.StatusUnauthorized {
		t.Errorf("POST /send with ?access_token: status %d, want 401", status)
	}
	conn, status, err := c.dial("?access_token=tok-a", nil)
	if err != nil {
		t.Fatalf("/ws with ?access_token: %d %v, want the upgrade", status, err)
	}
	defer conn.Close()
	if u := read(t, conn, "session")["user_id"]; u != "alice" {
		t.Fatalf("/ws with alice's token is %v", u)
	}
}

// Item 14: /metrics and the profiles are not on the gateway; the routes
// that reveal nothing about users stay public, in token mode too. Item 17:
// the page's security headers.
func TestPublicRoutesInTokenMode(t *testing.T) {
	c := tokenGateway(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	base := "http://" + c.url
	for path, want := range map[string]int{
		"/metrics": http.StatusNotFound, "/debug/pprof/": http.StatusNotFound,
		"/healthz": http.StatusOK, "/readyz": http.StatusOK, "/docs/": http.StatusOK, "/openapi.yaml": http.StatusOK, "/": http.StatusOK,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// Readiness may still be 503 while the feed starts: public is what counts.
		if resp.StatusCode != want && (path != "/readyz" || resp.StatusCode != http.StatusServiceUnavailable) {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/" {
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") == "" {
				t.Errorf("the page's headers %v", resp.Header)
			}
			if cookies := resp.Header.Values("Set-Cookie"); len(cookies) != 0 {
				t.Errorf("token mode: the page set %q", cookies)
			}
		}
	}
}

// In none mode the page gives the visitor its cookie.
func TestPageSetsTheVisitorCookie(t *testing.T) {
	c := startChat(t, nil)
	resp, err := http.Get("http://" + c.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != auth.VisitorCookie || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("the page set %q, want the visitor's HttpOnly, SameSite=Lax cookie", resp.Header.Values("Set-Cookie"))
	}
}

// KCHAT_AUTH=header: X-User-ID names the user when the proxy in front is
// trusted, and nobody when it is not.
func TestHeaderModeBehindAProxy(t *testing.T) {
	for _, tt := range []struct {
		proxies []string
		want    string // user, or "" for a 401
	}{
		{[]string{"127.0.0.0/8"}, "carol"},
		{[]string{"10.0.0.0/8"}, ""},
	} {
		c := startChat(t, func(cfg *Config) {
			cfg.Gateway.Auth = auth.Config{Mode: auth.ModeHeader, TrustedProxies: tt.proxies}
		})
		h := http.Header{"X-User-ID": {"carol"}}
		conn, status, err := c.dial("", h)
		if tt.want == "" {
			if err == nil || status != http.StatusUnauthorized {
				t.Fatalf("proxies %v: %d %v, want 401", tt.proxies, status, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("proxies %v: %d %v", tt.proxies, status, err)
		}
		if u := read(t, conn, "session")["user_id"]; u != tt.want {
			t.Fatalf("proxies %v: user %v, want %s", tt.proxies, u, tt.want)
		}
		conn.Close()
	}
}

// KCHAT_AUTH=none over plain HTTP: POST /chat gives a cookie-less caller an
// identity of its own, which its cookie keeps; without the cookie it is
// someone else, who may not read the first one's session.
func TestChatKeepsTheVisitor(t *testing.T) {
	c := startChat(t, nil)
	base := "http://" + c.url
	resp, err := http.Post(base+"/chat", "application/json", strings.NewReader(`{"message":"How do I start kchat?"}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		SessionID string `json:"session_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusOK || len(cookies) != 1 || cookies[0].Name != auth.VisitorCookie || out.SessionID == "" {
		t.Fatalf("POST /chat: %d, cookies %v, session %q", resp.StatusCode, resp.Header.Values("Set-Cookie"), out.SessionID)
	}
	history := func(cookie *http.Cookie) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/sessions/"+out.SessionID+"/history", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := history(cookies[0]); got != http.StatusOK {
		t.Fatalf("the visitor's own history: %d, want 200", got)
	}
	if got := history(nil); got == http.StatusOK {
		t.Fatal("another visitor read the session")
	}
}
