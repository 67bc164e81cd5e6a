package ws

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/kchat/kchat/adapters/tracing"
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

	// What the gateway's edge knows of a request beyond its user (see
	// the options).
	clientOf     func(*http.Request) string
	maxPerClient int
	connContext  func(*http.Request) context.Context
	schemeOf     func(*http.Request) string
	metrics      *Metrics
	// tracing makes the spans of a question's frames, hops times the
	// answers written (WithTracing); off and untimed by default.
	tracing *tracing.Provider
	tracer  trace.Tracer
	hops    *tracing.Hops

	mu        sync.Mutex
	conns     map[*conn]struct{} // every open socket, for shutdown
	perUser   map[string]int
	perClient map[string]int
	closed    bool
}

// Option sets what the handler learns of a request from the gateway's
// edge (adapters/auth): the client behind it, and how it came.
type Option func(*Handler)

// ClientLimit caps the open sockets of each client address at limit (429
// beyond), whatever users they are: clientOf returns a request's client
// address ("" when unknown: not counted). The cap per user is
// cfg.MaxConnsPerUser.
func ClientLimit(limit int, clientOf func(*http.Request) string) Option {
	return func(h *Handler) { h.maxPerClient, h.clientOf = limit, clientOf }
}

// ConnContext makes the context of a socket's questions from its upgrade
// request (the limits per address find the client there). fn must keep
// nothing else of the request: the socket outlives it. The default is
// context.Background().
func ConnContext(fn func(*http.Request) context.Context) Option {
	return func(h *Handler) { h.connContext = fn }
}

// SchemeOf says which scheme the client used to reach the gateway, http or
// https, for the same-origin check (behind a proxy that ends TLS, the
// proxy knows). The default is https with TLS, else http.
func SchemeOf(fn func(*http.Request) string) Option {
	return func(h *Handler) { h.schemeOf = fn }
}

// WithTracing has the handler start a trace per question received (its
// root: a socket's questions are traces of their own, linked to the
// upgrade request's span) and a span per answer written, a child of the
// gateway's delivery span; and time each answer written (the
// answer_to_socket hop, end to end, the first delta) on hops.
func WithTracing(p *tracing.Provider, hops *tracing.Hops) Option {
	return func(h *Handler) { h.tracing, h.tracer, h.hops = p, p.Tracer("adapters/ws"), hops }
}

// New returns the handler. userOf authenticates the upgrade request (an
// error refuses it with 401).
func New(cfg Config, open *app.OpenSession, ask *app.Ask, userOf func(*http.Request) (string, error), log *slog.Logger, opts ...Option) *Handler {
	h := &Handler{
		cfg: cfg, open: open, ask: ask, userOf: userOf, log: log,
		conns: map[*conn]struct{}{}, perUser: map[string]int{}, perClient: map[string]int{},
		clientOf:    func(*http.Request) string { return "" },
		metrics:     NewMetrics(nil),
		tracer:      tracing.Disabled().Tracer("adapters/ws"),
		connContext: func(*http.Request) context.Context { return context.Background() },
		schemeOf: func(r *http.Request) string {
			if r.TLS != nil {
				return "https"
			}
			return "http"
		},
	}
	for _, o := range opts {
		o(h)
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

// checkOrigin admits clients without an Origin (not browsers, which
// always send one on a WebSocket handshake) and browsers on the allowed
// origins: the configured ones or, when none are, the gateway's own (the
// scheme the client used, plus the Host it asked for). Scheme, host and
// port must match exactly; an Origin with anything else (user info, a
// path, "null") is refused.
func (h *Handler) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	got, ok := normalOrigin(origin)
	if !ok {
		return false
	}
	if len(h.cfg.AllowedOrigins) == 0 {
		own, ok := normalOrigin(h.schemeOf(r) + "://" + r.Host)
		return ok && got == own
	}
	for _, o := range h.cfg.AllowedOrigins {
		if want, ok := normalOrigin(strings.TrimSuffix(o, "/")); ok && got == want {
			return true
		}
	}
	return false
}

// normalOrigin returns origin as scheme://host:port in lower case, with
// the scheme's default port written out, or false when origin is not a
// bare http(s) origin.
func normalOrigin(origin string) (string, bool) {
	u, err := url.Parse(origin)
	if err != nil || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || (u.Path != "" && u.Path != "/") {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch {
	case scheme != "http" && scheme != "https", u.Hostname() == "":
		return "", false
	case port == "" && scheme == "http":
		port = "80"
	case port == "":
		port = "443"
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), true
}

// ServeHTTP authenticates, checks the session, upgrades, greets the client
// and returns: the connection runs in a goroutine of its own, so an idle
// socket does not keep net/http's serving goroutine, connection state and
// buffers alive.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, err := h.userOf(r)
	if err != nil {
		// Which check failed is for the log, not for whoever probes.
		h.log.Info("websocket upgrade refused: no valid credential", "err", err)
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "missing or invalid credentials", http.StatusUnauthorized)
		return
	}
	if !h.checkOrigin(r) {
		http.Error(w, "forbidden origin", http.StatusForbidden)
		return
	}
	query := r.URL.Query()
	// Copies: the connection outlives the request, whose strings it must
	// not keep alive.
	sess, err := h.open.Execute(r.Context(), app.OpenSessionInput{UserID: strings.Clone(user), SessionID: strings.Clone(query.Get("session_id")), Pending: pendingOf(query.Get("pending"))})
	if err != nil {
		refuse(w, err)
		return
	}
	client := strings.Clone(h.clientOf(r))
	if why := h.admit(sess.UserID, client); why != "" {
		http.Error(w, why, http.StatusTooManyRequests)
		return
	}
	hj := &readerHijacker{ResponseWriter: w}
	// A new visitor's identity cookie (set by authentication, KCHAT_AUTH=
	// none) goes with the 101: gorilla writes only the headers given here.
	var header http.Header
	if cookies := w.Header().Values("Set-Cookie"); len(cookies) > 0 {
		header = http.Header{"Set-Cookie": cookies}
	}
	ws, err := h.up.Upgrade(hj, r, header)
	if err != nil {
		h.leave(sess.UserID)
		h.leaveClient(client)
		return // the upgrader answered already
	}
	c := &conn{h: h, ws: ws, br: hj.br, raw: rawConn(ws.NetConn()), user: sess.UserID, session: sess.ID, done: make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(h.cfg.ConnRate), h.cfg.ConnBurst)}
	if !h.register(c) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
		h.leave(sess.UserID)
		h.leaveClient(client)
		return
	}
	c.startPings()
	c.greet(r.Context(), sess, query.Get("after"))
	// The request's context ends when ServeHTTP returns, and its values
	// (chi's pooled route context among them) are reused by other
	// requests: the connection's queries get a context of their own.
	ctx := h.connContext(r)
	go func() {
		c.serve(ctx)
		h.leaveClient(client)
	}()
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

// admit counts a new connection of user from client, unless either has
// too many; the answer then says which.
func (h *Handler) admit(user, client string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.perUser[user] >= h.cfg.MaxConnsPerUser:
		return "too many connections for this user"
	case client != "" && h.maxPerClient > 0 && h.perClient[client] >= h.maxPerClient:
		return "too many connections from this address"
	}
	h.perUser[user]++
	if client != "" {
		h.perClient[client]++
	}
	return ""
}

// leave forgets a closed connection of user.
func (h *Handler) leave(user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[user]--; h.perUser[user] <= 0 {
		delete(h.perUser, user)
	}
}

// leaveClient forgets a closed connection from client.
func (h *Handler) leaveClient(client string) {
	if client == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perClient[client]--; h.perClient[client] <= 0 {
		delete(h.perClient, client)
	}
}

// maxPending bounds the question ids a resume may say it waits for.
const maxPending = 16

// pendingOf reads the pending parameter of a resume: the ids of the
// questions the client had acknowledged and still waits for, comma
// separated (docs/design.md, "The WebSocket protocol"). Ids too long or
// past maxPending are ignored: they only make the gateway read more.
func pendingOf(v string) []string {
	var ids []string
	for id := range strings.SplitSeq(v, ",") {
		if id = strings.TrimSpace(id); id != "" && len(id) <= 128 && len(ids) < maxPending {
			ids = append(ids, strings.Clone(id))
		}
	}
	return ids
}
