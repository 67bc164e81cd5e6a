package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

func newProducer(t *testing.T, pub ports.Publisher, topics ports.TopicAdmin, checks ...httpapi.Check) http.Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	s := httpapi.NewServer(httpapi.ServerConfig{Addr: ":0"}, "kchat producer", checks, log)
	httpapi.NewProducer(&app.SubmitMessage{Publisher: pub}, &app.SubmitBatch{Publisher: pub}, &app.ListTopics{Topics: topics}, log).Register(s.API())
	return s.Handler()
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, h http.Handler, method, path, contentType, body string) response {
	t.Helper()
	return doWith(t, h, method, path, contentType, body, nil)
}

func doWith(t *testing.T, h http.Handler, method, path, contentType, body string, header http.Header) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	r := response{status: rec.Code, header: rec.Header(), raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestPostMessageEachType(t *testing.T) {
	b := memory.NewBroker("")
	h := newProducer(t, b, b)
	for _, typ := range domain.MessageTypes {
		body := fmt.Sprintf(`{"session_id":"s1","user_id":"u1","type":%q,"message":"hello %s","metadata":{"k":"v"}}`, typ, typ)
		r := do(t, h, http.MethodPost, "/messages", "application/json", body)
		if r.status != http.StatusAccepted {
			t.Fatalf("%s: status %d, body %s", typ, r.status, r.raw)
		}
		if r.body["status"] != "queued" || r.body["topic"] != string(typ) || r.body["message_id"] == "" {
			t.Fatalf("%s: body %s", typ, r.raw)
		}
		part, off := int(r.body["partition"].(float64)), int(r.body["offset"].(float64))
		stored := b.Messages(string(typ))[part][off]
		if stored.MessageID != r.body["message_id"] || stored.Text != "hello "+string(typ) || stored.Metadata["k"] != "v" {
			t.Fatalf("%s: stored %+v, answered %s", typ, stored, r.raw)
		}
	}
}

func TestPostMessageKeepsClientID(t *testing.T) {
	b := memory.NewBroker("")
	h := newProducer(t, b, b)
	r := do(t, h, http.MethodPost, "/messages", "application/json",
		`{"session_id":"s1","user_id":"u1","message_id":"client-id-1","type":"answer","message":"42","reply_to":"q1","citations":[{"n":1,"source":"docs/a.md"}]}`)
	if r.status != http.StatusAccepted || r.body["message_id"] != "client-id-1" {
		t.Fatalf("status %d body %s", r.status, r.raw)
	}
	got := b.Messages("answer")[int(r.body["partition"].(float64))][0]
	if got.ReplyTo != "q1" || len(got.Citations) != 1 || got.Citations[0].Source != "docs/a.md" {
		t.Fatalf("stored %+v", got)
	}
}

func TestPostMessageBadInput(t *testing.T) {
	big := strings.Repeat("a", domain.MaxMessageBytes+1)
	bigRunes := strings.Repeat("é", domain.MaxMessageBytes/2+1) // under 32768 characters, over 32 KiB
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  []int
		wantText    string
	}{
		{"unknown type", "application/json", `{"session_id":"s","user_id":"u","type":"shout","message":"hi"}`, []int{422}, "type"},
		{"message over 32 KiB", "application/json", `{"session_id":"s","user_id":"u","type":"query","message":"` + big + `"}`, []int{413, 422}, "message"},
		{"multibyte message over 32 KiB", "application/json", `{"session_id":"s","user_id":"u","type":"query","message":"` + bigRunes + `"}`, []int{413, 422}, "message"},
		{"malformed JSON", "application/json", `{"session_id":"s",`, []int{400, 422}, "unexpected EOF"},
		{"duplicate keys", "application/json", `{"session_id":"s","user_id":"u","type":"query","type":"answer","message":"hi"}`, []int{400, 422}, "duplicate"},
		{"duplicate nested keys", "application/json", `{"session_id":"s","user_id":"u","type":"answer","message":"hi","citations":[{"n":1,"n":2,"source":"a"}]}`, []int{400, 422}, "duplicate"},
		{"invalid UTF-8", "application/json", "{\"session_id\":\"s\",\"user_id\":\"u\",\"type\":\"query\",\"message\":\"h\xffi\"}", []int{400, 422}, "UTF-8"},
		{"control character in an id", "application/json", `{"session_id":"s\u0000x","user_id":"u","type":"query","message":"hi"}`, []int{422}, "session_id"},
		{"bidi override in an id", "application/json", `{"session_id":"s","user_id":"u\u202e","type":"query","message":"hi"}`, []int{422}, "user_id"},
		{"wrong content type", "text/plain", `session_id=s`, []int{415}, "content type"},
		{"missing message", "application/json", `{"session_id":"s","user_id":"u","type":"query"}`, []int{422}, "message"},
		{"missing session", "application/json", `{"user_id":"u","type":"query","message":"hi"}`, []int{422}, "session_id"},
		{"empty message", "application/json", `{"session_id":"s","user_id":"u","type":"query","message":""}`, []int{422}, "message"},
		{"long id", "application/json", `{"session_id":"` + strings.Repeat("s", 129) + `","user_id":"u","type":"query","message":"hi"}`, []int{422}, "session_id"},
		{"unknown field", "application/json", `{"session_id":"s","user_id":"u","type":"query","message":"hi","colour":"red"}`, []int{422}, "colour"},
		{"body over the limit", "application/json", `{"session_id":"s","user_id":"u","type":"query","message":"` + strings.Repeat("a", 300<<10) + `"}`, []int{413}, "too large"},
		{"not an object", "application/json", `[1,2]`, []int{422}, "object"},
		{"wrong type in a nested field", "application/json", `{"session_id":"s","user_id":"u","type":"answer","message":"hi","citations":[{"n":"one","source":"a"}]}`, []int{422}, "citations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := memory.NewBroker("")
			h := newProducer(t, b, b)
			r := do(t, h, http.MethodPost, "/messages", tt.contentType, tt.body)
			ok := false
			for _, s := range tt.wantStatus {
				ok = ok || r.status == s
			}
			if !ok {
				t.Fatalf("status %d, want one of %v; body %.300s", r.status, tt.wantStatus, r.raw)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			if !strings.Contains(strings.ToLower(r.raw), strings.ToLower(tt.wantText)) {
				t.Errorf("problem does not mention %q: %.300s", tt.wantText, r.raw)
			}
			if len(r.raw) > 4096 {
				t.Errorf("problem is %d bytes: rejected values must not be echoed whole", len(r.raw))
			}
			if strings.Contains(r.raw, "Go struct") || strings.Contains(r.raw, "Go value") {
				t.Errorf("problem names the server's Go types: %.300s", r.raw)
			}
			for _, typ := range domain.MessageTypes {
				for _, p := range b.Messages(string(typ)) {
					if len(p) > 0 {
						t.Fatalf("bad input was published to %s", typ)
					}
				}
			}
		})
	}
}

func TestSendMessageSeedRoute(t *testing.T) {
	b := memory.NewBroker("")
	h := newProducer(t, b, b)
	// The seed's body, with a field kchat does not know.
	r := do(t, h, http.MethodPost, "/send_message", "application/json",
		`{"session_id":"s1","user_id":"u1","message_id":"m-1","type":"query","message":"hello","timestamp":"2024-01-01"}`)
	if r.status/100 != 2 || r.body["status"] != "queued" || r.body["message_id"] != "m-1" || len(r.body) != 2 {
		t.Fatalf("status %d body %s", r.status, r.raw)
	}
	// type defaults to query; the id is generated.
	r = do(t, h, http.MethodPost, "/send_message", "application/json", `{"session_id":"s2","user_id":"u1","message":"hi"}`)
	if r.status/100 != 2 || r.body["message_id"] == "" {
		t.Fatalf("status %d body %s", r.status, r.raw)
	}
	n := 0
	for _, p := range b.Messages("query") {
		n += len(p)
	}
	if n != 2 {
		t.Fatalf("query topic holds %d messages, want 2", n)
	}
}

func TestPostBatch(t *testing.T) {
	b := memory.NewBroker("")
	h := newProducer(t, b, b)
	var items []string
	for i := range 10 {
		items = append(items, fmt.Sprintf(`{"session_id":"s%d","user_id":"u","type":"prompt","message":"m%d"}`, i%3, i))
	}
	r := do(t, h, http.MethodPost, "/messages/batch", "application/json", `{"messages":[`+strings.Join(items, ",")+`]}`)
	if r.status != http.StatusOK || r.body["count"] != float64(10) {
		t.Fatalf("status %d body %s", r.status, r.raw)
	}
	results := r.body["results"].([]any)
	for i, res := range results {
		item := res.(map[string]any)
		p, o := int(item["partition"].(float64)), int(item["offset"].(float64))
		if got := b.Messages("prompt")[p][o].Text; got != fmt.Sprintf("m%d", i) {
			t.Fatalf("result %d points at %q", i, got)
		}
	}

	over := strings.Repeat(`{"session_id":"s","user_id":"u","type":"query","message":"m"},`, 501)
	r = do(t, h, http.MethodPost, "/messages/batch", "application/json", `{"messages":[`+strings.TrimSuffix(over, ",")+`]}`)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("501 items: status %d, want 422", r.status)
	}
}

func TestBatchItemErrors(t *testing.T) {
	pub := &failingPublisher{err: fmt.Errorf("produce: %w", domain.ErrUnavailable)}
	h := newProducer(t, pub, memory.NewBroker(""))
	r := do(t, h, http.MethodPost, "/messages/batch", "application/json",
		`{"messages":[{"session_id":"s","user_id":"u","type":"query","message":"m"}]}`)
	if r.status != http.StatusOK || r.body["count"] != float64(0) {
		t.Fatalf("status %d body %s", r.status, r.raw)
	}
	item := r.body["results"].([]any)[0].(map[string]any)
	if item["status"] != "error" || item["error"].(map[string]any)["status"] != float64(503) {
		t.Fatalf("item %v", item)
	}
}

type failingPublisher struct{ err error }

func (f *failingPublisher) Publish(context.Context, domain.Message) (domain.Position, error) {
	return domain.Position{}, f.err
}

func (f *failingPublisher) PublishBatch(_ context.Context, msgs []domain.Message) []ports.PublishResult {
	out := make([]ports.PublishResult, len(msgs))
	for i := range out {
		out[i].Err = f.err
	}
	return out
}

func TestPublisherErrors(t *testing.T) {
	body := `{"session_id":"s","user_id":"u","type":"query","message":"hi"}`

	h := newProducer(t, &failingPublisher{err: fmt.Errorf("kafka: %w", domain.ErrUnavailable)}, memory.NewBroker(""))
	r := do(t, h, http.MethodPost, "/messages", "application/json", body)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("unavailable: status %d Retry-After %q body %s", r.status, r.header.Get("Retry-After"), r.raw)
	}

	h = newProducer(t, &failingPublisher{err: errors.New("secret broker detail")}, memory.NewBroker(""))
	r = do(t, h, http.MethodPost, "/messages", "application/json", body)
	if r.status != http.StatusInternalServerError || strings.Contains(r.raw, "secret") {
		t.Fatalf("unknown error: status %d body %s", r.status, r.raw)
	}
	if r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown error: Content-Type %q", r.header.Get("Content-Type"))
	}
}

func TestTopics(t *testing.T) {
	b := memory.NewBroker("")
	h := newProducer(t, b, b)
	if r := do(t, h, http.MethodGet, "/topics", "", ""); r.status != http.StatusNotFound {
		t.Fatalf("before topics exist: status %d", r.status)
	}
	_ = b.EnsureTopics(t.Context())
	r := do(t, h, http.MethodGet, "/topics", "", "")
	topics, _ := r.body["topics"].([]any)
	if r.status != http.StatusOK || len(topics) != 3 {
		t.Fatalf("status %d body %s", r.status, r.raw)
	}
	first := topics[0].(map[string]any)
	if first["name"] != "query" || first["partitions"] != float64(3) || first["retention_ms"] != float64(120000) || first["cleanup_policy"] != "delete" {
		t.Fatalf("first topic %v", first)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	down := errors.New("broker down")
	b := memory.NewBroker("")
	h := newProducer(t, b, b, httpapi.Check{Name: "kafka", Check: func(context.Context) error { return down }})
	if r := do(t, h, http.MethodGet, "/healthz", "", ""); r.status != http.StatusOK || r.body["status"] != "ok" {
		t.Fatalf("healthz: %d %s", r.status, r.raw)
	}
	r := do(t, h, http.MethodGet, "/readyz", "", "")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.raw, "kafka") || r.header.Get("Retry-After") == "" {
		t.Fatalf("readyz while down: %d %s", r.status, r.raw)
	}
	down = nil
	if r := do(t, h, http.MethodGet, "/readyz", "", ""); r.status != http.StatusOK || r.body["status"] != "ready" {
		t.Fatalf("readyz while up: %d %s", r.status, r.raw)
	}
}

func TestDocsMetricsAndSpec(t *testing.T) {
	b := memory.NewBroker("")
	h := newProducer(t, b, b)
	tests := []struct {
		path, wantType, wantText string
	}{
		{"/docs/", "text/html", "swagger-ui"},
		{"/docs/swagger-initializer.js", "text/javascript", "../openapi.yaml"},
		{"/docs/swagger-ui-bundle.js", "javascript", "SwaggerUIBundle"},
		{"/openapi.yaml", "yaml", "operationId: postMessage"},
	}
	for _, tt := range tests {
		r := do(t, h, http.MethodGet, tt.path, "", "")
		if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), tt.wantType) || !strings.Contains(r.raw, tt.wantText) {
			t.Errorf("GET %s: status %d, type %q, contains %q: %v", tt.path, r.status, r.header.Get("Content-Type"), tt.wantText, strings.Contains(r.raw, tt.wantText))
		}
	}
	// The docs page loads nothing from another host.
	page := do(t, h, http.MethodGet, "/docs/", "", "").raw
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if strings.Contains(m[1], "//") {
			t.Errorf("/docs/ loads %s from another host", m[1])
		}
	}
	// Metrics are on the admin listener, not the API (cmd/internal/runner).
	if r := do(t, h, http.MethodGet, "/metrics", "", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /metrics on the API: status %d, want 404", r.status)
	}
	if r := do(t, h, http.MethodGet, "/docs", "", ""); r.status != http.StatusMovedPermanently {
		t.Errorf("GET /docs: status %d, want a redirect to /docs/", r.status)
	}
	if r := do(t, h, http.MethodGet, "/docs/nope.js", "", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /docs/nope.js: status %d", r.status)
	}
}
