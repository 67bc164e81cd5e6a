package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// TestCentrifugoConfig: the generated v6 configuration puts Centrifugo on
// loopback with the run's secrets, declares the namespace of the personal
// channels the users are subscribed to, and sends nothing out.
func TestCentrifugoConfig(t *testing.T) {
	data, err := centrifugoConfig(centrifugoSettings{Port: 23456, TokenSecret: "tok-secret", APIKey: "api-key"})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		HTTPServer struct {
			Address string `json:"address"`
			Port    int    `json:"port"`
		} `json:"http_server"`
		Client struct {
			Token struct {
				HMACSecretKey string `json:"hmac_secret_key"`
			} `json:"token"`
			Personal struct {
				Enabled   bool   `json:"enabled"`
				Namespace string `json:"personal_channel_namespace"`
			} `json:"subscribe_to_user_personal_channel"`
		} `json:"client"`
		Channel struct {
			Namespaces []struct {
				Name string `json:"name"`
			} `json:"namespaces"`
		} `json:"channel"`
		HTTPAPI struct {
			Key string `json:"key"`
		} `json:"http_api"`
		UsageStats struct {
			Disabled bool `json:"disabled"`
		} `json:"usage_stats"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.HTTPServer.Address != "127.0.0.1" || cfg.HTTPServer.Port != 23456:
		t.Errorf("listens on %s:%d, want 127.0.0.1:23456", cfg.HTTPServer.Address, cfg.HTTPServer.Port)
	case cfg.Client.Token.HMACSecretKey != "tok-secret" || cfg.HTTPAPI.Key != "api-key":
		t.Errorf("secrets %q / %q", cfg.Client.Token.HMACSecretKey, cfg.HTTPAPI.Key)
	case !cfg.Client.Personal.Enabled || cfg.Client.Personal.Namespace != centrifugoNamespace:
		t.Errorf("personal channel %+v", cfg.Client.Personal)
	case len(cfg.Channel.Namespaces) != 1 || cfg.Channel.Namespaces[0].Name != centrifugoNamespace:
		t.Errorf("namespaces %+v: the personal channels' must be declared", cfg.Channel.Namespaces)
	case !cfg.UsageStats.Disabled:
		t.Error("usage statistics are sent")
	}
	if personalChannel("kbench-7") != "personal:#kbench-7" {
		t.Errorf("personal channel %q", personalChannel("kbench-7"))
	}
	if strings.Contains(string(data), "websocket") {
		t.Error("the default configuration sets socket options")
	}
	small, err := centrifugoConfig(centrifugoSettings{Port: 1, TokenSecret: "a", APIKey: "b", SmallBuffers: true})
	if err != nil {
		t.Fatal(err)
	}
	var ws struct {
		WebSocket struct {
			Read  int  `json:"read_buffer_size"`
			Write int  `json:"write_buffer_size"`
			Pool  bool `json:"use_write_buffer_pool"`
		} `json:"websocket"`
	}
	if err := json.Unmarshal(small, &ws); err != nil || ws.WebSocket.Read != 512 || ws.WebSocket.Write != 4096 || !ws.WebSocket.Pool {
		t.Errorf("small buffers: %+v (%v)", ws.WebSocket, err)
	}
	for _, give := range []centrifugoSettings{{TokenSecret: "a", APIKey: "b"}, {Port: 1, APIKey: "b"}, {Port: 1, TokenSecret: "a"}} {
		if _, err := centrifugoConfig(give); err == nil {
			t.Errorf("centrifugoConfig(%+v) = nil error", give)
		}
	}
}

func TestCentrifugoTokenIsTheUsersHS256JWT(t *testing.T) {
	tok, err := centrifugoToken("the-secret", "kbench-3")
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte("the-secret"), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()); err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != "kbench-3" {
		t.Errorf("sub %v", claims["sub"])
	}
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte("another"), nil }); err == nil {
		t.Error("the token verifies with another secret")
	}
}

func TestParseFrame(t *testing.T) {
	msg := []byte(`{"id":1,"connect":{"client":"c1","subs":{"personal:#u":{}},"ping":25,"pong":true}}
{}
{"push":{"channel":"personal:#u","pub":{"data":{"round":2,"text":"hi"}}}}
`)
	replies, pings, err := parseFrame(msg)
	if err != nil {
		t.Fatal(err)
	}
	if pings != 1 || len(replies) != 2 {
		t.Fatalf("%d pings, %d replies", pings, len(replies))
	}
	if c := replies[0].Connect; replies[0].ID != 1 || c == nil || !c.Pong || c.Subs["personal:#u"] == nil {
		t.Errorf("connect reply %+v", replies[0])
	}
	var m peerMessage
	if p := replies[1].Push; p == nil || p.Pub == nil || json.Unmarshal(p.Pub.Data, &m) != nil || m.Round != 2 {
		t.Errorf("push %+v", replies[1].Push)
	}
	if _, _, err := parseFrame([]byte("{}\n{not json")); err == nil {
		t.Error("a malformed line parsed")
	}
}

func TestAPIResult(t *testing.T) {
	for _, tt := range []struct {
		status  int
		body    string
		wantErr string
	}{
		{200, `{"result":{}}`, ""},
		{200, `{"error":{"code":102,"message":"unknown channel"}}`, "102: unknown channel"},
		{401, `Unauthorized`, "401"},
		{200, `<html>`, "server API"},
	} {
		err := apiResult(tt.status, []byte(tt.body))
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("apiResult(%d, %s) = %v, want %q", tt.status, tt.body, err, tt.wantErr)
		}
	}
}

// fakeCentrifugo speaks enough of the JSON protocol for the client: it
// answers connect (with an error for the user "refused", without the
// personal channel for "nochannel"), sends a ping and expects the pong,
// then publishes {"round":1} to the connection.
func fakeCentrifugo(t *testing.T, ponged *atomic.Int64) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var cmd struct {
			ID      uint32 `json:"id"`
			Connect struct {
				Token string `json:"token"`
			} `json:"connect"`
		}
		if c.ReadJSON(&cmd) != nil {
			return
		}
		claims := jwt.MapClaims{}
		if _, err := jwt.ParseWithClaims(cmd.Connect.Token, claims, func(*jwt.Token) (any, error) { return []byte("s"), nil }); err != nil {
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"error":{"code":109,"message":"token expired"}}`))
			return
		}
		user, _ := claims["sub"].(string)
		switch user {
		case "refused":
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"error":{"code":101,"message":"unauthorized"}}`))
			return
		case "nochannel":
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"connect":{"client":"x","subs":{}}}`))
			return
		}
		// A ping before the reply, in the same message.
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{}`+"\n"+`{"id":1,"connect":{"client":"x","subs":{"`+personalChannel(user)+`":{}},"ping":25,"pong":true}}`))
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{}`))
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "{}" {
			return
		}
		ponged.Add(1)
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"push":{"channel":"`+personalChannel(user)+`","pub":{"data":{"round":1,"text":"t"}}}}`))
		_, _, _ = c.ReadMessage() // until the client closes
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCentrifugoClient(t *testing.T) {
	var ponged atomic.Int64
	srv := fakeCentrifugo(t, &ponged)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx := context.Background()
	token := func(user string) string {
		tok, err := centrifugoToken("s", user)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	got := make(chan peerMessage, 1)
	c, err := dialCentrifugo(ctx, url, 0, "kbench-0", token("kbench-0"), func(i int, data json.RawMessage, _ time.Time) {
		var m peerMessage
		if i == 0 && json.Unmarshal(data, &m) == nil {
			got <- m
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case m := <-got:
		if m.Round != 1 || ponged.Load() != 1 {
			t.Errorf("got %+v after %d pongs", m, ponged.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no publication (pongs %d)", ponged.Load())
	}
	if c.closed() {
		t.Error("closed while open")
	}
	_ = c.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader did not stop when the connection closed")
	}

	for user, want := range map[string]string{"refused": "unauthorized", "nochannel": "not subscribed"} {
		if _, err := dialCentrifugo(ctx, url, 1, user, token(user), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", user, err, want)
		}
	}
}

// fakeGateway speaks enough of kchat's protocol for the peer scenario: a
// session frame, an ack with message id "q-<id>" for each query, then an
// answer to it and one to a question never asked.
func fakeGateway(t *testing.T) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteJSON(map[string]string{"type": "session", "session_id": "sess-1", "user_id": "kbench-0"})
		for {
			var q struct{ Type, ID string }
			if c.ReadJSON(&q) != nil {
				return
			}
			_ = c.WriteJSON(map[string]string{"type": "question", "message_id": "q-" + q.ID})
			_ = c.WriteJSON(map[string]string{"type": "ack", "id": q.ID, "message_id": "q-" + q.ID})
			_ = c.WriteJSON(map[string]string{"type": "answer", "reply_to": "q-never-asked"})
			_ = c.WriteJSON(map[string]string{"type": "answer", "reply_to": "q-" + q.ID})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestKchatUserMatchesAnswersToTheRoundsQuestion(t *testing.T) {
	srv := fakeGateway(t)
	type answer struct {
		round int
		ok    bool
	}
	answers := make(chan answer, 4)
	u, err := dialKchatUser(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), 0, nil, func(u *kchatUser, replyTo string, _ time.Time) {
		r, ok := u.answers(replyTo)
		answers <- answer{r, ok}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.session != "sess-1" || u.user != "kbench-0" {
		t.Fatalf("session %q user %q", u.session, u.user)
	}
	if err := u.ask(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if q := u.currentQuestion(); q != "q-r3" {
		t.Fatalf("question %q, want the ack's message id q-r3", q)
	}
	for _, want := range []answer{{3, false}, {3, true}} {
		select {
		case got := <-answers:
			if got.ok != want.ok || (got.ok && got.round != want.round) {
				t.Errorf("answer %+v, want %+v", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no answer")
		}
	}
}

// TestFiguresOf: latency counts from each message's own publish; a message
// never published or never arrived is lost; the span runs from the first
// publish to the last arrival.
func TestFiguresOf(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	sent := []time.Time{at(0), at(5), at(10), {}}
	got := []time.Time{at(3), {}, at(40), at(50)}
	f := figuresOf(sent, got)
	if len(f.latencies) != 2 || f.latencies[0] != 3*time.Millisecond || f.latencies[1] != 30*time.Millisecond {
		t.Errorf("latencies %v, want [3ms 30ms]", f.latencies)
	}
	if f.lost != 2 {
		t.Errorf("lost %d, want 2 (one never arrived, one never published)", f.lost)
	}
	if f.span != 40*time.Millisecond {
		t.Errorf("span %s, want 40ms", f.span)
	}
	if f := figuresOf(make([]time.Time, 3), make([]time.Time, 3)); f.lost != 3 || f.span != 0 {
		t.Errorf("nothing published: %+v", f)
	}
}

func TestDeliveryRoundCountsDuplicatesAndEndsWhenAllArrived(t *testing.T) {
	r := newDeliveryRound(7, 2)
	r.publishing(0)
	r.publishing(1)
	r.received(0, time.Now())
	r.received(0, time.Now())
	r.received(5, time.Now()) // no such user
	select {
	case <-r.all:
		t.Fatal("ended with one of two arrived")
	default:
	}
	r.received(1, time.Now())
	r.wait(context.Background(), 5*time.Second)
	select {
	case <-r.all:
	default:
		t.Fatal("not ended with both arrived")
	}
	if f := r.figures(); f.dups != 1 || f.lost != 0 || len(f.latencies) != 2 {
		t.Errorf("figures %+v", f)
	}
	s := &peerSide{}
	s.current.Store(r)
	s.deliver(6, 1, time.Now()) // another round's: ignored
	if f := r.figures(); f.dups != 1 {
		t.Errorf("a delivery of round 6 counted in round 7: %+v", f)
	}
}

func TestForEachCallsEveryIndexAndCountsErrors(t *testing.T) {
	var calls atomic.Int64
	seen := make([]atomic.Bool, 100)
	errs, first := forEach(context.Background(), 100, func(_ context.Context, i int) error {
		calls.Add(1)
		seen[i].Store(true)
		if i%10 == 0 {
			return errors.New("tenth")
		}
		return nil
	})
	if calls.Load() != 100 || errs != 10 || first == nil {
		t.Fatalf("%d calls, %d errors (%v)", calls.Load(), errs, first)
	}
	for i := range seen {
		if !seen[i].Load() {
			t.Errorf("index %d not called", i)
		}
	}
}

func TestPeerRows(t *testing.T) {
	p := &PeerResult{CentrifugoVersion: "v6.9.1", Connections: 10000, Users: 1000, Rounds: 5,
		Kchat:                  PeerRun{Idle: MemoryRun{PerConnKiB: 9}, Delivery: Spread{P50: 12, P99: 40}, ServerCPU: 30},
		Centrifugo:             PeerRun{Idle: MemoryRun{PerConnKiB: 12}, Delivery: Spread{P50: 4, P99: 10}, ServerCPU: 20},
		CentrifugoSmallBuffers: MemoryRun{PerConnKiB: 6}}
	rows := peerRows(p)
	if len(rows) != 5 {
		t.Fatalf("%d rows", len(rows))
	}
	if r := rows[0]; r.Ratio != 0.75 || r.Met == nil || !*r.Met || r.Goal != "≤ Centrifugo's, same run" {
		t.Errorf("idle row %+v", r)
	}
	if r := rows[1]; r.Ratio != 1.5 || r.Met == nil || *r.Met {
		t.Errorf("idle row, small buffers: %+v (9 KiB against 6 must miss)", r)
	}
	if r := rows[2]; r.Ratio != 3 || r.Kchat != 12 || r.Baseline != 4 {
		t.Errorf("p50 row %+v", r)
	}
	p.Kchat.Idle.PerConnKiB = 13
	if r := peerRows(p)[0]; r.Met == nil || *r.Met {
		t.Errorf("13 KiB against 12 met the goal: %+v", r)
	}
	skipped := peerRows(&PeerResult{Skipped: "no Go"})
	if len(skipped) != 1 || !strings.Contains(skipped[0].Note, "no Go") || skipped[0].Met != nil {
		t.Errorf("skipped rows %+v", skipped)
	}
	var b strings.Builder
	peerMarkdown(&b, p)
	if !strings.Contains(b.String(), "## peer: Centrifugo") || !strings.Contains(b.String(), "| Centrifugo v6.9.1 |") || !strings.Contains(b.String(), "kchat's socket buffers | ") {
		t.Errorf("markdown:\n%s", b.String())
	}
}

func TestEnvValueTakesTheLastSetting(t *testing.T) {
	env := []string{"KCHAT_ANSWER_KEY=one", "KCHAT_ANSWER_KEYS=no", "KCHAT_ANSWER_KEY=two"}
	if v := envValue(env, "KCHAT_ANSWER_KEY"); v != "two" {
		t.Errorf("got %q", v)
	}
	if v := envValue(env, "MISSING"); v != "" {
		t.Errorf("got %q", v)
	}
}
