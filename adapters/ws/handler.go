package ws

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Handler serves GET /ws and pushes answers to the sockets of their
// session. Run must be running for answers to flow and for a clean
// shutdown (close 1001 to every socket).
type Handler struct {
	cfg     Config
	ask     *app.Ask
	history *app.SessionHistory
	userOf  func(*http.Request) (string, error)
	feed    ports.AnswerFeed
	log     *slog.Logger
	up      websocket.Upgrader

	mu        sync.Mutex
	bySession map[string]map[*conn]struct{}
	perUser   map[string]int
	limiters  map[string]*rate.Limiter
	closed    bool
}

// New returns the handler. userOf authenticates the upgrade request (an
// error refuses it with 401).
func New(cfg Config, ask *app.Ask, history *app.SessionHistory, feed ports.AnswerFeed, userOf func(*http.Request) (string, error), log *slog.Logger) *Handler {
	h := &Handler{
		cfg: cfg, ask: ask, history: history, userOf: userOf, feed: feed, log: log,
		bySession: map[string]map[*conn]struct{}{}, perUser: map[string]int{}, limiters: map[string]*rate.Limiter{},
	}
	h.up = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, CheckOrigin: h.checkOrigin}
	return h
}

// checkOrigin admits clients without an Origin (not browsers), the
// gateway's own origin, and the configured ones.
func (h *Handler) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if len(h.cfg.AllowedOrigins) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	for _, o := range h.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// Run delivers answers from the feed until ctx ends, then closes every
// socket with 1001 (going away).
func (h *Handler) Run(ctx context.Context) error {
	if err := h.feed.Subscribe(ctx, h.deliver); err != nil {
		return err
	}
	<-ctx.Done()
	h.mu.Lock()
	h.closed = true
	var all []*conn
	for _, cs := range h.bySession {
		for c := range cs {
			all = append(all, c)
		}
	}
	h.mu.Unlock()
	for _, c := range all {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	return nil
}

func (h *Handler) deliver(m domain.Message) {
	h.mu.Lock()
	cs := make([]*conn, 0, len(h.bySession[m.SessionID]))
	for c := range h.bySession[m.SessionID] {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.sendAnswer(m)
	}
}

// ServeHTTP authenticates, checks the session, upgrades and runs the
// connection until it closes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, err := h.userOf(r)
	if err != nil {
		http.Error(w, "unauthorized: "+err.Error(), http.StatusUnauthorized)
		return
	}
	if !h.checkOrigin(r) {
		http.Error(w, "forbidden origin", http.StatusForbidden)
		return
	}
	session := r.URL.Query().Get("session_id")
	resuming := session != ""
	if !resuming {
		session = domain.NewMessageID()
	}
	if err := app.OwnSession(r.Context(), h.ask.Sessions, session, user); err != nil {
		switch {
		case errors.Is(err, domain.ErrForbidden):
			http.Error(w, "forbidden: the session belongs to another user", http.StatusForbidden)
		default:
			w.Header().Set("Retry-After", "2")
			http.Error(w, "sessions unavailable; retry later", http.StatusServiceUnavailable)
		}
		return
	}
	if !h.admit(user) {
		http.Error(w, "too many connections for this user", http.StatusTooManyRequests)
		return
	}
	defer h.leave(user)
	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered already
	}
	c := &conn{h: h, ws: ws, user: user, session: session, send: make(chan any, h.cfg.SendQueue),
		done: make(chan struct{}), sent: map[string]bool{},
		limiter: rate.NewLimiter(rate.Limit(h.cfg.ConnRate), h.cfg.ConnBurst)}
	if !h.register(c) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
		return
	}
	defer h.unregister(c)
	go c.writeLoop()
	c.enqueue(sessionFrame{Type: "session", SessionID: session, UserID: user})
	if resuming {
		// Subscribed already: replay what the session missed, then live
		// answers follow; sent drops what the replay covered.
		turns, err := h.history.Turns(r.Context(), user, session, r.URL.Query().Get("after"))
		if err != nil {
			c.enqueue(errorFrame{Type: "error", Code: codeUnavailable, Message: "could not load the session history; retry later"})
		} else {
			c.markSent(turns)
			c.enqueue(historyOf(turns))
		}
	}
	c.readLoop(r.Context())
}

func (h *Handler) admit(user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[user] >= h.cfg.MaxConnsPerUser {
		return false
	}
	h.perUser[user]++
	return true
}

func (h *Handler) leave(user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[user]--; h.perUser[user] <= 0 {
		delete(h.perUser, user)
	}
}

func (h *Handler) userLimiter(user string) *rate.Limiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.limiters[user]
	if !ok {
		l = rate.NewLimiter(rate.Limit(h.cfg.UserRate), h.cfg.UserBurst)
		h.limiters[user] = l
	}
	return l
}

func (h *Handler) register(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.bySession[c.session] == nil {
		h.bySession[c.session] = map[*conn]struct{}{}
	}
	h.bySession[c.session][c] = struct{}{}
	return true
}

func (h *Handler) unregister(c *conn) {
	h.mu.Lock()
	delete(h.bySession[c.session], c)
	if len(h.bySession[c.session]) == 0 {
		delete(h.bySession, c.session)
	}
	h.mu.Unlock()
	c.closeWith(websocket.CloseNormalClosure, "")
}

// closeRequest asks the writer to close the socket once the frames queued
// before it are written.
type closeRequest struct {
	code   int
	reason string
}

// conn is one socket: readLoop runs in the handler's goroutine, writeLoop
// in its own; everything written goes through send.
type conn struct {
	h       *Handler
	ws      *websocket.Conn
	user    string
	session string
	send    chan any
	limiter *rate.Limiter
	strikes int

	mu     sync.Mutex
	sent   map[string]bool // answer ids already sent
	done   chan struct{}
	closed bool
}

func (c *conn) markSent(turns []domain.Turn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range turns {
		c.sent[t.MessageID] = true
	}
}

func (c *conn) sendAnswer(m domain.Message) {
	c.mu.Lock()
	dup := c.sent[m.MessageID]
	c.sent[m.MessageID] = true
	c.mu.Unlock()
	if !dup {
		c.enqueue(answerOf(m))
	}
}

// enqueue queues a frame; a client whose queue is full is too slow and is
// dropped, so it never holds up anyone else.
func (c *conn) enqueue(frame any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	select {
	case c.send <- frame:
	default:
		c.h.log.Warn("dropping a slow websocket client", "user", c.user, "session", c.session)
		c.closeLocked(websocket.ClosePolicyViolation, "too slow")
	}
}

func (c *conn) closeWith(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, reason)
}

func (c *conn) closeLocked(code int, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	close(c.done)
	msg := websocket.FormatCloseMessage(code, reason)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = c.ws.Close()
}

func (c *conn) writeLoop() {
	ping := time.NewTicker(c.h.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case frame := <-c.send:
			if req, ok := frame.(closeRequest); ok {
				c.closeWith(req.code, req.reason)
				return
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
			if err := c.ws.WriteJSON(frame); err != nil {
				c.closeWith(websocket.CloseGoingAway, "write failed")
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
				c.closeWith(websocket.CloseGoingAway, "ping failed")
				return
			}
		}
	}
}

func (c *conn) readLoop(ctx context.Context) {
	c.ws.SetReadLimit(c.h.cfg.MaxFrame)
	deadline := func() { _ = c.ws.SetReadDeadline(time.Now().Add(2 * c.h.cfg.PingInterval)) }
	deadline()
	c.ws.SetPongHandler(func(string) error { deadline(); return nil })
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return // closed, too large (gorilla answers 1009), or timed out
		}
		deadline()
		var f clientFrame
		if err := json.Unmarshal(data, &f); err != nil {
			c.enqueue(errorFrame{Type: "error", Code: codeBadRequest, Message: "frames are JSON objects with a type"})
			continue
		}
		switch f.Type {
		case "ping":
			c.enqueue(map[string]string{"type": "pong"})
		case "query":
			if !c.allow() {
				if c.strikes++; c.strikes >= c.h.cfg.MaxStrikes {
					// After the frames already queued, so the client sees why.
					c.enqueue(closeRequest{code: websocket.ClosePolicyViolation, reason: "rate limit exceeded"})
					<-c.done
					return
				}
				c.enqueue(errorFrame{Type: "error", ID: f.ID, Code: codeRateLimited, Message: "too many queries; slow down"})
				continue
			}
			c.strikes = 0
			c.query(ctx, f)
		default:
			c.enqueue(errorFrame{Type: "error", ID: f.ID, Code: codeBadRequest, Message: `type must be "query" or "ping"`})
		}
	}
}

func (c *conn) allow() bool {
	return c.limiter.Allow() && c.h.userLimiter(c.user).Allow()
}

func (c *conn) query(ctx context.Context, f clientFrame) {
	q, err := c.h.ask.Execute(ctx, app.AskInput{UserID: c.user, SessionID: c.session, Text: f.Message})
	if err != nil {
		c.enqueue(errorFrame{Type: "error", ID: f.ID, Code: errorCode(err, f.Message), Message: errorText(err)})
		return
	}
	c.enqueue(ackFrame{Type: "ack", ID: f.ID, MessageID: q.MessageID})
}

func errorCode(err error, text string) string {
	var verr *domain.ValidationError
	switch {
	case errors.As(err, &verr) && len(text) > domain.MaxMessageBytes:
		return codeTooLarge
	case errors.As(err, &verr):
		return codeBadRequest
	case errors.Is(err, domain.ErrForbidden):
		return codeForbidden
	default:
		return codeUnavailable
	}
}

func errorText(err error) string {
	var verr *domain.ValidationError
	switch {
	case errors.As(err, &verr):
		return verr.Error()
	case errors.Is(err, domain.ErrForbidden):
		return "the session belongs to another user"
	default:
		return "the service is unavailable; retry in a moment"
	}
}

var _ = codeUnauthorized
