package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"sort"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/internal/kafkatest"
)

// The security suite (docs/security.md, "The security suite"): every route
// of every service, in every KCHAT_AUTH mode, asked with no credential,
// with another user's and with the owner's. It fails on any 2xx the table
// does not expect, and on a route the table does not know.

// class is what a route lets through.
type class int

const (
	// public routes say nothing about users: anyone gets 2xx.
	public class = iota
	// internal routes are the producer's, the consumer's and the
	// answerer's: services behind the edge (docs/security.md, "Gateway
	// trust boundaries"); whoever reaches them gets 2xx.
	internal
	// admin routes are on the admin listener, on loopback.
	admin
	// owner routes touch alice's session: only alice gets 2xx.
	owner
	// own routes answer anyone authenticated, with their own data only:
	// bob gets 2xx without a trace of alice's.
	own
)

// routes classifies every route, "<service> <METHOD> <path>".
var routes = map[string]class{
	"producer POST /messages":            internal,
	"producer POST /messages/batch":      internal,
	"producer POST /send_message":        internal,
	"producer GET /topics":               internal,
	"consumer GET /messages":             internal,
	"consumer POST /messages/ack":        internal,
	"consumer GET /messages/peek":        internal,
	"answerer POST /answers":             internal, // KCHAT_GENERATOR=external only
	"gateway POST /chat":                 owner,
	"gateway GET /sessions/{id}/history": owner,
	"gateway DELETE /sessions/{id}":      owner,
	"gateway GET /ws":                    owner,
	"gateway POST /send":                 owner,
	"gateway GET /messages":              own,
	"gateway GET /":                      public,
	"producer GET /":                     public, // the seed's banner and health check
	"producer GET /health":               public,
	"consumer GET /":                     public,
	"consumer GET /health":               public,
	"answerer GET /":                     public, // the banner: links to /docs and /healthz
	"admin GET /metrics":                 admin,
	"admin GET /debug/pprof/":            admin,
}

// Every service's health, spec and docs are public.
func init() {
	for _, svc := range []string{"producer", "consumer", "answerer", "gateway"} {
		for _, p := range []string{"/healthz", "/readyz", "/openapi.yaml", "/docs/"} {
			routes[svc+" GET "+p] = public
		}
	}
}

// who asks: nobody (no credential), bob (another user), alice (the owner).
type who int

const (
	nobody who = iota
	bob
	alice
)

func (w who) String() string {
	return [...]string{"no credentials", "another user's credentials", "the owner's credentials"}[w]
}

func TestSecuritySuite(t *testing.T) {
	for _, mode := range []string{auth.ModeToken, auth.ModeHeader, auth.ModeNone} {
		t.Run(mode, func(t *testing.T) { runSecuritySuite(t, mode) })
	}
}

// suite is one all-in-one process in one auth mode.
type suite struct {
	t       *testing.T
	mode    string
	base    map[string]string // service → http://host:port
	cookies map[who]http.CookieJar
}

func runSecuritySuite(t *testing.T, mode string) {
	app := startAllInOne(t, allInOneConfig(t, kafkatest.Fake(t), "", mode))
	p, c, a, g := app.producer, app.consumer, app.answerer, app.gateway
	s := &suite{t: t, mode: mode, cookies: map[who]http.CookieJar{}, base: app.base}
	if mode == auth.ModeNone {
		for _, w := range []who{alice, bob} {
			jar, _ := cookiejar.New(nil)
			s.cookies[w] = jar
			s.do(w, http.MethodGet, "gateway", "/", "", "") // the page hands out the identity
		}
	}

	// Alice's sessions: one to read and write, one to delete.
	session, doomed := s.chat(), s.chat()
	seen := map[string]bool{}
	for _, key := range s.enumerate(p.API(), c.API(), a.API(), g.API()) {
		seen[key] = true
		cls, ok := routes[key]
		if !ok {
			t.Errorf("%s is not in the security suite's table: classify it", key)
			continue
		}
		for _, w := range []who{nobody, bob, alice} {
			status, body := s.ask(key, w, session, doomed)
			s.judge(key, cls, w, status, body)
		}
	}
	for key := range routes {
		if !seen[key] && key != "answerer POST /answers" {
			t.Errorf("the table lists %s, which no service serves", key)
		}
	}
}

// enumerate lists every route: the operations of each service's OpenAPI
// document, plus what the services mount beside huma.
func (s *suite) enumerate(apis ...huma.API) []string {
	var keys []string
	for i, svc := range []string{"producer", "consumer", "answerer", "gateway"} {
		for path, item := range apis[i].OpenAPI().Paths {
			for method, op := range map[string]*huma.Operation{http.MethodGet: item.Get, http.MethodPost: item.Post, http.MethodPut: item.Put, http.MethodPatch: item.Patch, http.MethodDelete: item.Delete} {
				if op != nil {
					keys = append(keys, svc+" "+method+" "+path)
				}
			}
		}
		keys = append(keys, svc+" GET /openapi.yaml", svc+" GET /docs/")
	}
	keys = append(keys, "gateway GET /ws", "gateway POST /send", "gateway GET /messages", "gateway GET /", "admin GET /metrics", "admin GET /debug/pprof/")
	sort.Strings(keys)
	return keys
}

// credentials adds w's credential to r.
func (s *suite) credentials(r *http.Request, w who) {
	switch {
	case w == nobody:
	case s.mode == auth.ModeToken:
		r.Header.Set("Authorization", "Bearer "+map[who]string{alice: "alice-token", bob: "bob-token"}[w])
	case s.mode == auth.ModeHeader:
		r.Header.Set("X-User-ID", map[who]string{alice: "alice", bob: "bob"}[w])
	case s.mode == auth.ModeNone:
		for _, c := range s.cookies[w].Cookies(r.URL) {
			r.AddCookie(c)
		}
	}
}

func (s *suite) do(w who, method, svc, path, contentType, body string) (int, string) {
	s.t.Helper()
	r, err := http.NewRequest(method, s.base[svc]+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	s.credentials(r, w)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		s.t.Fatalf("%s %s%s: %v", method, svc, path, err)
	}
	defer resp.Body.Close()
	if jar := s.cookies[w]; jar != nil {
		jar.SetCookies(r.URL, resp.Cookies())
	}
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// chat asks a question as alice in a new session and returns its id.
func (s *suite) chat() string {
	s.t.Helper()
	status, body := s.do(alice, http.MethodPost, "gateway", "/chat", "application/json", `{"message":"How do I start kchat?"}`)
	var out struct {
		SessionID string `json:"session_id"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || out.SessionID == "" {
		s.t.Fatalf("alice's first question: %d %s", status, body)
	}
	return out.SessionID
}

// ask calls route key as w, on alice's session where the route takes one.
func (s *suite) ask(key string, w who, session, doomed string) (int, string) {
	s.t.Helper()
	f := strings.SplitN(key, " ", 3)
	svc, method, path := f[0], f[1], f[2]
	json := "application/json"
	switch key {
	case "gateway GET /ws":
		return s.dial(w, "/ws?session_id="+neturl.QueryEscape(session))
	case "gateway POST /chat":
		return s.do(w, method, svc, path, json, `{"session_id":"`+session+`","message":"hi"}`)
	case "gateway GET /sessions/{id}/history":
		return s.do(w, method, svc, "/sessions/"+session+"/history", "", "")
	case "gateway DELETE /sessions/{id}":
		return s.do(w, method, svc, "/sessions/"+doomed, "", "")
	case "gateway POST /send":
		return s.do(w, method, svc, path, "application/x-www-form-urlencoded", neturl.Values{"session_id": {session}, "user_id": {"alice"}, "message": {"hi"}}.Encode())
	case "gateway GET /messages":
		return s.do(w, method, svc, "/messages?topic=query", "", "")
	case "producer POST /messages":
		return s.do(w, method, svc, path, json, `{"session_id":"x","user_id":"x","type":"query","message":"hi"}`)
	case "producer POST /messages/batch":
		return s.do(w, method, svc, path, json, `{"messages":[{"session_id":"x","user_id":"x","type":"query","message":"hi"}]}`)
	case "producer POST /send_message":
		return s.do(w, method, svc, path, json, `{"session_id":"x","user_id":"x","message":"hi"}`)
	case "consumer GET /messages":
		return s.do(w, method, svc, "/messages?type=answer", "", "")
	case "consumer POST /messages/ack":
		return s.do(w, method, svc, path, json, `{"receipts":["made-up"]}`)
	case "consumer GET /messages/peek":
		return s.do(w, method, svc, "/messages/peek?type=query", "", "")
	}
	return s.do(w, method, svc, path, "", "")
}

// dial opens the WebSocket as w; 101 when the upgrade went through.
func (s *suite) dial(w who, query string) (int, string) {
	h := http.Header{}
	r, _ := http.NewRequest(http.MethodGet, s.base["gateway"], nil)
	s.credentials(r, w)
	for k, v := range r.Header {
		h[k] = v
	}
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.base["gateway"], "http")+query, h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	if err == nil {
		conn.Close()
	}
	return status, ""
}

// judge checks one answer against the table.
func (s *suite) judge(key string, cls class, w who, status int, body string) {
	s.t.Helper()
	granted := status >= 200 && status < 300 || status == http.StatusSwitchingProtocols
	switch {
	case cls == public || cls == internal || cls == admin:
		// Open by design; what matters is that the table says so.
	case cls == owner && w == alice:
		if !granted {
			s.t.Errorf("%s with %s: %d %.200s; the owner must get through", key, w, status, body)
		}
	case cls == owner:
		if granted {
			s.t.Errorf("%s with %s: %d, want a refusal (401, 403 or 404): alice's session must stay hers", key, w, status)
		}
	case cls == own && w == nobody && s.mode != auth.ModeNone:
		if granted {
			s.t.Errorf("%s with %s: %d, want 401", key, w, status)
		}
	case cls == own && s.mode != auth.ModeNone:
		if !granted {
			s.t.Errorf("%s with %s: %d, want 2xx with the caller's own records", key, w, status)
		}
		if w == bob && strings.Contains(body, `"user_id":"alice"`) {
			s.t.Errorf("%s with %s shows alice's records: %.300s", key, w, body)
		}
	}
}
