package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// Issue 18, point 3: one question over WebSocket shows on the admin
// listener's /metrics as the HTTP upgrade, the socket and its frames, the
// question and its answer, and the generator's call; one over POST /chat
// and one over the seed's POST /send under their own entry points. Point
// 4: the three questions' hops through the answerer, and the socket's
// answer end to end (the first delta: stream_test.go, where deltas surely
// come before their answer).
func TestMetricsOfAQuestionOverWebSocket(t *testing.T) {
	cfg := allInOneConfig(t, kafkatest.Fake(t), testenv.Prefix("kfake"), auth.ModeNone)
	app := startAllInOne(t, cfg)
	waitReady(t, app.base["gateway"]+"/readyz")

	askOverWebSocket(t, app.base["gateway"], "How do I start kchat?")

	// The same visitor (its cookie) asks over POST /chat, then the seed's
	// POST /send in that session.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	res, err := client.Post(app.base["gateway"]+"/chat", "application/json", strings.NewReader(`{"message":"What does ack=manual do?"}`))
	if err != nil {
		t.Fatal(err)
	}
	var chat struct {
		SessionID string `json:"session_id"`
	}
	err = json.NewDecoder(res.Body).Decode(&chat)
	_ = res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST /chat: %d %v", res.StatusCode, err)
	}
	res, err = client.PostForm(app.base["gateway"]+"/send", neturl.Values{"session_id": {chat.SessionID}, "type": {"query"}, "message": {"hi"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /send: %d", res.StatusCode)
	}

	want := []struct {
		give    string // a series, as /metrics prints it
		atLeast float64
	}{
		{`kchat_http_requests_total{code="101",method="GET",route="/ws",service="gateway"}`, 1},
		{`kchat_http_requests_total{code="200",method="GET",route="/readyz",service="gateway"}`, 1},
		{`kchat_http_request_duration_seconds_count{method="GET",route="/readyz",service="gateway"}`, 1},
		{`kchat_ws_connections_open`, 1},
		{`kchat_ws_frames_received_total{type="query"}`, 1},
		{`kchat_ws_frames_sent_total{type="ack"}`, 1},
		{`kchat_ws_frames_sent_total{type="answer"}`, 1},
		{`kchat_gateway_questions_asked_total{entry="websocket"}`, 1},
		{`kchat_gateway_answers_delivered_total{entry="websocket"}`, 1},
		{`kchat_gateway_questions_asked_total{entry="chat"}`, 1},
		{`kchat_gateway_answers_delivered_total{entry="chat"}`, 1},
		{`kchat_gateway_questions_asked_total{entry="send"}`, 1},
		{`kchat_http_requests_total{code="200",method="POST",route="/chat",service="gateway"}`, 1},
		{`kchat_answerer_generator_calls_total`, 1},
		{`kchat_answerer_generator_duration_seconds_count`, 1},
		{`kchat_answerer_generator_failures_total{reason="unavailable"}`, 0},
		{`kchat_gateway_rate_limited_total{limit="user"}`, 0},
		// Point 4: each hop of the questions, timed where it ends.
		{`kchat_pipeline_hop_duration_seconds_count{hop="query_to_prompt"}`, 3},
		{`kchat_pipeline_hop_duration_seconds_count{hop="prompt_to_answer"}`, 3},
		{`kchat_pipeline_hop_duration_seconds_count{hop="answer_to_socket"}`, 1},
		{`kchat_pipeline_end_to_end_duration_seconds_count`, 1},
	}
	// The answer frame is counted once written: poll briefly.
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		body = scrape(t, app.base["admin"]+"/metrics")
		missing := ""
		for _, w := range want {
			if v, ok := sample(body, w.give); !ok || v < w.atLeast {
				missing = w.give
				break
			}
		}
		if missing == "" {
			// Timed from the right clocks: seconds, not the decades a
			// zero or misread timestamp would give.
			for _, sum := range []string{`kchat_pipeline_end_to_end_duration_seconds_sum`, `kchat_pipeline_hop_duration_seconds_sum{hop="query_to_prompt"}`, `kchat_pipeline_hop_duration_seconds_sum{hop="answer_to_socket"}`} {
				if v, _ := sample(body, sum); v <= 0 || v > 60 {
					t.Errorf("%s = %g s, want a few seconds at most", sum, v)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no %s of at least the value expected:\n%s", missing, grepKchat(body))
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return string(b)
}

// sample is the value of series in an exposition.
func sample(body, series string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

func grepKchat(body string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, "kchat_") && !strings.HasPrefix(line, "kchat_consumer_") && !strings.Contains(line, "_bucket") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
