package auth

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client is the other end of a request as the gateway sees it: behind
// trusted proxies, the client they forwarded for, not the proxy.
type Client struct {
	// Addr is the client's IP address; the zero Addr when unknown (a
	// request that did not come over TCP).
	Addr netip.Addr
	// Secure says the client reached the gateway over https: the gateway
	// itself serves TLS, or a trusted proxy says so in X-Forwarded-Proto.
	Secure bool
}

// Key is what per-address limits count by: an IPv4 address, or the /64
// an IPv6 address is in (one host usually holds a whole /64, so limiting
// single IPv6 addresses would limit nothing). Empty when Addr is unknown.
func (c Client) Key() string {
	switch {
	case !c.Addr.IsValid():
		return ""
	case c.Addr.Is4():
		return c.Addr.String()
	default:
		return netip.PrefixFrom(c.Addr, 64).Masked().String()
	}
}

// Scheme is the scheme of the gateway's own origin for this client.
func (c Client) Scheme() string {
	if c.Secure {
		return "https"
	}
	return "http"
}

type clientKey struct{}

// WithClient returns a copy of ctx that carries c, where ClientLimiter
// finds it. Edge puts every request's client in its context; a WebSocket
// puts it in the context of its queries.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the client ctx carries, and false if it carries none.
func ClientFrom(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(clientKey{}).(Client)
	return c, ok
}

// ClientOf returns the client of r: the one Edge found, or, for a request
// that did not pass through Edge, the same resolution done now.
func (a *Authenticator) ClientOf(r *http.Request) Client {
	if c, ok := ClientFrom(r.Context()); ok {
		return c
	}
	return a.resolve(r)
}

// ConnContext returns a context for what a long-lived connection does
// after its request ended (a WebSocket's questions): it carries the
// request's client, and nothing else of the request.
func (a *Authenticator) ConnContext(r *http.Request) context.Context {
	return WithClient(context.Background(), a.ClientOf(r))
}

// resolve finds the client of r. The TCP peer is the client unless it is
// a trusted proxy; then X-Forwarded-For is read from the right (the
// entry the nearest proxy added) past every trusted proxy, and the first
// address that is not one is the client. Entries left of it were written
// by the client itself and are never believed.
func (a *Authenticator) resolve(r *http.Request) Client {
	c := Client{Addr: peer(r), Secure: r.TLS != nil}
	if !a.trusts(c.Addr) {
		return c
	}
	if fwd := r.Header.Values("X-Forwarded-For"); len(fwd) > 0 {
		hops := strings.Split(strings.Join(fwd, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, ok := parseHop(hops[i])
			if !ok {
				break // garbage: keep the last hop that made sense
			}
			c.Addr = hop
			if !a.trusts(hop) {
				break
			}
		}
	}
	if !c.Secure {
		proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
		c.Secure = strings.EqualFold(strings.TrimSpace(proto), "https")
	}
	return c
}

// trusts reports whether addr is one of the trusted proxies.
func (a *Authenticator) trusts(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	for _, p := range a.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// peer is the address of r's TCP peer, IPv4-mapped addresses unmapped.
func peer(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// parseHop reads one X-Forwarded-For entry: an address, with a port as
// some proxies write it.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// limiter is the role ClientLimiter composes: ports.Limiter, named here
// so that this inbound adapter does not import the driven ports.
type limiter interface {
	Allow(ctx context.Context, key string) (bool, error)
}

// ClientLimiter is a ports.Limiter that bounds the user's questions and,
// when the context carries a client (WithClient), the questions of its
// address too: identities are free in KCHAT_AUTH=none (drop the cookie,
// get a new one), addresses are not. The user's limit is asked first and
// the address's only when it allows, so a user over their own limit does
// not use up what others at the same address may ask; a question the
// address refuses has still counted against the user.
type ClientLimiter struct {
	Users   limiter
	Clients limiter
}

// Allow allows one question of user when both limits do.
func (l ClientLimiter) Allow(ctx context.Context, user string) (bool, error) {
	ok, err := l.Users.Allow(ctx, user)
	if err != nil || !ok {
		return ok, err
	}
	c, found := ClientFrom(ctx)
	if !found || c.Key() == "" {
		return true, nil
	}
	return l.Clients.Allow(ctx, c.Key())
}
