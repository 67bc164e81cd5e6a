package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

func newConsumer(t *testing.T) (*memory.Broker, http.Handler) {
	t.Helper()
	b := memory.NewBroker("")
	q := memory.NewQueue(b, "g", []byte("consumer-test-receipt-key-32-byt"))
	c := profanity.New(profanity.DefaultConfig())
	log := slog.New(slog.DiscardHandler)
	s := httpapi.NewServer(httpapi.ServerConfig{Addr: ":0"}, "kchat consumer", nil, log)
	httpapi.NewConsumer(&app.FetchNext{Queue: q, Censor: c, Lease: 300 * time.Millisecond}, &app.Acknowledge{Queue: q}, &app.Browse{Queue: q, Censor: c}, log).Register(s.API())
	return b, s.Handler()
}

func put(t *testing.T, b *memory.Broker, typ domain.MessageType, text string) domain.Message {
	t.Helper()
	m := domain.Message{MessageID: domain.NewMessageID(), SessionID: "s1", UserID: "u1", Type: typ, Text: text, CreatedAt: time.Now().UTC()}
	if _, err := b.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

type messagesBody struct {
	Status   string `json:"status"`
	Count    int    `json:"count"`
	Messages []struct {
		Topic     string          `json:"topic"`
		Partition int32           `json:"partition"`
		Offset    int64           `json:"offset"`
		Key       string          `json:"key"`
		Value     map[string]any  `json:"value"`
		Timestamp time.Time       `json:"timestamp"`
		Censored  bool            `json:"censored"`
		Receipt   string          `json:"receipt"`
		Raw       json.RawMessage `json:"raw"`
	} `json:"messages"`
}

func getMessages(t *testing.T, h http.Handler, query string) (int, messagesBody, string) {
	t.Helper()
	r := do(t, h, http.MethodGet, "/messages?"+query, "", "")
	var body messagesBody
	_ = json.Unmarshal([]byte(r.raw), &body)
	return r.status, body, r.raw
}

func TestGetMessagesSeedShapeAndCensoring(t *testing.T) {
	b, h := newConsumer(t)
	stored := put(t, b, domain.TypeQuery, "What the fuck is kchat?")
	clean := put(t, b, domain.TypeQuery, "The assessment in Essex and Middlesex: Dickens, a cockpit, Scunthorpe, a classic.")
	status, body, raw := getMessages(t, h, "type=query&limit=5")
	if status != http.StatusOK || body.Status != "success" || body.Count != 2 {
		t.Fatalf("status %d body %s", status, raw)
	}
	first, second := body.Messages[0], body.Messages[1]
	if first.Topic != "query" || first.Key != "s1" || first.Value["message_id"] != stored.MessageID || first.Value["v"] != float64(1) {
		t.Fatalf("first message %+v", first)
	}
	if !first.Censored || strings.Contains(first.Value["message"].(string), "fuck") || !strings.Contains(first.Value["message"].(string), "What the ") {
		t.Errorf("profanity not censored: %v censored=%v", first.Value["message"], first.Censored)
	}
	if second.Censored || second.Value["message"] != clean.Text {
		t.Errorf("allow-listed words changed: %q censored=%v", second.Value["message"], second.Censored)
	}
	if b.Messages("query")[first.Partition][first.Offset].Text != stored.Text {
		t.Error("the stored record changed")
	}
	if first.Receipt != "" {
		t.Errorf("ack=auto leaked a receipt %q", first.Receipt)
	}
	// Auto-acknowledged: gone.
	if _, body, _ := getMessages(t, h, "type=query&limit=5"); body.Count != 0 {
		t.Fatalf("consumed messages served again: %d", body.Count)
	}
}

func TestGetMessagesManualAck(t *testing.T) {
	b, h := newConsumer(t)
	put(t, b, domain.TypeAnswer, "42")
	_, body, raw := getMessages(t, h, "type=answer&ack=manual")
	if body.Count != 1 || body.Messages[0].Receipt == "" {
		t.Fatalf("manual fetch: %s", raw)
	}
	receipt := body.Messages[0].Receipt
	if _, again, _ := getMessages(t, h, "type=answer"); again.Count != 0 {
		t.Fatal("a leased message was served to another caller")
	}
	time.Sleep(400 * time.Millisecond) // the test lease is 300 ms
	_, again, _ := getMessages(t, h, "type=answer&ack=manual")
	if again.Count != 1 || again.Messages[0].Receipt == receipt {
		t.Fatalf("after the lease expired: %+v", again)
	}
	r := do(t, h, http.MethodPost, "/messages/ack", "application/json", fmt.Sprintf(`{"receipts":[%q]}`, receipt))
	if r.status != http.StatusNotFound || r.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(r.raw, receipt) {
		t.Fatalf("ack of the expired receipt: %d %s", r.status, r.raw)
	}
	r = do(t, h, http.MethodPost, "/messages/ack", "application/json", fmt.Sprintf(`{"receipts":[%q]}`, again.Messages[0].Receipt))
	if r.status != http.StatusOK || r.body["count"] != float64(1) {
		t.Fatalf("ack: %d %s", r.status, r.raw)
	}
	time.Sleep(400 * time.Millisecond)
	if _, after, _ := getMessages(t, h, "type=answer"); after.Count != 0 {
		t.Fatal("an acknowledged message came back")
	}
	if r := do(t, h, http.MethodPost, "/messages/ack", "application/json", `{"receipts":["forged"]}`); r.status != http.StatusNotFound {
		t.Fatalf("unknown receipt: %d %s", r.status, r.raw)
	}
	if r := do(t, h, http.MethodPost, "/messages/ack", "application/json", `{"receipts":[]}`); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("no receipts: %d %s", r.status, r.raw)
	}
}

func TestGetMessagesBadParameters(t *testing.T) {
	_, h := newConsumer(t)
	tests := map[string]string{
		"type=shout":               "type",
		"":                         "type",
		"type=query&limit=0":       "limit",
		"type=query&limit=501":     "limit",
		"type=query&wait=31s":      "wait",
		"type=query&wait=-1s":      "wait",
		"type=query&wait=soon":     "wait",
		"type=query&ack=sometimes": "ack",
		"topic=nope&latest=true":   "topic",
	}
	for query, field := range tests {
		status, _, raw := getMessages(t, h, query)
		if status != http.StatusUnprocessableEntity || !strings.Contains(raw, field) || !strings.Contains(raw, `"status":422`) {
			t.Errorf("GET /messages?%s: %d %s, want 422 naming %s", query, status, raw, field)
		}
	}
}

func TestGetMessagesWait(t *testing.T) {
	b, h := newConsumer(t)
	start := time.Now()
	_, body, _ := getMessages(t, h, "type=prompt&wait=300ms")
	if took := time.Since(start); body.Count != 0 || took < 300*time.Millisecond {
		t.Fatalf("empty wait: count %d after %s", body.Count, took)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		put(t, b, domain.TypePrompt, "p")
	}()
	start = time.Now()
	_, body, _ = getMessages(t, h, "type=prompt&wait=5")
	if took := time.Since(start); body.Count != 1 || took > 2*time.Second {
		t.Fatalf("long poll: count %d after %s", body.Count, took)
	}
}

func TestSeedTopicParameters(t *testing.T) {
	b, h := newConsumer(t)
	put(t, b, domain.TypeQuery, "one")
	put(t, b, domain.TypeQuery, "two")
	// topic=query without latest browses from the beginning and commits nothing.
	for range 2 {
		_, body, raw := getMessages(t, h, "topic=query&limit=10")
		if body.Count != 2 || body.Messages[0].Offset != 0 {
			t.Fatalf("browse: %s", raw)
		}
	}
	_, body, _ := getMessages(t, h, "topic=query&latest=true")
	if body.Count != 1 || body.Messages[0].Value["message"] != "one" {
		t.Fatalf("topic=query&latest=true: %+v", body)
	}
	_, body, _ = getMessages(t, h, "topic=query&latest=true")
	if body.Count != 1 || body.Messages[0].Value["message"] != "two" {
		t.Fatalf("second latest: %+v", body)
	}
	r := do(t, h, http.MethodGet, "/messages/peek?type=query&limit=10", "", "")
	if r.status != http.StatusOK || r.body["count"] != float64(2) {
		t.Fatalf("peek: %d %s", r.status, r.raw)
	}
}

// brokenWriter fails every body write, like a client that went away.
type brokenWriter struct{ header http.Header }

func (w *brokenWriter) Header() http.Header       { return w.header }
func (w *brokenWriter) WriteHeader(int)           {}
func (w *brokenWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestFailedWritePutsTheMessageBack(t *testing.T) {
	b, h := newConsumer(t)
	put(t, b, domain.TypeQuery, "first")
	put(t, b, domain.TypeQuery, "second")
	h.ServeHTTP(&brokenWriter{header: http.Header{}}, httptest.NewRequest(http.MethodGet, "/messages?type=query", nil))
	_, body, _ := getMessages(t, h, "type=query")
	if body.Count != 1 || body.Messages[0].Value["message"] != "first" {
		t.Fatalf("after a failed write got %+v, want the first message again", body.Messages)
	}
}
