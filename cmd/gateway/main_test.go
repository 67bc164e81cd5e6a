package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/ws"
	"github.com/kchat/kchat/cmd/internal/wire"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func testConfig(brokers []string, prefix string) Config {
	cfg := Config{Kafka: kafka.DefaultConfig(), Redis: redis.DefaultConfig()}
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix = brokers, prefix
	cfg.Gateway = wire.GatewayConfig{
		HTTP:        httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second},
		ChatTimeout: 20 * time.Second, WS: ws.DefaultConfig(), UserLimit: ratelimit.DefaultConfig(), Auth: auth.DefaultConfig(),
		AnswerKey: testAnswerKey,
	}
	return cfg
}

// testAnswerKey is the answer key of the test gateways and answerers.
const testAnswerKey = "kchat-test-answer-key-0123456789abcdef"

func TestValidateApp(t *testing.T) {
	if err := fx.ValidateApp(options(testConfig([]string{"127.0.0.1:9092"}, ""), slog.New(slog.DiscardHandler))...); err != nil {
		t.Fatal(err)
	}
}

// chat is a gateway with an answerer in one process, on kfake, with
// in-memory sessions.
type chat struct {
	t   *testing.T
	url string
	app *fx.App
}

func startChat(t *testing.T, mutate func(*Config)) *chat {
	t.Helper()
	brokers, prefix := kafkatest.Fake(t), testenv.Prefix("kfake")
	cfg := testConfig(brokers, prefix)
	if mutate != nil {
		mutate(&cfg)
	}
	acfg := wire.AnswererConfig{
		HTTP:  httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Stage: kafka.StageConfig{Group: prefix + "answerer", Instance: "t", RetryBackoff: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, Concurrency: 4},
		RAG:   rag.DefaultConfig(), LLM: llm.DefaultConfig(), Attempts: 1, AnswerKey: cfg.Gateway.AnswerKey,
	}
	var srv wire.GatewayServer
	app := fx.New(append(options(cfg, slog.New(slog.DiscardHandler)),
		wire.Censor(profanity.DefaultConfig()), wire.Answerer(acfg), fx.Populate(&srv))...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := &chat{t: t, url: srv.Addr(), app: app}
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	return c
}

type frame map[string]any

// dial opens a socket; on a refused upgrade it returns the HTTP status.
func (c *chat) dial(query string, header http.Header) (*websocket.Conn, int, error) {
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+c.url+"/ws"+query, header)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	return conn, status, err
}

func read(t *testing.T, conn *websocket.Conn, typ string) frame {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var f frame
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f["type"] == typ {
			return f
		}
		if f["type"] == "error" {
			t.Fatalf("waiting for %s got error %v", typ, f)
		}
	}
}

func TestWebSocketChat(t *testing.T) {
	c := startChat(t, nil)
	conn, _, err := c.dial("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := read(t, conn, "session")
	if u, _ := s["user_id"].(string); s["session_id"] == "" || !strings.HasPrefix(u, "visitor-") {
		t.Fatalf("session frame %v", s)
	}
	if err := conn.WriteJSON(frame{"type": "query", "id": "c1", "message": "How do I start kchat on my laptop?"}); err != nil {
		t.Fatal(err)
	}
	ack := read(t, conn, "ack")
	if ack["id"] != "c1" || ack["message_id"] == "" {
		t.Fatalf("ack %v", ack)
	}
	a := read(t, conn, "answer")
	cites, _ := a["citations"].([]any)
	if a["reply_to"] != ack["message_id"] || len(cites) == 0 || a["message"] == "" {
		t.Fatalf("answer %v", a)
	}
}

func post(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	return call(t, http.MethodPost, url, token, body)
}

func get(t *testing.T, url, token string) (int, map[string]any) {
	t.Helper()
	return call(t, http.MethodGet, url, token, "")
}

// call sends a JSON request, with a bearer token when one is given, and
// decodes the JSON answer.
func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func TestChatResumeAndIsolation(t *testing.T) {
	c := startChat(t, func(cfg *Config) {
		cfg.Gateway.Auth = auth.Config{Mode: "token", Tokens: []string{"tok-a:alice", "tok-b:bob"}}
	})
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	// Token mode: no or forged token is refused before the upgrade.
	for _, h := range []http.Header{nil, bearer("forged")} {
		_, status, err := c.dial("", h)
		if err == nil || status != http.StatusUnauthorized {
			t.Fatalf("dial with %v: %v %d, want 401", h, err, status)
		}
	}

	conn, _, err := c.dial("", bearer("tok-a"))
	if err != nil {
		t.Fatal(err)
	}
	session := read(t, conn, "session")["session_id"].(string)
	_ = conn.WriteJSON(frame{"type": "query", "id": "1", "message": "How do I start kchat?"})
	first := read(t, conn, "answer")
	conn.Close() // disconnect after the answer

	// A question answered while alice is away, through POST /chat.
	status, out := post(t, "http://"+c.url+"/chat", "tok-a", `{"session_id":"`+session+`","message":"What does ack=manual do?"}`)
	answer, _ := out["answer"].(map[string]any)
	if status != http.StatusOK || answer["message"] == "" || len(answer["citations"].([]any)) == 0 {
		t.Fatalf("POST /chat: %d %v", status, out)
	}

	// Resume after the first answer: the missed exchange is replayed once.
	conn, _, err = c.dial("?session_id="+session+"&after="+first["message_id"].(string), bearer("tok-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	read(t, conn, "session")
	hist := read(t, conn, "history")
	turns := hist["turns"].([]any)
	if len(turns) != 2 || turns[1].(map[string]any)["message_id"] != answer["message_id"] {
		t.Fatalf("history %v, want the missed question and answer", turns)
	}

	// Disconnect right after the ack; on reconnecting with after= the
	// answer arrives exactly once (replayed, or live if it came later).
	_ = conn.WriteJSON(frame{"type": "query", "id": "2", "message": "How do I delete a session?"})
	ack := read(t, conn, "ack")
	conn.Close()
	conn, _, err = c.dial("?session_id="+session+"&after="+answer["message_id"].(string), bearer("tok-a"))
	if err != nil {
		t.Fatal(err)
	}
	read(t, conn, "session")
	seen := 0
	for _, turn := range read(t, conn, "history")["turns"].([]any) {
		if tm := turn.(map[string]any); tm["role"] == "assistant" && tm["message_id"] != answer["message_id"] {
			seen++
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f frame
		if err := conn.ReadJSON(&f); err != nil {
			break
		}
		if f["type"] == "answer" && f["reply_to"] == ack["message_id"] {
			seen++
		}
		if seen > 0 && f["type"] == "answer" {
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		}
	}
	if seen != 1 {
		t.Fatalf("after reconnecting, the missed answer arrived %d times, want 1", seen)
	}
	conn.Close()

	// Bob cannot resume, read or delete alice's session.
	if _, status, err := c.dial("?session_id="+session, bearer("tok-b")); err == nil || status != http.StatusForbidden {
		t.Fatalf("bob resuming alice's session: %v %d, want 403", err, status)
	}
	if status, _ := get(t, "http://"+c.url+"/sessions/"+session+"/history", "tok-b"); status != http.StatusForbidden {
		t.Fatalf("bob reading alice's history: %d", status)
	}
	if status, _ := post(t, "http://"+c.url+"/chat", "tok-b", `{"session_id":"`+session+`","message":"hi"}`); status != http.StatusForbidden {
		t.Fatalf("bob writing to alice's session: %d", status)
	}
	if status, _ := get(t, "http://"+c.url+"/sessions/"+session+"/history", ""); status != http.StatusUnauthorized {
		t.Fatalf("history without a token: %d", status)
	}
	if status, h := get(t, "http://"+c.url+"/sessions/"+session+"/history", "tok-a"); status != http.StatusOK || len(h["turns"].([]any)) != 6 {
		t.Fatalf("alice's history: %d %v", status, h)
	}
}

func TestWebSocketLimits(t *testing.T) {
	c := startChat(t, func(cfg *Config) {
		cfg.Gateway.WS.ConnRate, cfg.Gateway.WS.ConnBurst, cfg.Gateway.WS.MaxStrikes = 1, 2, 5
	})
	// A foreign Origin is refused.
	if _, status, err := c.dial("", http.Header{"Origin": {"http://evil.example"}}); err == nil || status != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %d, want 403", err, status)
	}
	// A frame over 64 KiB closes with 1009.
	conn, _, err := c.dial("", nil)
	if err != nil {
		t.Fatal(err)
	}
	read(t, conn, "session")
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"query","message":"`+strings.Repeat("a", 64<<10)+`"}`))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ce *websocket.CloseError
	for {
		if _, _, err = conn.ReadMessage(); err != nil {
			break
		}
	}
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized frame: %v, want close 1009", err)
	}
	// A flood gets rate_limited errors, then close 1008.
	conn, _, err = c.dial("", nil)
	if err != nil {
		t.Fatal(err)
	}
	read(t, conn, "session")
	for range 20 {
		_ = conn.WriteJSON(frame{"type": "query", "message": "flood"})
	}
	limited := 0
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var f frame
		if err = conn.ReadJSON(&f); err != nil {
			break
		}
		if f["code"] == "rate_limited" {
			limited++
		}
	}
	if limited == 0 || !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("flood: %d rate_limited errors, then %v; want some and close 1008", limited, err)
	}
}

func TestShutdownClosesSocketsWith1001(t *testing.T) {
	c := startChat(t, nil)
	conn, _, err := c.dial("", nil)
	if err != nil {
		t.Fatal(err)
	}
	read(t, conn, "session")
	go func() { _ = c.app.Stop(context.Background()) }()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var ce *websocket.CloseError
	for {
		if _, _, err = conn.ReadMessage(); err != nil {
			break
		}
	}
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("on shutdown: %v, want close 1001", err)
	}
}

// TestSlowClientIsDropped: a client that stops reading is dropped within the
// write deadline, while another client keeps getting answers promptly.
func TestSlowClientIsDropped(t *testing.T) {
	c := startChat(t, func(cfg *Config) {
		cfg.Gateway.WS.WriteTimeout, cfg.Gateway.WS.SendQueue = time.Second, 8
	})
	// The slow client: a tiny receive buffer, and it never reads.
	dialer := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		return errors.Join(err, serr)
	}}).DialContext}
	slow, resp, err := dialer.Dial("ws://"+c.url+"/ws?user_id=slow", nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, _, err := c.dial("?user_id=fast", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	read(t, fast, "session")

	// The slow client asks for pongs it never reads.
	stop := make(chan struct{})
	dropped := make(chan time.Time, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = slow.SetWriteDeadline(time.Now().Add(time.Second))
			if err := slow.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
				dropped <- time.Now()
				return
			}
		}
	}()
	defer close(stop)

	// Meanwhile the fast client's questions are answered as usual.
	start := time.Now()
	for i := range 3 {
		_ = fast.WriteJSON(frame{"type": "query", "id": strconv.Itoa(i), "message": "How do I start kchat?"})
		read(t, fast, "answer")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the fast client's 3 answers took %s next to a slow client", took)
	}
	select {
	case at := <-dropped:
		if at.Sub(start) > 2*time.Second {
			t.Errorf("the slow client was dropped after %s, want within the 1 s write deadline", at.Sub(start))
		}
		t.Logf("slow client dropped %s after it started, fast client's 3 answers in %s", at.Sub(start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("the slow client was not dropped")
	}
}
