package auth_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/ports"
)

var _ ports.Limiter = auth.ClientLimiter{}

// The client address comes from X-Forwarded-For only when the peer is a
// trusted proxy, and then from the right: entries the client wrote itself
// (the left ones) are never believed.
func TestClientOf(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeToken, Tokens: []string{"t:u"}, TrustedProxies: []string{"10.0.0.0/8", "2001:db8:ffff::/48"}})
	tests := []struct {
		name       string
		peer       string
		xff        []string
		proto      string
		tls        bool
		wantKey    string
		wantSecure bool
	}{
		{"no proxy", "203.0.113.9:5000", nil, "", false, "203.0.113.9", false},
		{"untrusted peer's X-Forwarded-For is ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "https", false, "203.0.113.9", false},
		{"trusted proxy", "10.0.0.2:5000", []string{"198.51.100.1"}, "https", false, "198.51.100.1", true},
		{"client's own entries are ignored", "10.0.0.2:5000", []string{"1.1.1.1, 198.51.100.1"}, "", false, "198.51.100.1", false},
		{"two trusted proxies", "10.0.0.2:5000", []string{"1.1.1.1, 198.51.100.1, 10.9.9.9"}, "", false, "198.51.100.1", false},
		{"several headers", "10.0.0.2:5000", []string{"1.1.1.1", "198.51.100.1, 10.9.9.9"}, "", false, "198.51.100.1", false},
		{"only proxies", "10.0.0.2:5000", []string{"10.0.0.3, 10.0.0.4"}, "", false, "10.0.0.3", false},
		{"garbage at the right keeps the proxy", "10.0.0.2:5000", []string{"198.51.100.1, nonsense"}, "", false, "10.0.0.2", false},
		{"garbage at the left stops there", "10.0.0.2:5000", []string{"nonsense, 10.0.0.7"}, "", false, "10.0.0.7", false},
		{"entry with a port", "10.0.0.2:5000", []string{"198.51.100.1:4711"}, "", false, "198.51.100.1", false},
		{"IPv6 client counts by its /64", "[2001:db8:ffff::1]:5000", []string{"2001:db8:1:2:aaaa::1"}, "", false, "2001:db8:1:2::/64", false},
		{"IPv4-mapped peer", "[::ffff:203.0.113.9]:5000", nil, "", false, "203.0.113.9", false},
		{"TLS", "203.0.113.9:5000", nil, "", true, "203.0.113.9", true},
		{"proto list", "10.0.0.2:5000", nil, "HTTPS, http", false, "10.0.0.2", true},
		{"not a TCP peer", "pipe", nil, "", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tt.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			c := a.ClientOf(r)
			if c.Key() != tt.wantKey || c.Secure != tt.wantSecure {
				t.Fatalf("client key %q secure %v, want %q %v", c.Key(), c.Secure, tt.wantKey, tt.wantSecure)
			}
			// Edge finds the same, and hands it to the handlers' context.
			var seen auth.Client
			a.Edge(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				seen, _ = auth.ClientFrom(r.Context())
			})).ServeHTTP(httptest.NewRecorder(), r)
			if seen != c {
				t.Fatalf("Edge put %+v in the context, ClientOf says %+v", seen, c)
			}
			if got, _ := auth.ClientFrom(a.ConnContext(r)); got != c {
				t.Fatalf("ConnContext carries %+v, want %+v", got, c)
			}
		})
	}
}

// counting is a limiter that allows each key max events.
type counting struct {
	mu   sync.Mutex
	max  int
	seen map[string]int
}

func (c *counting) Allow(_ context.Context, key string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]int{}
	}
	if c.seen[key] >= c.max {
		return false, nil
	}
	c.seen[key]++
	return true, nil
}

// One address asking as many users is limited as one; a user over its own
// limit uses up nothing of its address.
func TestClientLimiter(t *testing.T) {
	users, clients := &counting{max: 2}, &counting{max: 3}
	l := auth.ClientLimiter{Users: users, Clients: clients}
	from := func(addr string) context.Context {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr + ":1000"
		return auth.WithClient(context.Background(), newAuthenticator(t, auth.DefaultConfig()).ClientOf(r))
	}
	allow := func(ctx context.Context, user string) bool {
		t.Helper()
		ok, err := l.Allow(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	a := from("127.0.0.2")
	for i, user := range []string{"v1", "v2", "v3"} {
		if !allow(a, user) {
			t.Fatalf("question %d from the address refused", i+1)
		}
	}
	if allow(a, "v4") {
		t.Fatal("a fourth identity from the same address was allowed past its limit of 3")
	}
	b := from("127.0.0.3")
	var got []bool
	for range 3 {
		got = append(got, allow(b, "v5"))
	}
	if !got[0] || !got[1] || got[2] {
		t.Fatalf("user v5 from another address: %v, want 2 allowed, then its own limit", got)
	}
	if !allow(b, "v6") {
		t.Fatal("v5's refusal used up its address's limit")
	}
	for i := range 2 {
		if !allow(context.Background(), "v7") {
			t.Fatalf("without a client in the context, question %d of v7 refused: only the user's limit applies", i+1)
		}
	}
}
