package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestMissingJaegerFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "true")
	for _, unset := range []string{JaegerVar, OTLPVar} {
		t.Setenv(JaegerVar, "http://127.0.0.1:16686")
		t.Setenv(OTLPVar, "http://127.0.0.1:4318")
		t.Setenv(unset, "")
		r := &recorder{}
		Jaeger(r)
		if r.skip != "" || !strings.Contains(r.fatal, unset) || !strings.Contains(r.fatal, "make services-up") {
			t.Errorf("%s unset under CI: fatal %q, skip %q; want a failure naming the variable", unset, r.fatal, r.skip)
		}
	}
}

func TestMissingJaegerSkipsLocally(t *testing.T) {
	t.Setenv("CI", "")
	for _, unset := range []string{JaegerVar, OTLPVar} {
		t.Setenv(JaegerVar, "http://127.0.0.1:16686")
		t.Setenv(OTLPVar, "http://127.0.0.1:4318")
		t.Setenv(unset, "")
		r := &recorder{}
		Jaeger(r)
		if r.fatal != "" || !strings.Contains(r.skip, unset) {
			t.Errorf("%s unset without CI: fatal %q, skip %q; want a skip naming the variable", unset, r.fatal, r.skip)
		}
	}
}

// The Jaeger of make services-up takes a span over OTLP/HTTP (JSON, as the
// OpenTelemetry protocol allows, so this test needs no SDK) and its query
// API finds the trace under the span's service.
func TestIntegrationJaegerTakesASpan(t *testing.T) {
	query, otlp := Jaeger(t)
	service := "kchat-testenv-" + randomHex(4)
	traceID, spanID := randomHex(16), randomHex(8)
	now := time.Now()
	body, err := json.Marshal(map[string]any{"resourceSpans": []any{map[string]any{
		"resource": map[string]any{"attributes": []any{
			map[string]any{"key": "service.name", "value": map[string]any{"stringValue": service}},
		}},
		"scopeSpans": []any{map[string]any{
			"scope": map[string]any{"name": "kchat/internal/testenv"},
			"spans": []any{map[string]any{
				"traceId": traceID, "spanId": spanID, "name": "ping", "kind": 1,
				"startTimeUnixNano": fmt.Sprint(now.Add(-time.Millisecond).UnixNano()),
				"endTimeUnixNano":   fmt.Sprint(now.UnixNano()),
			}},
		}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	status, reply := do(t, http.MethodPost, strings.TrimSuffix(otlp, "/")+"/v1/traces", body)
	if status != http.StatusOK {
		t.Fatalf("POST %s/v1/traces: %d %s", otlp, status, reply)
	}

	// Jaeger batches what it receives (200 ms by default): poll.
	find := strings.TrimSuffix(query, "/") + "/api/traces?service=" + url.QueryEscape(service)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		status, reply = do(t, http.MethodGet, find, nil)
		var got struct {
			Data []struct {
				TraceID string `json:"traceID"`
				Spans   []struct {
					SpanID        string `json:"spanID"`
					OperationName string `json:"operationName"`
				} `json:"spans"`
			} `json:"data"`
		}
		if status == http.StatusOK && json.Unmarshal(reply, &got) == nil && len(got.Data) == 1 &&
			got.Data[0].TraceID == traceID && len(got.Data[0].Spans) == 1 &&
			got.Data[0].Spans[0].SpanID == spanID && got.Data[0].Spans[0].OperationName == "ping" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s; want the trace %s with its span %s", find, status, reply, traceID, spanID)
		}
	}
}

func do(t *testing.T, method, u string, body []byte) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
