package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// /metrics is not on the API (issue 13, item 14): it reveals internals
// and is served on the admin listener; the public system routes stay.
func TestServerHasNoMetricsRoute(t *testing.T) {
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}, "t", nil, slog.New(slog.DiscardHandler))
	for path, want := range map[string]int{
		"/metrics": http.StatusNotFound, "/debug/pprof/": http.StatusNotFound,
		"/healthz": http.StatusOK, "/readyz": http.StatusOK, "/openapi.yaml": http.StatusOK, "/docs/": http.StatusOK,
	} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}

// The middlewares given wrap every route, the system routes included.
func TestServerMiddlewares(t *testing.T) {
	var seen []string
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = append(seen, r.URL.Path)
			next.ServeHTTP(w, r)
		})
	}
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}, "t", nil, slog.New(slog.DiscardHandler), mw)
	s.Mount("/ws", http.NotFoundHandler())
	for _, p := range []string{"/healthz", "/ws", "/nowhere"} {
		s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	if len(seen) != 3 {
		t.Fatalf("middleware saw %v, want every request", seen)
	}
}

// Every server drops idle keep-alive connections and slow headers, and
// bounds header size (issue 13, item 17).
func TestServerTimeouts(t *testing.T) {
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}, "t", nil, slog.New(slog.DiscardHandler))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if s.srv.IdleTimeout <= 0 || s.srv.IdleTimeout > 5*time.Minute || s.srv.ReadHeaderTimeout <= 0 || s.srv.ReadHeaderTimeout > 30*time.Second {
		t.Fatalf("idle timeout %s, read header timeout %s: want both set and short", s.srv.IdleTimeout, s.srv.ReadHeaderTimeout)
	}
	if s.srv.MaxHeaderBytes <= 0 || s.srv.MaxHeaderBytes > 1<<20 {
		t.Fatalf("MaxHeaderBytes %d", s.srv.MaxHeaderBytes)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
}
