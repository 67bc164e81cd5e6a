package ws

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// Handler serves GET /ws: it authenticates the upgrade, checks the Origin
// and the session, upgrades, and runs the chat protocol on the socket. Run
// must be running for a clean shutdown (close 1001 to every socket);
// answers reach the sockets through app.Answers, whose Run the binary
// runs.
type Handler struct {
	cfg    Config
	open   *app.OpenSession
	ask    *app.Ask
	userOf func(*http.Request) (string, error)
	log    *slog.Logger
	up     websocket.Upgrader

	mu      sync.Mutex
	conns   map[*conn]struct{} // every open socket, for shutdown
	perUser map[string]int
	closed  bool
}

// New returns the handler. userOf authenticates the upgrade request (an
// error refuses it with 401).
func New(cfg Config, open *app.OpenSession, ask *app.Ask, userOf func(*http.Request) (string, error), log *slog.Logger) *Handler {
	h := &Handler{
		cfg: cfg, open: open, ask: ask, userOf: userOf, log: log,
		conns: map[*conn]struct{}{}, perUser: map[string]int{},
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
	query := r.URL.Query()
	// Copies: the connection outlives the request, whose strings it must
	// not keep alive.
	sess, err := h.open.Execute(r.Context(), app.OpenSessionInput{UserID: strings.Clone(user), SessionID: strings.Clone(query.Get("session_id"))})
	if err != nil {
		refuse(w, err)
		return
	}
	if !h.admit(sess.UserID) {
		http.Error(w, "too many connections for this user", http.StatusTooManyRequests)
		return
	}
	hj := &readerHijacker{ResponseWriter: w}
	ws, err := h.up.Upgrade(hj, r, nil)
	if err != nil {
		h.leave(sess.UserID)
		return // the upgrader answered already
	}
	c := &conn{h: h, ws: ws, br: hj.br, raw: rawConn(ws.NetConn()), user: sess.UserID, session: sess.ID, done: make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(h.cfg.ConnRate), h.cfg.ConnBurst)}
	if !h.register(c) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
		h.leave(sess.UserID)
		return
	}
	c.startPings()
	c.greet(r.Context(), sess, query.Get("after"))
	// The request's context ends when ServeHTTP returns, and its values
	// (chi's pooled route context among them) are reused by other
	// requests: the connection's queries get a context of their own.
	go c.serve(context.Background())
}

// refuse answers an upgrade whose session cannot be opened.
func refuse(w http.ResponseWriter, err error) {
	var verr *domain.ValidationError
	switch {
	case errors.As(err, &verr):
		http.Error(w, "bad request: "+verr.Error(), http.StatusBadRequest)
	case errors.Is(err, domain.ErrForbidden):
		http.Error(w, "forbidden: the session belongs to another user", http.StatusForbidden)
	default:
		w.Header().Set("Retry-After", "2")
		http.Error(w, "sessions unavailable; retry later", http.StatusServiceUnavailable)
	}
}

// admit counts a new connection of user, unless the user has too many.
func (h *Handler) admit(user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[user] >= h.cfg.MaxConnsPerUser {
		return false
	}
	h.perUser[user]++
	return true
}

// leave forgets a closed connection of user.
func (h *Handler) leave(user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[user]--; h.perUser[user] <= 0 {
		delete(h.perUser, user)
	}
}
