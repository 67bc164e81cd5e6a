package runner

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
)

func testRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "kchat_test_total", Help: "t"})
	c.Inc()
	reg.MustRegister(c)
	return reg
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The admin listener serves the process's metrics and Go's profiles
// (issue 13, item 14).
func TestAdminServesMetricsAndProfiles(t *testing.T) {
	s := NewAdminServer(AdminConfig{Addr: "127.0.0.1:0"}, "gateway", testRegistry(), slog.New(slog.DiscardHandler))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	base := "http://" + s.Addr()
	if status, body := httpGet(t, base+"/metrics"); status != http.StatusOK || !strings.Contains(body, "kchat_test_total 1") {
		t.Fatalf("/metrics: %d %.200s", status, body)
	}
	if status, body := httpGet(t, base+"/debug/pprof/"); status != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/: %d %.200s", status, body)
	}
	if status, _ := httpGet(t, base+"/debug/pprof/goroutine?debug=1"); status != http.StatusOK {
		t.Fatalf("goroutine profile: %d", status)
	}
}

// Each binary has a loopback default of its own, so the four run side by
// side on one machine; the all-in-one has one for all its services.
func TestAdminDefaults(t *testing.T) {
	seen := map[string]string{}
	for _, svc := range []string{"producer", "consumer", "gateway", "answerer"} {
		addr := AdminAddrs[svc]
		host, _, err := net.SplitHostPort(addr)
		if err != nil || !isLoopback(host) {
			t.Errorf("%s's default admin address %q is not on loopback", svc, addr)
		}
		if other, dup := seen[addr]; dup {
			t.Errorf("%s and %s share the default admin address %s", svc, other, addr)
		}
		seen[addr] = svc
	}
	if host, _, _ := net.SplitHostPort(AdminAddrs["kchat"]); !isLoopback(host) {
		t.Errorf("kchat's admin address %q is not on loopback", AdminAddrs["kchat"])
	}
	if s := NewAdminServer(AdminConfig{}, "consumer", nil, nil); s.addr != AdminAddrs["consumer"] {
		t.Errorf("unset KCHAT_ADMIN_ADDR listens on %q, want the consumer's default", s.addr)
	}
}

// An address the operator chose must be listened on; the default one,
// taken by another replica, is an ERROR, not a failed start.
func TestAdminAddressTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	explicit := NewAdminServer(AdminConfig{Addr: ln.Addr().String()}, "gateway", testRegistry(), slog.New(slog.DiscardHandler))
	if err := explicit.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "KCHAT_ADMIN_ADDR") {
		t.Fatalf("a taken KCHAT_ADMIN_ADDR started: %v", err)
	}
	var logs bytes.Buffer
	old := AdminAddrs["gateway"]
	AdminAddrs["gateway"] = ln.Addr().String()
	defer func() { AdminAddrs["gateway"] = old }()
	byDefault := NewAdminServer(AdminConfig{}, "gateway", testRegistry(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err := byDefault.Start(context.Background()); err != nil {
		t.Fatalf("a taken default admin address failed the start: %v", err)
	}
	if byDefault.Addr() != "" || !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "KCHAT_ADMIN_ADDR") {
		t.Fatalf("addr %q, log %q: want no listener and an ERROR naming KCHAT_ADMIN_ADDR", byDefault.Addr(), logs.String())
	}
	if err := byDefault.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAdminConfigValidate(t *testing.T) {
	for give, ok := range map[string]bool{"": true, "127.0.0.1:8100": true, ":9100": true, "8100": false, "localhost": false} {
		if err := (AdminConfig{Addr: give}).Validate(); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v", give, err)
		}
	}
}

// The fx option builds with what every process has (Base): the registry
// and the logger.
func TestAdminOption(t *testing.T) {
	err := fx.ValidateApp(fx.Supply(prometheus.NewRegistry(), slog.New(slog.DiscardHandler)), Admin(AdminConfig{Addr: "127.0.0.1:0"}, "producer"))
	if err != nil {
		t.Fatal(err)
	}
}

// A variable kchat no longer reads is not ignored in silence.
func TestWarnReplaced(t *testing.T) {
	var logs bytes.Buffer
	WarnReplaced([]string{"KCHAT_LOG_LEVEL=info", "KCHAT_PPROF_ADDR=127.0.0.1:6060"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "KCHAT_ADMIN_ADDR") {
		t.Fatalf("log %q: want a WARN pointing at KCHAT_ADMIN_ADDR", logs.String())
	}
	logs.Reset()
	WarnReplaced([]string{"KCHAT_LOG_LEVEL=info"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if logs.Len() != 0 {
		t.Fatalf("logged %q without KCHAT_PPROF_ADDR", logs.String())
	}
}
