package llm_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kchat/kchat/adapters/llm"
)

// syncBuffer is a log sink safe for the generator's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestInstrumentedCountsFailuresByReasonAndWarns(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	refusedURL := closed.URL
	closed.Close()
	badRequest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":{"message":"no such model"}}`, http.StatusBadRequest)
	}))
	t.Cleanup(badRequest.Close)

	tests := []struct {
		name    string
		give    func(t *testing.T) *llm.OpenAI
		want    string // reason
		wantLog string // in the WARN line: the cause
	}{
		{name: "connection refused", want: llm.FailUnavailable, wantLog: "connection refused", give: func(t *testing.T) *llm.OpenAI {
			return openAIAt(t, refusedURL, 5*time.Second)
		}},
		{name: "4xx", want: llm.FailRefused, wantLog: "status 400", give: func(t *testing.T) *llm.OpenAI {
			return openAIAt(t, badRequest.URL, 5*time.Second)
		}},
		{name: "timeout", want: llm.FailTimeout, wantLog: "no answer within", give: func(t *testing.T) *llm.OpenAI {
			return newOpenAI(t, &chatServer{hang: true}, func(c *llm.Config) { c.Timeout = 200 * time.Millisecond })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var logs syncBuffer
			g := llm.Instrument(tt.give(t), llm.NewMetrics(reg), slog.New(slog.NewTextHandler(&logs, nil)))
			if _, err := g.Generate(context.Background(), openAIPrompt, nil); err == nil {
				t.Fatal("Generate succeeded")
			}
			want := `
# HELP kchat_answerer_generator_calls_total Calls to the generator (each attempt of an answer is one).
# TYPE kchat_answerer_generator_calls_total counter
kchat_answerer_generator_calls_total 1
# HELP kchat_answerer_generator_failures_total Generator calls that failed, by reason: unavailable, refused, timeout.
# TYPE kchat_answerer_generator_failures_total counter
`
			for _, r := range []string{llm.FailRefused, llm.FailTimeout, llm.FailUnavailable} {
				n := "0"
				if r == tt.want {
					n = "1"
				}
				want += `kchat_answerer_generator_failures_total{reason="` + r + `"} ` + n + "\n"
			}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kchat_answerer_generator_calls_total", "kchat_answerer_generator_failures_total"); err != nil {
				t.Error(err)
			}
			if n, _ := testutil.GatherAndCount(reg, "kchat_answerer_generator_duration_seconds"); n != 1 {
				t.Errorf("generator_duration_seconds series: %d, want 1", n)
			}
			line := logs.String()
			if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "reason="+tt.want) || !strings.Contains(line, tt.wantLog) {
				t.Errorf("log %q: want a WARN line with reason=%s and the cause %q", line, tt.want, tt.wantLog)
			}
		})
	}
}

func TestInstrumentedSuccessIsACallNotAFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := llm.NewMetrics(reg)
	var logs syncBuffer
	g := llm.Instrument(&llm.Extractive{}, m, slog.New(slog.NewTextHandler(&logs, nil)))
	if _, err := g.Generate(context.Background(), openAIPrompt, nil); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP kchat_answerer_generator_calls_total Calls to the generator (each attempt of an answer is one).
# TYPE kchat_answerer_generator_calls_total counter
kchat_answerer_generator_calls_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kchat_answerer_generator_calls_total"); err != nil {
		t.Error(err)
	}
	if got, err := testutil.GatherAndLint(reg); err != nil || len(got) != 0 {
		t.Errorf("lint: %v %v", got, err)
	}
	if strings.Contains(logs.String(), "WARN") {
		t.Errorf("a successful call logged %q", logs.String())
	}
}

func openAIAt(t *testing.T, url string, timeout time.Duration) *llm.OpenAI {
	t.Helper()
	g, err := llm.NewOpenAI(llm.Config{Generator: llm.GeneratorOpenAI, BaseURL: url, Model: "m", Timeout: timeout, MaxTokens: 16})
	if err != nil {
		t.Fatal(err)
	}
	return g
}
