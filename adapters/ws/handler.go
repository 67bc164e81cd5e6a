package ws

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
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
	bySession map[string][]*conn // usually one socket per session

	perUser  map[string]int
	limiters map[string]*rate.Limiter
	closed   bool
}

// New returns the handler. userOf authenticates the upgrade request (an
// error refuses it with 401).
func New(cfg Config, ask *app.Ask, history *app.SessionHistory, feed ports.AnswerFeed, userOf func(*http.Request) (string, error), log *slog.Logger) *Handler {
	h := &Handler{
		cfg: cfg, ask: ask, history: history, userOf: userOf, feed: feed, log: log,
		bySession: map[string][]*conn{}, perUser: map[string]int{}, limiters: map[string]*rate.Limiter{},
	}
	h.up = websocket.Upgrader{
		// Zero: gorilla reads through the readBufferSize reader that
		// readerHijacker puts in place. Client frames are small JSON
		// objects; a larger one is read in several fills of it.
		ReadBufferSize: 0,
		// Write buffers come from a pool shared by every socket and are
		// held only while a frame is written; a larger frame is sent as
		// several fragments.
		WriteBufferSize: writeBufferSize, WriteBufferPool: &writeBuffers,
		CheckOrigin: h.checkOrigin,
	}
	return h
}

// Buffer sizes of a socket; see New.
const (
	readBufferSize  = 512
	writeBufferSize = 4096
)

// writeBuffers is the write buffer pool of every socket of the process.
var writeBuffers sync.Pool

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
		all = append(all, cs...)
	}
	h.mu.Unlock()
	for _, c := range all {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	return nil
}

func (h *Handler) deliver(m domain.Message) {
	h.mu.Lock()
	cs := slices.Clone(h.bySession[m.SessionID])
	h.mu.Unlock()
	for _, c := range cs {
		c.sendAnswer(m)
	}
}

// ServeHTTP authenticates, checks the session, upgrades, greets the client
// and returns: the connection runs in a goroutine of its own, so an idle
// socket does not keep net/http's serving goroutine, connection state and
// buffers alive.
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
	// Copies: the connection outlives the request, whose strings it must
	// not keep alive.
	user = strings.Clone(user)
	query := r.URL.Query()
	session := strings.Clone(query.Get("session_id"))
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
	hj := &readerHijacker{ResponseWriter: w}
	ws, err := h.up.Upgrade(hj, r, nil)
	if err != nil {
		h.leave(user)
		return // the upgrader answered already
	}
	c := &conn{h: h, ws: ws, br: hj.br, raw: rawConn(ws.NetConn()), user: user, session: session, done: make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(h.cfg.ConnRate), h.cfg.ConnBurst)}
	if !h.register(c) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
		h.leave(user)
		return
	}
	c.startPings()
	c.greet(r.Context(), resuming, query.Get("after"))
	// The request's context ends when ServeHTTP returns, and its values
	// (chi's pooled route context among them) are reused by other
	// requests: the connection's queries get a context of their own.
	go c.serve(context.Background())
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

// leave forgets a closed connection of user. With the user's last one
// gone, a user limiter that is full again is dropped too (it holds no
// state a new one would not): limiters do not pile up, one per user ever
// seen, and a user cannot reset a drained limit by reconnecting.
func (h *Handler) leave(user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[user]--; h.perUser[user] > 0 {
		return
	}
	delete(h.perUser, user)
	if l, ok := h.limiters[user]; ok && l.Tokens() >= float64(h.cfg.UserBurst) {
		delete(h.limiters, user)
	}
}

func (h *Handler) userLimiter(user string) *rate.Limiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.limiters[user]
	if !ok {
		if len(h.limiters) >= 2*len(h.perUser)+limiterSweepAt {
			h.sweepLimitersLocked()
		}
		l = rate.NewLimiter(rate.Limit(h.cfg.UserRate), h.cfg.UserBurst)
		h.limiters[user] = l
	}
	return l
}

// limiterSweepAt is how many limiters of users without a connection may
// build up before the next new one sweeps them (amortised: a sweep
// follows at least as many creations as it visits).
const limiterSweepAt = 1024

// sweepLimitersLocked drops the limiters of users with no connection whose
// limit is full again (those leave kept because they were still draining).
func (h *Handler) sweepLimitersLocked() {
	for user, l := range h.limiters {
		if h.perUser[user] == 0 && l.Tokens() >= float64(h.cfg.UserBurst) {
			delete(h.limiters, user)
		}
	}
}

func (h *Handler) register(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.bySession[c.session] = append(h.bySession[c.session], c)
	return true
}

func (h *Handler) unregister(c *conn) {
	h.mu.Lock()
	if cs := slices.DeleteFunc(h.bySession[c.session], func(o *conn) bool { return o == c }); len(cs) > 0 {
		h.bySession[c.session] = cs
	} else {
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

// pingRequest asks the writer for a ping control frame.
type pingRequest struct{}

// conn is one socket. Its reader runs in a goroutine of its own for the
// life of the socket; a writer goroutine runs only while frames wait in
// queue (it is started by enqueue and exits when the queue is empty), and
// pings come from a timer, so an idle socket costs one parked goroutine.
type conn struct {
	h       *Handler
	ws      *websocket.Conn
	br      *bufio.Reader   // ws reads through it (see awaitReadable)
	raw     syscall.RawConn // the socket's descriptor, to wait on it
	user    string
	session string
	limiter *rate.Limiter
	strikes int // reader only

	mu      sync.Mutex
	queue   []any // frames for the writer, oldest first, at most cfg.SendQueue
	pinging bool  // a ping is due, ahead of the queue
	writing bool  // a writer goroutine is running
	pinger  *time.Timer
	sent    map[string]bool // answer ids already sent; nil until the first
	done    chan struct{}   // closed with the socket
	closed  bool
}

// greet sends the session frame and, when resuming, what the session
// missed. The connection is subscribed already, so live answers follow the
// replay and sent drops what the replay covered.
func (c *conn) greet(ctx context.Context, resuming bool, after string) {
	c.enqueue(sessionFrame{Type: "session", SessionID: c.session, UserID: c.user})
	if !resuming {
		return
	}
	turns, err := c.h.history.Turns(ctx, c.user, c.session, after)
	if err != nil {
		c.enqueue(errorFrame{Type: "error", Code: codeUnavailable, Message: "could not load the session history; retry later"})
		return
	}
	c.markSent(turns)
	c.enqueue(historyOf(turns))
}

// serve reads the socket until it closes, then releases the connection.
func (c *conn) serve(ctx context.Context) {
	defer c.h.leave(c.user)
	defer c.h.unregister(c)
	c.readLoop(ctx)
}

func (c *conn) markSent(turns []domain.Turn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range turns {
		c.markLocked(t.MessageID)
	}
}

func (c *conn) sendAnswer(m domain.Message) {
	c.mu.Lock()
	dup := c.sent[m.MessageID]
	c.markLocked(m.MessageID)
	c.mu.Unlock()
	if !dup {
		c.enqueue(answerOf(m))
	}
}

// markLocked records an answer id as sent; most sockets never get one, so
// the map is made on the first. c.mu must be held.
func (c *conn) markLocked(id string) {
	if c.sent == nil {
		c.sent = map[string]bool{}
	}
	c.sent[id] = true
}

// enqueue queues a frame; a client whose queue is full is too slow and is
// dropped, so it never holds up anyone else.
func (c *conn) enqueue(frame any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if len(c.queue) >= c.h.cfg.SendQueue {
		c.h.log.Warn("dropping a slow websocket client", "user", c.user, "session", c.session)
		c.closeLocked(websocket.ClosePolicyViolation, "too slow")
		return
	}
	c.queue = append(c.queue, frame)
	c.wakeWriterLocked()
}

// wakeWriterLocked starts the writer unless it runs already (it then sees
// the new work before it exits). c.mu must be held.
func (c *conn) wakeWriterLocked() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// startPings pings the client every interval until the socket closes.
// The timer is set under c.mu, which its callback takes first.
func (c *conn) startPings() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinger = time.AfterFunc(c.h.cfg.PingInterval, c.pingDue)
}

// pingDue has the writer send a ping, and re-arms the timer.
func (c *conn) pingDue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.pinging = true
	c.wakeWriterLocked()
	c.pinger.Reset(c.h.cfg.PingInterval)
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
	if c.pinger != nil {
		c.pinger.Stop()
	}
	c.queue = nil // never written now
	msg := websocket.FormatCloseMessage(code, reason)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = c.ws.Close()
}

// writeLoop writes what is due, in order, until nothing is, then exits.
func (c *conn) writeLoop() {
	for {
		frame, ok := c.next()
		if !ok || !c.write(frame) {
			return
		}
	}
}

// next takes the next thing to write: a due ping, then the oldest frame.
// With nothing left, or the socket closed, it clears c.writing (under the
// lock enqueue takes, so no frame is left behind) and returns false.
func (c *conn) next() (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
	case c.pinging:
		c.pinging = false
		return pingRequest{}, true
	case len(c.queue) > 0:
		frame := c.queue[0]
		c.queue[0] = nil
		if c.queue = c.queue[1:]; len(c.queue) == 0 {
			c.queue = nil // an idle socket holds no queue
		}
		return frame, true
	}
	c.writing = false
	return nil, false
}

// write writes one frame within the write deadline; false when the socket
// is closed (by a close request, or because the write failed).
func (c *conn) write(frame any) bool {
	switch f := frame.(type) {
	case closeRequest:
		c.closeWith(f.code, f.reason)
		return false
	case pingRequest:
		if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
			c.closeWith(websocket.CloseGoingAway, "ping failed")
			return false
		}
	default:
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
		if err := c.ws.WriteJSON(frame); err != nil {
			c.closeWith(websocket.CloseGoingAway, "write failed")
			return false
		}
	}
	return true
}

func (c *conn) readLoop(ctx context.Context) {
	c.ws.SetReadLimit(c.h.cfg.MaxFrame)
	deadline := func() { _ = c.ws.SetReadDeadline(time.Now().Add(2 * c.h.cfg.PingInterval)) }
	deadline()
	c.ws.SetPongHandler(func(string) error { deadline(); return nil })
	for {
		if err := awaitReadable(c.br, c.raw); err != nil {
			return // closed or timed out
		}
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
