package wire

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/ratelimit"
)

// A gateway without authentication that listens beyond loopback says so
// at startup (issue 13, item 17).
func TestWarnIfOpen(t *testing.T) {
	none, err := auth.New(auth.DefaultConfig(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := auth.New(auth.Config{Mode: auth.ModeToken, Tokens: []string{"t:u"}}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		a    *auth.Authenticator
		addr string
		want bool
	}{
		{none, "[::]:8002", true},
		{none, "0.0.0.0:8002", true},
		{none, "192.0.2.10:8002", true},
		{none, "127.0.0.1:8002", false},
		{none, "[::1]:8002", false},
		{token, "[::]:8002", false},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		warnIfOpen(tt.a, tt.addr, slog.New(slog.NewTextHandler(&logs, nil)))
		got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "KCHAT_AUTH=none")
		if got != tt.want {
			t.Errorf("%s mode on %s: warned %v, want %v (%q)", tt.a.Mode(), tt.addr, got, tt.want, logs.String())
		}
	}
}

func TestAddrLimitsValidate(t *testing.T) {
	tests := []struct {
		give AddrLimits
		want string
	}{
		{AddrLimits{MaxConns: 100, Rate: 20, Burst: 40}, ""},
		{AddrLimits{}, ""}, // every limit off
		{AddrLimits{MaxConns: -1}, "KCHAT_WS_MAX_CONNS_PER_ADDR"},
		{AddrLimits{Rate: -1}, "KCHAT_ADDR_RATE"},
		{AddrLimits{Rate: 5}, "KCHAT_ADDR_BURST"},
	}
	for _, tt := range tests {
		err := tt.give.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.give, err, tt.want)
		}
	}
}

// The gateway's limiter counts the address too, unless KCHAT_ADDR_RATE=0;
// each limit's refusals are counted under its name.
func TestGatewayLimiter(t *testing.T) {
	m, err := newGatewayMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	users := ratelimit.Config{Rate: 100, Burst: 100}
	if c, ok := gatewayLimiter(users, AddrLimits{}, m.rateLimited).(ratelimit.Counted); !ok {
		t.Fatal("KCHAT_ADDR_RATE=0 still limits by address")
	} else if _, ok := c.Next.(*ratelimit.Limiter); !ok {
		t.Fatalf("got %T under the count, want the user's limiter", c.Next)
	}
	l := gatewayLimiter(users, AddrLimits{Rate: 0.001, Burst: 2}, m.rateLimited)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.9:4000"
	a, err := auth.New(auth.DefaultConfig(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := auth.WithClient(context.Background(), a.ClientOf(r))
	for i, user := range []string{"v1", "v2", "v3"} {
		ok, err := l.Allow(ctx, user)
		if err != nil || ok != (i < 2) {
			t.Fatalf("question %d from one address: %v %v", i+1, ok, err)
		}
	}
	one := gatewayLimiter(ratelimit.Config{Rate: 0.001, Burst: 1}, AddrLimits{}, m.rateLimited)
	for range 2 {
		_, _ = one.Allow(context.Background(), "u")
	}
	for _, tt := range []struct {
		give string
		want float64
	}{{"address", 1}, {"user", 1}} {
		if got := testutil.ToFloat64(m.rateLimited.WithLabelValues(tt.give)); got != tt.want {
			t.Errorf("kchat_gateway_rate_limited_total{limit=%q} = %v, want %v", tt.give, got, tt.want)
		}
	}
}
