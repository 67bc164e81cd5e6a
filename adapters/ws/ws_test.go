package ws

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// feed is an answer feed the test drives by hand.
type feed struct {
	subscribed chan struct{}
	fn         func(domain.Message)
}

// Reply is unset and Widen a no-op: the test's feed reads every answer.
func (f *feed) Reply(string) domain.Reply { return domain.Reply{} }

func (f *feed) Widen(context.Context) (func(), error) { return func() {}, nil }

func (f *feed) Subscribe(_ context.Context, fn func(domain.Message)) error {
	f.fn = fn
	close(f.subscribed)
	return nil
}

// publisher accepts queries while their context is alive, as Kafka would.
// before, when set, runs before a publish returns.
type publisher struct {
	n      atomic.Int32
	before func(domain.Message)
}

func (p *publisher) PublishQuery(ctx context.Context, q domain.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.n.Add(1)
	if p.before != nil {
		p.before(q)
	}
	return nil
}

// server is the handler behind an httptest server, with in-memory
// sessions, a fake feed and a fake publisher. The user is ?user_id=, or
// anonymous.
type server struct {
	t        *testing.T
	h        *Handler
	url      string
	feed     *feed
	deltas   *deltaFeed
	pub      *publisher
	sessions *memory.Sessions
	stop     context.CancelFunc
	ran      chan error
}

func start(t *testing.T, mutate func(*Config)) *server {
	t.Helper()
	return startWith(t, mutate, nil)
}

// startWith starts a server whose questions also go through limiter (nil:
// none).
func startWith(t *testing.T, mutate func(*Config), limiter ports.Limiter) *server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MaxConnsPerUser = 1000
	if mutate != nil {
		mutate(&cfg)
	}
	sessions := memory.NewSessions(memory.SessionsConfig{MaxTurns: 50, TTL: time.Hour})
	f := &feed{subscribed: make(chan struct{})}
	df := &deltaFeed{subscribed: make(chan struct{})}
	answers := &app.Answers{Feed: f, DeltaFeed: df}
	pub := &publisher{}
	ask := &app.Ask{Sessions: sessions, Publisher: pub, Limiter: limiter, Answers: answers}
	open := &app.OpenSession{Sessions: sessions, Answers: answers, HistoryLimit: 200}
	userOf := func(r *http.Request) (string, error) {
		if u := r.URL.Query().Get("user_id"); u != "" {
			return u, nil
		}
		return "anonymous", nil
	}
	h := New(cfg, open, ask, userOf, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{t: t, h: h, feed: f, deltas: df, pub: pub, sessions: sessions, stop: cancel, ran: make(chan error, 2)}
	go func() { s.ran <- h.Run(ctx) }()
	go func() { s.ran <- answers.Run(ctx) }()
	<-f.subscribed
	<-df.subscribed
	srv := httptest.NewServer(h)
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-s.ran; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
		srv.Close()
	})
	return s
}

func (s *server) dial(query string) *websocket.Conn {
	s.t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(s.url+query, nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// answer delivers an answer of session as the feed would.
// answer delivers an answer to the anonymous user's session as the feed
// would; answerTo to another user's.
func (s *server) answer(session, id, text string) { s.answerTo("anonymous", session, id, text) }

func (s *server) answerTo(user, session, id, text string) {
	s.feed.fn(domain.Message{MessageID: id, SessionID: session, UserID: user, ReplyTo: "q-" + id, Type: domain.TypeAnswer, Text: text})
}

// open counts the registered sockets and the users holding a connection.
func (s *server) open() (conns, users int) { return s.h.Open() }

// only returns the one socket registered.
func (s *server) only() *conn {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	for c := range s.h.conns {
		return c
	}
	s.t.Fatal("no socket registered")
	return nil
}

// released waits until every socket has been unregistered.
func (s *server) released() {
	s.t.Helper()
	eventually(s.t, "every socket released", func() bool {
		conns, users := s.open()
		return conns == 0 && users == 0
	})
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
	}
}

type frame map[string]any

func read(t *testing.T, conn *websocket.Conn) frame {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f frame
	if err := conn.ReadJSON(&f); err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

func readType(t *testing.T, conn *websocket.Conn, typ string) frame {
	t.Helper()
	f := read(t, conn)
	if f["type"] != typ {
		t.Fatalf("got %v, want a %s frame", f, typ)
	}
	return f
}

// closeCode reads until the socket closes and returns the close code.
func closeCode(t *testing.T, conn *websocket.Conn) int {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			return ce.Code
		case err != nil:
			t.Fatalf("socket ended without a close frame: %v", err)
		}
	}
}

// An idle socket holds its reader goroutine only: net/http's goroutine
// returns after the upgrade, the writer once the queue is empty, and pings
// come from a timer.
func TestIdleSocketsHoldOneGoroutineEach(t *testing.T) {
	s := start(t, nil)
	before := runtime.NumGoroutine()
	const n = 200
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = s.dial("")
		readType(t, conns[i], "session")
	}
	var grew int
	eventually(t, "1 goroutine per idle socket", func() bool {
		grew = runtime.NumGoroutine() - before
		return grew <= n+n/20
	})
	t.Logf("%d idle sockets: %d more goroutines", n, grew)
	for _, c := range conns {
		_ = c.Close()
	}
	s.released()
	eventually(t, "the goroutines of closed sockets gone", func() bool { return runtime.NumGoroutine() <= before+5 })
}

// Frames larger than the read and write buffers go through whole; a frame
// over MaxFrame closes the socket with 1009.
func TestFramesLargerThanTheBuffers(t *testing.T) {
	s := start(t, nil)
	conn := s.dial("")
	session := readType(t, conn, "session")["session_id"].(string)

	question := strings.Repeat("q", 16*readBufferSize)
	if err := conn.WriteJSON(frame{"type": "query", "id": "big", "message": question}); err != nil {
		t.Fatal(err)
	}
	if ack := readType(t, conn, "ack"); ack["id"] != "big" {
		t.Fatalf("ack %v", ack)
	}

	text := strings.Repeat("a", 40*writeBufferSize)
	s.answer(session, "a-big", text)
	if got := readType(t, conn, "answer"); got["message"] != text {
		t.Fatalf("answer of %d bytes, want %d", len(got["message"].(string)), len(text))
	}

	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"query","message":"`+strings.Repeat("x", int(s.h.cfg.MaxFrame))+`"}`))
	if code := closeCode(t, conn); code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized frame: close %d, want 1009", code)
	}
	s.released()
}

// Frames are written in the order they were queued, and a close request
// only after the frames queued before it.
func TestFramesKeepTheirOrder(t *testing.T) {
	const n = 500
	s := start(t, func(cfg *Config) {
		cfg.SendQueue = n
		cfg.ConnRate, cfg.ConnBurst, cfg.MaxStrikes = 0.001, 1, 3
	})
	conn := s.dial("")
	session := readType(t, conn, "session")["session_id"].(string)
	for i := range n {
		s.answer(session, strconv.Itoa(i), "answer "+strconv.Itoa(i))
	}
	for i := range n {
		if got := readType(t, conn, "answer"); got["message_id"] != strconv.Itoa(i) {
			t.Fatalf("answer %d is %v", i, got["message_id"])
		}
	}

	// One query allowed, then rate-limited ones until the strikes close
	// the socket: the errors come first, then close 1008.
	for i := range 10 {
		_ = conn.WriteJSON(frame{"type": "query", "id": strconv.Itoa(i), "message": "flood"})
	}
	readType(t, conn, "ack")
	for i := range s.h.cfg.MaxStrikes - 1 {
		if f := readType(t, conn, "error"); f["code"] != codeRateLimited {
			t.Fatalf("error %d: %v", i, f)
		}
	}
	if code := closeCode(t, conn); code != websocket.ClosePolicyViolation {
		t.Fatalf("after the strikes: close %d, want 1008", code)
	}
	s.released()
}

// A client whose queue is full is dropped with 1008; its queued frames are
// let go.
func TestFullQueueDropsTheClient(t *testing.T) {
	s := start(t, func(cfg *Config) { cfg.SendQueue = 4 })
	conn := s.dial("")
	session := readType(t, conn, "session")["session_id"].(string)

	// Stand in for a writer stuck on a client that does not read: one
	// runs, as far as enqueue can tell, and it never drains the queue.
	c := s.only()
	eventually(t, "the writer done with the session frame", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.writing {
			return false
		}
		c.writing = true
		return true
	})
	for i := range s.h.cfg.SendQueue + 1 {
		s.answer(session, strconv.Itoa(i), "answer")
	}
	if code := closeCode(t, conn); code != websocket.ClosePolicyViolation {
		t.Fatalf("full queue: close %d, want 1008", code)
	}
	c.mu.Lock()
	queued := len(c.queue)
	c.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d frames still queued on a closed socket", queued)
	}
	s.released()
}

// The server pings every interval; a client that answers stays, a silent
// one is dropped after two intervals.
func TestPings(t *testing.T) {
	const interval = 50 * time.Millisecond
	s := start(t, func(cfg *Config) { cfg.PingInterval = interval })

	var pings atomic.Int32
	live := s.dial("?user_id=live")
	live.SetPingHandler(func(data string) error {
		pings.Add(1)
		return live.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	silent := s.dial("?user_id=silent")
	silent.SetPingHandler(func(string) error { return nil })

	var wg sync.WaitGroup
	ended := make(chan time.Time, 2)
	for _, c := range []*websocket.Conn{live, silent} {
		wg.Go(func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					ended <- time.Now()
					return
				}
			}
		})
	}
	started := time.Now()
	select {
	case at := <-ended:
		if took := at.Sub(started); took > 20*interval {
			t.Errorf("the silent client was dropped after %s", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the silent client was not dropped")
	}
	time.Sleep(10 * interval)
	if conns, _ := s.open(); conns != 1 || pings.Load() < 5 {
		t.Fatalf("%d sockets open, %d pings; want the live one, pinged every %s", conns, pings.Load(), interval)
	}
	_ = live.Close()
	wg.Wait()
	s.released()
}

// Resuming replays what the session missed and drops live answers the
// replay covered; queries keep working after ServeHTTP returned (the
// request's context is over by then).
func TestResume(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	if _, err := s.sessions.Open(ctx, "s1", "alice"); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"q1", "a1", "q2", "a2"} {
		role := domain.RoleUser
		if i%2 == 1 {
			role = domain.RoleAssistant
		}
		if err := s.sessions.Append(ctx, "s1", domain.Turn{Role: role, MessageID: id, Text: id, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	conn := s.dial("?user_id=alice&session_id=s1&after=a1")
	if f := readType(t, conn, "session"); f["session_id"] != "s1" || f["user_id"] != "alice" {
		t.Fatalf("session frame %v", f)
	}
	turns := readType(t, conn, "history")["turns"].([]any)
	if len(turns) != 2 || turns[0].(map[string]any)["message_id"] != "q2" || turns[1].(map[string]any)["message_id"] != "a2" {
		t.Fatalf("history %v, want q2 and a2", turns)
	}
	s.answerTo("alice", "s1", "a2", "replayed already")
	s.answerTo("alice", "s1", "a3", "live")
	if f := readType(t, conn, "answer"); f["message_id"] != "a3" {
		t.Fatalf("got %v, want only the answer the replay did not cover", f)
	}

	_ = conn.WriteJSON(frame{"type": "query", "id": "later", "message": "still there?"})
	if f := read(t, conn); f["type"] != "ack" || f["id"] != "later" {
		t.Fatalf("query after the upgrade: %v, want its ack", f)
	}
}

// Shutdown closes every socket with 1001, and refuses new ones the same way.
func TestShutdownClosesEverySocketWith1001(t *testing.T) {
	s := start(t, nil)
	conns := []*websocket.Conn{s.dial(""), s.dial(""), s.dial("?user_id=bob")}
	for _, c := range conns {
		readType(t, c, "session")
	}
	s.stop()
	for i, c := range conns {
		if code := closeCode(t, c); code != websocket.CloseGoingAway {
			t.Fatalf("socket %d: close %d, want 1001", i, code)
		}
	}
	if code := closeCode(t, s.dial("")); code != websocket.CloseGoingAway {
		t.Fatalf("a socket opened after shutdown: close %d, want 1001", code)
	}
	s.released()
}

// heldConn holds what is written while hold is set and sends it in one
// write on release, so several frames reach the server in one segment.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  []byte
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *heldConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = false
	_, err := c.Conn.Write(c.buf)
	return err
}

// TestFramesArrivingTogether: frames that arrive in one segment are all
// read, though the reader parks only on an empty buffer and a socket with
// nothing new on it.
func TestFramesArrivingTogether(t *testing.T) {
	s := start(t, nil)
	var held *heldConn
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		held = &heldConn{Conn: c}
		return held, err
	}}
	conn, resp, err := d.Dial(s.url, nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	readType(t, conn, "session")
	held.mu.Lock()
	held.hold = true
	held.mu.Unlock()
	const n = 5
	for range n {
		if err := conn.WriteJSON(map[string]string{"type": "ping"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := held.release(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if f := read(t, conn); f["type"] != "pong" {
			t.Fatalf("frame %d: %+v, want a pong for each of %d pings sent together", i, f, n)
		}
	}
}

// The user's limit (app.Ask's limiter) holds over all their sockets: a
// second socket of the same user does not get a fresh allowance, and
// another user is not limited by it.
func TestUserLimitSpansSockets(t *testing.T) {
	s := startWith(t, nil, ratelimit.New(ratelimit.Config{Rate: 0.001, Burst: 2}))
	first, second, other := s.dial("?user_id=alice"), s.dial("?user_id=alice"), s.dial("?user_id=bob")
	for _, c := range []*websocket.Conn{first, second, other} {
		readType(t, c, "session")
	}
	_ = first.WriteJSON(frame{"type": "query", "id": "1", "message": "one"})
	readType(t, first, "ack")
	_ = second.WriteJSON(frame{"type": "query", "id": "2", "message": "two"})
	readType(t, second, "ack")
	_ = second.WriteJSON(frame{"type": "query", "id": "3", "message": "three"})
	if f := readType(t, second, "error"); f["code"] != codeRateLimited || f["id"] != "3" {
		t.Fatalf("third question of alice: %v, want rate_limited", f)
	}
	_ = first.WriteJSON(frame{"type": "query", "id": "4", "message": "four"})
	if f := readType(t, first, "error"); f["code"] != codeRateLimited {
		t.Fatalf("alice's first socket after her limit: %v, want rate_limited", f)
	}
	_ = other.WriteJSON(frame{"type": "query", "id": "5", "message": "bob's"})
	readType(t, other, "ack")
}

// A text frame that is not UTF-8 fails the connection with 1007 (RFC 6455
// §8.1); a frame that repeats a member gets bad_request and the socket
// stays.
func TestStrictFrames(t *testing.T) {
	s := start(t, nil)
	conn := s.dial("")
	readType(t, conn, "session")
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"query","type":"ping","message":"hi"}`))
	if f := readType(t, conn, "error"); f["code"] != codeBadRequest {
		t.Fatalf("duplicate member: %v, want bad_request", f)
	}
	_ = conn.WriteJSON(frame{"type": "ping"})
	readType(t, conn, "pong")
	_ = conn.WriteMessage(websocket.TextMessage, []byte("{\"type\":\"query\",\"message\":\"h\xffi\"}"))
	if code := closeCode(t, conn); code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("invalid UTF-8: close %d, want 1007", code)
	}
	s.released()
}

// A session id is checked as on HTTP (at most 128 printable characters),
// and a connection stores no session until its first question.
func TestSessionIDsAndLazySessions(t *testing.T) {
	s := start(t, nil)
	for _, bad := range []string{strings.Repeat("x", 129), "a%00b", "a%0D%0Ab", "a%E2%80%AEb"} {
		_, resp, err := websocket.DefaultDialer.Dial(s.url+"?session_id="+bad, nil)
		if resp != nil {
			_ = resp.Body.Close()
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("session_id=%.20s…: %v, want 400", bad, resp)
		}
	}
	conn := s.dial("?user_id=idle")
	id := readType(t, conn, "session")["session_id"].(string)
	if _, err := s.sessions.Owner(context.Background(), id); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("connecting stored session %s: %v", id, err)
	}
	_ = conn.WriteJSON(frame{"type": "query", "id": "1", "message": "now"})
	readType(t, conn, "ack")
	if owner, err := s.sessions.Owner(context.Background(), id); err != nil || owner != "idle" {
		t.Fatalf("after the first question: %q, %v", owner, err)
	}
}

// An allowed origin is scheme://host[:port] and nothing else: one with a
// path, query or user info could never match and is refused at startup.
func TestAllowedOriginsValidate(t *testing.T) {
	for give, ok := range map[string]bool{
		"https://chat.example.com": true, "http://localhost:8002": true, "https://chat.example.com/": true,
		"https://chat.example.com/app": false, "https://chat.example.com?x=1": false, "https://me@chat.example.com": false,
		"chat.example.com": false, "https://": false,
	} {
		cfg := DefaultConfig()
		cfg.AllowedOrigins = []string{give}
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("KCHAT_ALLOWED_ORIGINS=%s: %v, want ok=%v", give, err, ok)
		}
	}
}

// A question asked on one socket of a session reaches the session's other
// sockets as a question frame, before its answer; the socket it was asked
// on gets its ack and no echo.
func TestQuestionReachesTheSessionsOtherSockets(t *testing.T) {
	s := start(t, nil)
	first := s.dial("")
	session := readType(t, first, "session")["session_id"].(string)
	second := s.dial("?session_id=" + session)
	readType(t, second, "session")
	if h := readType(t, second, "history"); h["unknown"] != true {
		t.Fatalf("history of a session nothing was asked in: %v, want unknown: true", h)
	}

	if err := second.WriteJSON(frame{"type": "query", "id": "r1", "message": "asked in the second tab"}); err != nil {
		t.Fatal(err)
	}
	ack := readType(t, second, "ack")
	q := readType(t, first, "question")
	if q["message_id"] != ack["message_id"] || q["message"] != "asked in the second tab" {
		t.Fatalf("question frame %v, want message_id %v and the text", q, ack["message_id"])
	}
	s.feed.fn(domain.Message{MessageID: "a1", SessionID: session, UserID: "anonymous", ReplyTo: ack["message_id"].(string), Type: domain.TypeAnswer, Text: "the answer"})
	// The asking socket's next frame is the answer: no echo of its question.
	for _, c := range []*websocket.Conn{first, second} {
		if a := readType(t, c, "answer"); a["reply_to"] != ack["message_id"] {
			t.Fatalf("answer %v, want reply_to %v", a, ack["message_id"])
		}
	}
}
