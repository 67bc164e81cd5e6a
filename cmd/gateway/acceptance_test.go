package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	goredis "github.com/redis/go-redis/v9"

	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// deployment is producer, consumer, answerer and gateways as separate
// processes on the real Kafka and Redis; the gateways publish through the
// producer service, as in docker-compose.
type deployment struct {
	t        *testing.T
	gateways []*proctest.Proc
	answerer *proctest.Proc
	producer *proctest.Proc
	consumer *proctest.Proc
	gwEnv    []string // a gateway's environment
}

// gatewayEnv is the environment the deployment's gateways run with, for
// another one started beside them (later variables win).
func (d *deployment) gatewayEnv() []string { return append([]string(nil), d.gwEnv...) }

func deploy(t *testing.T, tag string, gateways int, extra ...string) *deployment {
	t.Helper()
	prefix := testenv.Prefix(tag)
	return deployOn(t, kafkatest.Real(t, prefix), prefix, tag, gateways, extra...)
}

// deployOn is deploy on brokers, its topics under prefix.
func deployOn(t *testing.T, brokers []string, prefix, tag string, gateways int, extra ...string) *deployment {
	t.Helper()
	common := append([]string{
		"KCHAT_KAFKA_BROKERS=" + strings.Join(brokers, ","), "KCHAT_TOPIC_PREFIX=" + prefix,
		"KCHAT_REDIS_URL=" + testenv.RedisURL(t), "KCHAT_REDIS_PREFIX=" + prefix,
		"KCHAT_ANSWER_KEY=" + testAnswerKey, "KCHAT_COOKIE_KEY=" + testCookieKey,
		"KCHAT_RECEIPT_KEY=kchat-test-receipt-key-0123456789abcdef",
		// An admin listener of its own for each process: several of a kind run at once.
		"KCHAT_ADMIN_ADDR=127.0.0.1:0",
	}, extra...)
	d := &deployment{t: t}
	d.answerer = proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/answerer"), "KCHAT_ANSWERER_ADDR",
		append(common, "KCHAT_ANSWERER_GROUP="+prefix+"answerer", "KCHAT_ANSWERER_INSTANCE="+tag)...)
	d.producer = proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/producer"), "KCHAT_PRODUCER_ADDR", common...)
	d.consumer = proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/consumer"), "KCHAT_CONSUMER_ADDR",
		append(common, "KCHAT_CONSUMER_GROUP="+prefix+"consumer")...)
	gw := append(common, "KCHAT_QUERY_PUBLISHER=producer", "KCHAT_PRODUCER_URL="+d.producer.URL, "KCHAT_CONSUMER_URL="+d.consumer.URL)
	d.gwEnv = gw
	for range gateways {
		d.gateways = append(d.gateways, proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/gateway"), "KCHAT_GATEWAY_ADDR", gw...))
	}
	return d
}

func wsURL(p *proctest.Proc, query string) string {
	return "ws" + strings.TrimPrefix(p.URL, "http") + "/ws" + query
}

// hostOf is the host:port of a process's API.
func hostOf(p *proctest.Proc) string { return strings.TrimPrefix(p.URL, "http://") }

// TestIntegrationManySessionsTwoReplicas: 200 sessions over two gateway
// replicas, 3 queries each; every answer arrives exactly once, on the
// socket of the session that asked.
func TestIntegrationManySessionsTwoReplicas(t *testing.T) {
	d := deploy(t, "it-gw-load", 2)
	const sessions, perSession = 200, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	problems := []string{}
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	answered := 0
	for i := range sessions {
		wg.Go(func() {
			gw := d.gateways[i%2]
			// A visitor of its own, from an address of its own: the
			// gateways' limits per address are their defaults.
			conn, status, err := newVisitor(t, 10+i).dial(hostOf(gw))
			if err != nil {
				fail("session %d: dial: %d %v", i, status, err)
				return
			}
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(120 * time.Second))
			acks := map[string]bool{}
			answers := map[string]int{}
			for q := range perSession {
				if err := conn.WriteJSON(frame{"type": "query", "id": strconv.Itoa(q), "message": fmt.Sprintf("How do I start kchat? (%d/%d)", i, q)}); err != nil {
					fail("session %d: write: %v", i, err)
					return
				}
			}
			for len(acks) < perSession || sumCounts(answers) < perSession {
				var f frame
				if err := conn.ReadJSON(&f); err != nil {
					fail("session %d: read after %d acks, %d answers: %v", i, len(acks), sumCounts(answers), err)
					return
				}
				switch f["type"] {
				case "ack":
					acks[f["message_id"].(string)] = true
				case "answer":
					answers[f["reply_to"].(string)]++
				case "error":
					fail("session %d: error frame %v", i, f)
					return
				}
			}
			// A little longer: a duplicate or a foreign answer would show now.
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			for {
				var f frame
				if err := conn.ReadJSON(&f); err != nil {
					break
				}
				if f["type"] == "answer" {
					answers[f["reply_to"].(string)]++
				}
			}
			for id, n := range answers {
				if !acks[id] {
					fail("session %d: got an answer to %s, which it did not ask", i, id)
				} else if n != 1 {
					fail("session %d: answer to %s arrived %d times", i, id, n)
				}
			}
			mu.Lock()
			answered += len(answers)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	if answered != sessions*perSession {
		t.Errorf("%d answers delivered, want %d", answered, sessions*perSession)
	}
	t.Logf("%d sessions over 2 gateways: %d answers, each once, on the right socket", sessions, answered)
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// TestIntegrationOutageRedisFrozen freezes Redis (SIGSTOP) for 30 s during
// chat: session operations fail closed with unavailable, nothing crashes,
// the existing session is intact afterwards, and chat works again within
// 5 s of Redis returning. It must run alone (make test-integration runs
// Outage tests serially).
func TestIntegrationOutageRedisFrozen(t *testing.T) {
	d := deploy(t, "it-gw-redis", 1, "KCHAT_CHAT_TIMEOUT=5s")
	gw := d.gateways[0]
	erin := newVisitor(t, 2) // her cookie keeps her identity across sockets
	conn, _, err := erin.dial(hostOf(gw))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	session := read(t, conn, "session")["session_id"].(string)
	_ = conn.WriteJSON(frame{"type": "query", "id": "before", "message": "How do I start kchat?"})
	read(t, conn, "answer")

	opt, err := goredis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	defer rc.Close()
	info, err := rc.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid == 0 {
		t.Fatal("no Redis process id")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	defer resume()
	outageEnds := time.Now().Add(30 * time.Second)

	// During the outage: a query on the open socket gets unavailable.
	_ = conn.WriteJSON(frame{"type": "query", "id": "during", "message": "Are you there?"})
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	var f frame
	for f["type"] != "error" {
		f = frame{}
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("during the outage: %v", err)
		}
	}
	if f["code"] != "unavailable" || f["id"] != "during" {
		t.Fatalf("during the outage got %v, want an unavailable error", f)
	}
	// A resume and POST /chat fail closed; the process lives. A new socket
	// still opens (a session is stored on its first question, not on
	// connect), and its first question gets unavailable.
	_, resp, err := erin.dialer.Dial(wsURL(gw, "?session_id="+session), nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("resume during the outage: %v, want 503", err)
	}
	fresh, resp, err := erin.dialer.Dial(wsURL(gw, ""), nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		t.Fatalf("a new socket during the outage: %v; it needs no session store", err)
	}
	read(t, fresh, "session")
	_ = fresh.WriteJSON(frame{"type": "query", "id": "new", "message": "Anyone?"})
	if f := read(t, fresh, "error"); f["code"] != "unavailable" {
		t.Fatalf("a new socket's question during the outage: %v, want unavailable", f)
	}
	fresh.Close()
	if status, _ := post(t, gw.URL+"/chat", "", `{"session_id":"`+session+`","message":"hello?"}`); status != http.StatusServiceUnavailable {
		t.Fatalf("POST /chat during the outage: %d, want 503", status)
	}
	time.Sleep(time.Until(outageEnds))
	resume()
	back := time.Now()

	// Within 5 s chat works again, on the same session, with its history.
	deadline := back.Add(5 * time.Second)
	for {
		conn2, resp, err := erin.dialer.Dial(wsURL(gw, "?session_id="+session), nil)
		if resp != nil {
			_ = resp.Body.Close()
		}
		if err == nil {
			read(t, conn2, "session")
			hist := read(t, conn2, "history")
			if n := len(hist["turns"].([]any)); n < 2 {
				t.Fatalf("after the outage the session has %d turns: it was replaced", n)
			}
			_ = conn2.WriteJSON(frame{"type": "query", "id": "after", "message": "How do I start kchat?"})
			read(t, conn2, "answer")
			conn2.Close()
			if took := time.Since(back); took > 5*time.Second {
				t.Fatalf("the first answer after the outage came %s after Redis returned, want within 5 s", took)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chat did not recover within 5 s of Redis returning: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("chat answered again %s after Redis returned", time.Since(back).Round(10*time.Millisecond))
	for _, p := range append(d.gateways, d.answerer, d.producer, d.consumer) {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	}
}

// TestIntegrationSeedRoutes: the seed's POST /send (form) reaches the query
// topic through the producer, and GET /messages?type=answer&latest=true on
// the gateway returns the consumer's answer.
func TestIntegrationSeedRoutes(t *testing.T) {
	d := deploy(t, "it-gw-seed", 1)
	gw := d.gateways[0]
	form := url.Values{"session_id": {"seed-1"}, "user_id": {"frank"}, "message_id": {"seed-q-1"}, "type": {"query"}, "message": {"How do I start kchat?"}}
	resp, err := http.PostForm(gw.URL+"/send", form)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"status":"Message forwarded"`) || !strings.Contains(string(raw), `"status":"queued"`) || !strings.Contains(string(raw), "seed-q-1") {
		t.Fatalf("POST /send: %d %s", resp.StatusCode, raw)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, body := get(t, gw.URL+"/messages?type=answer&latest=true&limit=5", "")
		if status != http.StatusOK {
			t.Fatalf("GET /messages: %d %v", status, body)
		}
		if msgs, _ := body["messages"].([]any); len(msgs) > 0 {
			v := msgs[0].(map[string]any)["value"].(map[string]any)
			if v["reply_to"] != "seed-q-1" || v["type"] != "answer" {
				t.Fatalf("the consumer's answer %v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer through GET /messages on the gateway")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// SIGTERM: every open socket gets close 1001 before the process exits.
	conn, resp, err := websocket.DefaultDialer.Dial(wsURL(gw, ""), nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	read(t, conn, "session")
	stopped := make(chan error, 1)
	go func() { stopped <- gw.Stop(30 * time.Second) }()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var ce *websocket.CloseError
	for {
		if _, _, err = conn.ReadMessage(); err != nil {
			break
		}
	}
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("on SIGTERM: %v, want close 1001", err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
