package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kchat/kchat/adapters/httpapi"
)

// The seed's GET / and GET /health (issue 15, point 6): the banner, and a
// health check that answers 200 with its state in the body, as the old
// services did, unhealthy while Kafka does not answer.
func TestSeedRoutes(t *testing.T) {
	var down error
	s := httpapi.NewServer(httpapi.ServerConfig{Addr: ":0"}, "kchat consumer",
		[]httpapi.Check{{Name: "kafka", Check: func(context.Context) error { return down }}}, slog.New(slog.DiscardHandler))
	s.RegisterSeedRoutes("Consumer", func() int64 { return 42 })
	get := func(path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, rec.Body)
		}
		return rec.Code, body
	}
	if status, body := get("/"); status != http.StatusOK || body["message"] != "Consumer service is running" || body["service"] != "consumer" {
		t.Errorf("GET /: %d %v", status, body)
	} else if links, _ := body["links"].(map[string]any); links["docs"] != "/docs" || links["healthz"] != "/healthz" {
		t.Errorf("GET /: links %v, want docs /docs and healthz /healthz", body["links"])
	}
	if status, body := get("/health"); status != http.StatusOK || body["status"] != "healthy" || body["kafka_connected"] != true || body["message_count"] != 42.0 {
		t.Errorf("GET /health with Kafka up: %d %v", status, body)
	}
	down = errors.New("no broker")
	if status, body := get("/health"); status != http.StatusOK || body["status"] != "unhealthy" || body["kafka_connected"] != false || body["error"] == nil {
		t.Errorf("GET /health with Kafka down: %d %v, want 200 unhealthy, kafka_connected false, an error", status, body)
	}
}
