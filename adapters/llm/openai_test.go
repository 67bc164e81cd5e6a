package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/domain"
)

// chatServer is an OpenAI-compatible endpoint that streams deltas, or
// answers with status and body when status is set.
type chatServer struct {
	deltas []string
	status int
	body   string
	hang   bool

	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	path   string
	auth   string
	hasKey bool
	body   map[string]any
}

func (s *chatServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	rec := recorded{path: r.URL.Path, auth: r.Header.Get("Authorization")}
	_, rec.hasKey = r.Header["Authorization"]
	_ = json.Unmarshal(raw, &rec.body)
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	if s.hang {
		<-r.Context().Done()
		return
	}
	if s.status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		_, _ = io.WriteString(w, s.body)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	flusher := w.(http.Flusher)
	for i, d := range append([]string{""}, s.deltas...) {
		delta := map[string]any{"content": d}
		if i == 0 {
			delta = map[string]any{"role": "assistant", "content": ""}
		}
		chunk, _ := json.Marshal(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": nil}},
		})
		_, _ = fmt.Fprintf(w, "data: %s\n\n", chunk)
		flusher.Flush()
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
}

func (s *chatServer) only(t *testing.T) recorded {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) != 1 {
		t.Fatalf("server got %d requests, want 1 (no SDK retries)", len(s.requests))
	}
	return s.requests[0]
}

func newOpenAI(t *testing.T, srv *chatServer, edit func(*llm.Config)) *llm.OpenAI {
	t.Helper()
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	cfg := llm.DefaultConfig()
	cfg.Generator = llm.GeneratorOpenAI
	cfg.BaseURL = ts.URL + "/v1"
	cfg.Model = "test-model"
	if edit != nil {
		edit(&cfg)
	}
	g, err := llm.NewOpenAI(cfg)
	if err != nil {
		t.Fatalf("NewOpenAI: %v", err)
	}
	return g
}

var openAIPrompt = domain.Prompt{
	Question: "How long are records kept?",
	History: []domain.Turn{
		{Role: domain.RoleUser, Text: "Hi"},
		{Role: domain.RoleAssistant, Text: "Hello! Ask me about kchat."},
	},
	Passages: passages,
}

func TestOpenAIStreams(t *testing.T) {
	srv := &chatServer{deltas: []string{"Records are kept ", "for 2 minutes", " [2]."}}
	g := newOpenAI(t, srv, func(c *llm.Config) { c.APIKey = "sk-test" })

	got, chunks := generate(t, g, openAIPrompt)
	if want := "Records are kept for 2 minutes [2]."; got != want {
		t.Errorf("answer %q, want %q", got, want)
	}
	if strings.Join(chunks, "|") != "Records are kept |for 2 minutes| [2]." {
		t.Errorf("chunks %q, want the three non-empty deltas in order", chunks)
	}

	req := srv.only(t)
	if req.path != "/v1/chat/completions" {
		t.Errorf("path %q", req.path)
	}
	if req.auth != "Bearer sk-test" {
		t.Errorf("Authorization %q, want the bearer key", req.auth)
	}
	if req.body["model"] != "test-model" || req.body["stream"] != true {
		t.Errorf("model %v stream %v, want test-model and true", req.body["model"], req.body["stream"])
	}
	if req.body["max_tokens"] != float64(1024) {
		t.Errorf("max_tokens %v, want the default budget, 1024", req.body["max_tokens"])
	}
	msgs, _ := req.body["messages"].([]any)
	var roles []string
	for _, m := range msgs {
		roles = append(roles, fmt.Sprint(m.(map[string]any)["role"]))
	}
	if strings.Join(roles, ",") != "system,user,assistant,user" {
		t.Fatalf("roles %v, want system, the history, then the question", roles)
	}
	last := fmt.Sprint(msgs[len(msgs)-1].(map[string]any)["content"])
	for _, want := range []string{
		"[1] (consumer.md › Offsets) # Offsets",
		"[2] (topics.md › Retention) Topics keep records for 2 minutes by default.",
		"[3] (sessions.md › Sessions)",
		"How long are records kept?",
	} {
		if !strings.Contains(last, want) {
			t.Errorf("user message lacks %q:\n%s", want, last)
		}
	}
}

func TestOpenAINoKeyNoAuthorization(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-from-environment")
	srv := &chatServer{deltas: []string{"ok"}}
	g := newOpenAI(t, srv, nil)
	if got, _ := generate(t, g, openAIPrompt); got != "ok" {
		t.Fatalf("answer %q", got)
	}
	if req := srv.only(t); req.hasKey {
		t.Errorf("Authorization %q sent without an API key", req.auth)
	}
}

func TestOpenAIIgnoresEnvironment(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/bogus")
	t.Setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer leaked")
	srv := &chatServer{deltas: []string{"from ", "the configured server"}}
	g := newOpenAI(t, srv, nil)
	if got, _ := generate(t, g, openAIPrompt); got != "from the configured server" {
		t.Fatalf("answer %q", got)
	}
	if req := srv.only(t); req.hasKey {
		t.Errorf("Authorization %q leaked in from the environment", req.auth)
	}
}

func TestOpenAIErrors(t *testing.T) {
	tests := []struct {
		name            string
		give            *chatServer
		wantUnavailable bool
	}{
		{"500", &chatServer{status: 500, body: `{"error":{"message":"boom","type":"server_error"}}`}, true},
		{"503 without body", &chatServer{status: 503}, true},
		{"429", &chatServer{status: 429, body: `{"error":{"message":"slow down","type":"rate_limit"}}`}, true},
		{"400", &chatServer{status: 400, body: `{"error":{"message":"bad model","type":"invalid_request_error"}}`}, false},
		{"401", &chatServer{status: 401, body: `{"error":{"message":"no key","type":"auth"}}`}, false},
		{"404", &chatServer{status: 404, body: `{"error":{"message":"no such model"}}`}, false},
		{"empty answer", &chatServer{deltas: nil}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newOpenAI(t, tt.give, nil)
			var chunks []string
			got, err := g.Generate(context.Background(), openAIPrompt, func(s string) { chunks = append(chunks, s) })
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			if errors.Is(err, domain.ErrUnavailable) != tt.wantUnavailable {
				t.Errorf("error %v: wraps ErrUnavailable = %v, want %v", err, !tt.wantUnavailable, tt.wantUnavailable)
			}
			if len(chunks) != 0 {
				t.Errorf("chunks %q streamed for a failed call", chunks)
			}
			tt.give.only(t)
		})
	}
}

func TestOpenAIUnreachable(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	cfg := llm.Config{Generator: llm.GeneratorOpenAI, BaseURL: url, Model: "m", Timeout: 5 * time.Second}
	g, err := llm.NewOpenAI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Generate(context.Background(), openAIPrompt, nil); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestOpenAITimeout(t *testing.T) {
	g := newOpenAI(t, &chatServer{hang: true}, func(c *llm.Config) { c.Timeout = 300 * time.Millisecond })
	start := time.Now()
	_, err := g.Generate(context.Background(), openAIPrompt, nil)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("returned after %s, want about the 300ms timeout", took)
	}
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v: the caller's ctx did not end, so not a ctx error", err)
	}
}

func TestOpenAICallerCancels(t *testing.T) {
	g := newOpenAI(t, &chatServer{hang: true}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := g.Generate(ctx, openAIPrompt, nil)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("got %v, want the caller's ctx error", err)
	}
}

// KCHAT_LLM_MAX_TOKENS is each answer's budget, sent as max_tokens; 0
// sends none.
func TestOpenAITokenBudget(t *testing.T) {
	for _, tt := range []struct {
		give int
		want any
	}{{give: 50, want: float64(50)}, {give: 0, want: nil}} {
		srv := &chatServer{deltas: []string{"Records are kept [2]."}}
		g := newOpenAI(t, srv, func(c *llm.Config) { c.MaxTokens = tt.give })
		generate(t, g, openAIPrompt)
		if got, ok := srv.only(t).body["max_tokens"]; got != tt.want || ok != (tt.want != nil) {
			t.Errorf("KCHAT_LLM_MAX_TOKENS=%d sent max_tokens %v (present %v), want %v", tt.give, got, ok, tt.want)
		}
	}
}
