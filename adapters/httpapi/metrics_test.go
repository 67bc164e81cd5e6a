package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestHTTPMetricsCountByRoutePatternAndCode(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewHTTPMetrics(reg)
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}, "t", nil, slog.New(slog.DiscardHandler), m.Middleware("svc"))
	type itemOut struct{ Body struct{ ID string } }
	huma.Register(s.API(), huma.Operation{OperationID: "get-item", Method: http.MethodGet, Path: "/items/{id}"},
		func(_ context.Context, in *struct {
			ID string `path:"id"`
		}) (*itemOut, error) {
			if in.ID == "gone" {
				return nil, huma.Error404NotFound("no such item")
			}
			out := &itemOut{}
			out.Body.ID = in.ID
			return out, nil
		})

	for _, path := range []string{"/items/1", "/items/2", "/items/gone", "/no/such/path", "/healthz"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	}

	tests := []struct {
		give []string // service, method, route, code
		want float64
	}{
		{give: []string{"svc", "GET", "/items/{id}", "200"}, want: 2},
		{give: []string{"svc", "GET", "/items/{id}", "404"}, want: 1},
		{give: []string{"svc", "GET", unmatched, "404"}, want: 1},
		{give: []string{"svc", "GET", "/healthz", "200"}, want: 1},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(tt.give...)); got != tt.want {
			t.Errorf("kchat_http_requests_total%v = %v, want %v", tt.give, got, tt.want)
		}
	}
	// No series names a raw path.
	if n := testutil.CollectAndCount(m.requests); n != len(tests) {
		t.Errorf("%d request series, want %d", n, len(tests))
	}
	if got := histogramSamples(t, reg, "kchat_http_request_duration_seconds", "route", "/items/{id}"); got != 3 {
		t.Errorf("kchat_http_request_duration_seconds{route=/items/{id}}: %d samples, want 3", got)
	}
}

// histogramSamples is the sample count of the histogram name's series
// whose label is value, read from the registry as a scrape would.
func histogramSamples(t *testing.T, reg *prometheus.Registry, name, label, value string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return mt.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestHTTPMetricsSharedAcrossServers(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewHTTPMetrics(reg), NewHTTPMetrics(reg)
	if a.requests != b.requests {
		t.Fatal("a second NewHTTPMetrics on the same registry made other counters")
	}
}
