package wire

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/adapters/restclient"
	"github.com/kchat/kchat/adapters/ws"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/ports"
)

// The gateway's edge (docs/security.md, "Gateway trust boundaries"): who
// calls, from which address, and what one address may do whatever
// identities it takes.

// AddrLimits bound each client address of the gateway, whoever it says it
// is (0 turns a limit off).
type AddrLimits struct {
	// MaxConns caps the open WebSocket connections of one address.
	MaxConns int `env:"KCHAT_WS_MAX_CONNS_PER_ADDR" envDefault:"100"`
	// Rate and Burst bound the questions of one address per second, over
	// every entry point, on top of each user's own limit.
	Rate  float64 `env:"KCHAT_ADDR_RATE" envDefault:"20"`
	Burst int     `env:"KCHAT_ADDR_BURST" envDefault:"40"`
}

// Validate reports the first wrong setting, naming its variable.
func (c AddrLimits) Validate() error {
	switch {
	case c.MaxConns < 0:
		return fmt.Errorf("KCHAT_WS_MAX_CONNS_PER_ADDR must be 0 (no cap) or more, got %d", c.MaxConns)
	case c.Rate < 0:
		return fmt.Errorf("KCHAT_ADDR_RATE must be 0 (no limit) or more, got %g", c.Rate)
	case c.Rate > 0 && c.Burst < 1:
		return fmt.Errorf("KCHAT_ADDR_BURST must be at least 1 when KCHAT_ADDR_RATE is set, got %d", c.Burst)
	}
	return nil
}

// gatewayLimiter is the limit of every question the gateway takes: the
// user's, and its address's when KCHAT_ADDR_RATE asks for one.
func gatewayLimiter(users ratelimit.Config, addrs AddrLimits, refused *prometheus.CounterVec) ports.Limiter {
	perUser := ratelimit.Counted{Next: ratelimit.New(users), Refused: refused.WithLabelValues("user")}
	if addrs.Rate <= 0 {
		return perUser
	}
	perAddr := ratelimit.Counted{Next: ratelimit.New(ratelimit.Config{Rate: addrs.Rate, Burst: addrs.Burst}), Refused: refused.WithLabelValues("address")}
	return auth.ClientLimiter{Users: perUser, Clients: perAddr}
}

// wsOptions tell the WebSocket handler what the edge knows of a request:
// its client (for the cap per address and the limit of its questions) and
// the scheme the client used (for the same-origin check).
func wsOptions(a *auth.Authenticator, addrs AddrLimits) []ws.Option {
	return []ws.Option{
		ws.ClientLimit(addrs.MaxConns, func(r *http.Request) string { return a.ClientOf(r).Key() }),
		ws.ConnContext(a.ConnContext),
		ws.SchemeOf(func(r *http.Request) string { return a.ClientOf(r).Scheme() }),
	}
}

// seedRoutes are the seed's POST /send and GET /messages, behind the same
// authentication, limits and session ownership as every route; where
// callers are told apart (token, header), each sees only its own records.
func seedRoutes(rest restclient.Config, a *auth.Authenticator, l ports.Limiter, open *app.OpenSession, log *slog.Logger) restclient.Seed {
	mayAsk := func(ctx context.Context, user, session string) error {
		_, err := open.Execute(ctx, app.OpenSessionInput{UserID: user, SessionID: session})
		return err
	}
	return restclient.Seed{Config: rest, Authenticate: a.Authenticate, Limiter: l, MayAsk: mayAsk, OwnRecordsOnly: a.Mode() != auth.ModeNone, Log: log}
}

// warnIfOpen says loudly at startup that a gateway without authentication
// listens beyond loopback: anyone who reaches it is a visitor.
func warnIfOpen(a *auth.Authenticator, addr string, log *slog.Logger) {
	if a.Mode() != auth.ModeNone || loopbackOnly(addr) {
		return
	}
	log.Warn("KCHAT_AUTH=none and the gateway listens beyond loopback: anyone who reaches it may chat, as a visitor with a cookie identity; "+
		"set KCHAT_AUTH=token (or header, behind a proxy that authenticates) for anything but a trial", "addr", addr)
}

// loopbackOnly reports whether addr, a listener's host:port, accepts
// connections from this machine only.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback() // "::" and "0.0.0.0": every interface
}
