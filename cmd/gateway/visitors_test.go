package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/cmd/internal/wire"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// KCHAT_AUTH=none gives every visitor an identity of its own (issue 13,
// item 4): visitors are browsers, each with its own cookie jar, each from
// its own loopback address, against the gateway's default limits.

// testCookieKey is the visitor cookie key of the test gateways.
const testCookieKey = "kchat-test-cookie-key-0123456789abcdef"

// visitor is one browser: a cookie jar (its identity, once the gateway
// set it) and a source address.
type visitor struct {
	dialer websocket.Dialer
}

// newVisitor is a browser dialing from 127.0.0.<host>.
func newVisitor(t *testing.T, host int) *visitor {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &visitor{dialer: websocket.Dialer{
		Jar: jar, HandshakeTimeout: 10 * time.Second,
		NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(host>>8), byte(host))}}).DialContext,
	}}
}

// dial opens a socket to the gateway at addr; on a refused upgrade it
// returns the HTTP status.
func (v *visitor) dial(addr string) (*websocket.Conn, int, error) {
	return v.dialQuery(addr, "")
}

// dialQuery is dial with a query string ("?session_id=…" to resume).
func (v *visitor) dialQuery(addr, query string) (*websocket.Conn, int, error) {
	conn, resp, err := v.dialer.Dial("ws://"+addr+"/ws"+query, nil)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	return conn, status, err
}

// startVisitorsChat is a gateway and an answerer in one process on brokers
// (Redis sessions when redisURL is set), in none mode with the default
// limits per user and per address.
func startVisitorsChat(t *testing.T, brokers []string, prefix, redisURL string) string {
	t.Helper()
	cfg := testConfig(brokers, prefix)
	cfg.Redis.URL, cfg.Redis.KeyPrefix = redisURL, prefix
	cfg.Gateway.Auth.CookieKey = testCookieKey
	cfg.Gateway.AddrLimit = wire.AddrLimits{MaxConns: 100, Rate: 20, Burst: 40} // the defaults
	acfg := wire.AnswererConfig{
		HTTP:  httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Stage: kafka.StageConfig{Group: prefix + "answerer", Instance: "t", RetryBackoff: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, Concurrency: 8},
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
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	return srv.Addr()
}

func TestVisitors(t *testing.T) {
	testVisitors(t, startVisitorsChat(t, kafkatest.Fake(t), testenv.Prefix("kfake"), ""))
}

func TestIntegrationVisitors(t *testing.T) {
	prefix := testenv.Prefix("it-visitors")
	testVisitors(t, startVisitorsChat(t, kafkatest.Real(t, prefix), prefix, testenv.RedisURL(t)))
}

func testVisitors(t *testing.T, addr string) {
	t.Run("25 visitors ask 3 questions each at once", func(t *testing.T) {
		const visitors, questions = 25, 3
		var wg sync.WaitGroup
		errs := make(chan error, visitors)
		users := make(chan string, visitors)
		for i := range visitors {
			wg.Go(func() {
				errs <- askAll(newVisitor(t, 10+i), addr, questions, users)
			})
		}
		wg.Wait()
		close(errs)
		close(users)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		seen := map[string]bool{}
		for u := range users {
			seen[u] = true
		}
		if len(seen) != visitors {
			t.Errorf("%d visitors had %d identities, want one each", visitors, len(seen))
		}
	})

	t.Run("one visitor opening 25 sockets", func(t *testing.T) {
		greedy := newVisitor(t, 5)
		refused := 0
		var user string
		for i := range 25 {
			conn, status, err := greedy.dial(addr)
			if err != nil {
				if status != http.StatusTooManyRequests {
					t.Fatalf("socket %d refused with %d (%v), want 429", i+1, status, err)
				}
				refused++
				continue
			}
			t.Cleanup(func() { _ = conn.Close() })
			u := read(t, conn, "session")["user_id"].(string)
			if user != "" && u != user {
				t.Fatalf("socket %d is user %s, the first %s: the cookie did not keep the identity", i+1, u, user)
			}
			user = u
		}
		if refused != 5 {
			t.Fatalf("%d of 25 sockets refused, want 5 (20 per user)", refused)
		}
		// Only that visitor is refused: another, from the same address too.
		for _, host := range []int{5, 6} {
			conn, status, err := newVisitor(t, host).dial(addr)
			if err != nil {
				t.Fatalf("another visitor from 127.0.0.%d refused: %d %v", host, status, err)
			}
			read(t, conn, "session")
			_ = conn.WriteJSON(frame{"type": "query", "id": "1", "message": "How do I start kchat?"})
			read(t, conn, "answer")
			conn.Close()
		}
	})
}

// askAll opens one socket as v, asks n questions at once and waits for
// every answer; the visitor's user id goes to users.
func askAll(v *visitor, addr string, n int, users chan<- string) error {
	conn, status, err := v.dial(addr)
	if err != nil {
		return fmt.Errorf("dial: %d %w", status, err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(90 * time.Second))
	var s frame
	if err := conn.ReadJSON(&s); err != nil || s["type"] != "session" {
		return fmt.Errorf("session frame: %v %w", s, err)
	}
	users <- s["user_id"].(string)
	for q := range n {
		if err := conn.WriteJSON(frame{"type": "query", "id": strconv.Itoa(q), "message": "How do I start kchat?"}); err != nil {
			return err
		}
	}
	acks, answers := map[string]bool{}, map[string]bool{}
	for len(acks) < n || len(answers) < n {
		var f frame
		if err := conn.ReadJSON(&f); err != nil {
			return fmt.Errorf("after %d acks, %d answers: %w", len(acks), len(answers), err)
		}
		switch f["type"] {
		case "ack":
			acks[f["message_id"].(string)] = true
		case "answer":
			answers[f["reply_to"].(string)] = true
		case "error":
			return fmt.Errorf("error frame %v", f)
		}
	}
	for id := range answers {
		if !acks[id] {
			return fmt.Errorf("an answer to %s, which this visitor did not ask", id)
		}
	}
	return nil
}
