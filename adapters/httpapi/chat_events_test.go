package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// handFeeds are an answer feed and a delta feed the test drives.
type handFeeds struct {
	mu      sync.Mutex
	answers func(domain.Message)
	deltas  func(domain.Delta)
}

// Reply is unset and Widen a no-op: the test's feed reads every answer.
func (f *handFeeds) Reply(string) domain.Reply { return domain.Reply{} }

func (f *handFeeds) Widen(context.Context) (func(), error) { return func() {}, nil }

func (f *handFeeds) Subscribe(_ context.Context, fn func(domain.Message)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers = fn
	return nil
}

type deltaSide struct{ *handFeeds }

func (f *handFeeds) delta(d domain.Delta) {
	f.mu.Lock()
	fn := f.deltas
	f.mu.Unlock()
	fn(d)
}

func (f *handFeeds) answer(m domain.Message) {
	f.mu.Lock()
	fn := f.answers
	f.mu.Unlock()
	fn(m)
}

func (f *handFeeds) up() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answers != nil && f.deltas != nil
}

func (f deltaSide) Subscribe(_ context.Context, fn func(domain.Delta)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deltas = fn
	return nil
}

// streamer publishes a question and streams its answer through the feeds:
// attempt 1 breaks off, attempt 2 streams whole; the final answer waits
// until the test lets it go (release), so that deltas must reach the
// client before the answer exists.
type streamer struct {
	feeds   *handFeeds
	release chan struct{}
	answer  bool // false: the answer never comes
}

func (p *streamer) PublishQuery(_ context.Context, q domain.Message) error {
	go func() {
		d := func(attempt int64, seq int, text string) {
			p.feeds.delta(domain.Delta{ReplyTo: q.MessageID, SessionID: q.SessionID, UserID: q.UserID, Attempt: attempt, Seq: seq, Text: text})
		}
		d(1, 0, "Start ")
		d(1, 1, "wi") // the answerer dies here; its retry:
		d(2, 0, "Start ")
		d(2, 1, "with `make run`:\n")
		d(2, 2, "it needs no broker.")
		<-p.release
		if p.answer {
			p.feeds.answer(domain.Message{MessageID: domain.DerivedID(q.MessageID, "answer"), SessionID: q.SessionID, UserID: q.UserID,
				Type: domain.TypeAnswer, ReplyTo: q.MessageID, Text: "Start with `make run`:\nit needs no broker."})
		}
	}()
	return nil
}

// sseServer is the gateway's chat routes over HTTP, with p publishing.
func sseServer(t *testing.T, p *streamer, timeout time.Duration) string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	sessions := memory.NewSessions(memory.SessionsConfig{MaxTurns: 50, TTL: time.Hour})
	answers := &app.Answers{Feed: p.feeds, DeltaFeed: deltaSide{p.feeds}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- answers.Run(ctx) }()
	for !p.feeds.up() {
		time.Sleep(time.Millisecond)
	}
	ask := &app.Ask{Sessions: sessions, Publisher: p, Limiter: ratelimit.New(ratelimit.Config{Rate: 0.001, Burst: 2}), Answers: answers}
	g := &httpapi.Gateway{
		Chat:       &app.Chat{Ask: ask, Answers: answers, Timeout: timeout},
		StreamChat: &app.StreamChat{Ask: ask, Answers: answers, Timeout: timeout},
		History:    &app.SessionHistory{Sessions: sessions, Limit: 10},
		Authenticate: func(r *http.Request) (string, error) {
			if u := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); u != "" {
				return u, nil
			}
			return "", errors.New("no token")
		},
		Log: log,
	}
	s := httpapi.NewServer(httpapi.ServerConfig{Addr: ":0"}, "gateway", nil, log)
	g.Register(s.API())
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Answers.Run: %v", err)
		}
	})
	return srv.URL
}

func postChat(t *testing.T, url, accept string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/chat", strings.NewReader(`{"message":"How do I start kchat?"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer alice")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// sseEvent is one Server-Sent Event as a client reads it.
type sseEvent struct{ name, data string }

// readEvents parses an event stream as the SSE specification says (field
// lines, a blank line dispatching the event), handing each to fn as it
// arrives; it returns at the end of the stream.
func readEvents(t *testing.T, body io.Reader, fn func(sseEvent)) {
	t.Helper()
	sc := bufio.NewScanner(body)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				ev.data = strings.Join(data, "\n")
				if ev.name == "" {
					ev.name = "message"
				}
				fn(ev)
			}
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"): // a comment
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.name = value
			case "data":
				data = append(data, value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the event stream: %v", err)
	}
}

// POST /chat with Accept: text/event-stream streams the deltas as they
// come — before the answer exists — then the answer; the deltas of the
// final attempt make its text.
func TestChatStreamsServerSentEvents(t *testing.T) {
	p := &streamer{feeds: &handFeeds{}, release: make(chan struct{}), answer: true}
	url := sseServer(t, p, 10*time.Second)
	resp := postChat(t, url, "text/event-stream")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var events []sseEvent
	readEvents(t, resp.Body, func(ev sseEvent) {
		events = append(events, ev)
		if len(events) == 1 {
			close(p.release) // the answer is written only now
		}
	})
	if len(events) < 2 {
		t.Fatalf("events %v", events)
	}
	var text strings.Builder
	var attempt int64
	for i, ev := range events[:len(events)-1] {
		var d struct {
			ReplyTo string `json:"reply_to"`
			Attempt int64  `json:"attempt"`
			Seq     int    `json:"seq"`
			Text    string `json:"text"`
		}
		if ev.name != "delta" || json.Unmarshal([]byte(ev.data), &d) != nil || d.ReplyTo == "" {
			t.Fatalf("event %d: %+v, want a delta", i, ev)
		}
		if d.Seq == 0 {
			text.Reset() // a new attempt replaces the text
			if d.Attempt <= attempt {
				t.Errorf("attempt %d after %d", d.Attempt, attempt)
			}
			attempt = d.Attempt
		} else if d.Attempt != attempt {
			t.Errorf("a delta of attempt %d amid attempt %d", d.Attempt, attempt)
		}
		text.WriteString(d.Text)
	}
	last := events[len(events)-1]
	var body struct {
		SessionID string `json:"session_id"`
		MessageID string `json:"message_id"`
		Answer    struct {
			Message string `json:"message"`
		} `json:"answer"`
	}
	if last.name != "answer" || json.Unmarshal([]byte(last.data), &body) != nil || body.MessageID == "" || body.SessionID == "" {
		t.Fatalf("last event %+v, want the answer", last)
	}
	if body.Answer.Message != "Start with `make run`:\nit needs no broker." || text.String() != body.Answer.Message {
		t.Errorf("deltas made %q, the answer is %q", text.String(), body.Answer.Message)
	}
	if n := len(events); n != 6 {
		t.Errorf("%d events, want 5 deltas and the answer", n)
	}
}

// Without the header, POST /chat answers with today's JSON body.
func TestChatWithoutEventsIsJSON(t *testing.T) {
	p := &streamer{feeds: &handFeeds{}, release: make(chan struct{}), answer: true}
	close(p.release)
	url := sseServer(t, p, 10*time.Second)
	resp := postChat(t, url, "")
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(raw, &body) != nil {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	answer, _ := body["answer"].(map[string]any)
	if len(body) != 3 || body["session_id"] == nil || body["message_id"] == nil || answer["message"] != "Start with `make run`:\nit needs no broker." {
		t.Errorf("body %s", raw)
	}
}

// An answer that does not come in time ends the stream with an error
// event holding the 504 problem; a refused question is a problem with its
// status, no stream.
func TestChatEventsErrors(t *testing.T) {
	p := &streamer{feeds: &handFeeds{}, release: make(chan struct{})}
	close(p.release)
	url := sseServer(t, p, 300*time.Millisecond)
	resp := postChat(t, url, "application/json, text/event-stream")
	defer resp.Body.Close()
	var events []sseEvent
	readEvents(t, resp.Body, func(ev sseEvent) { events = append(events, ev) })
	last := events[len(events)-1]
	var problem struct {
		Status int `json:"status"`
		Errors []struct {
			Location string `json:"location"`
			Value    string `json:"value"`
		} `json:"errors"`
	}
	if last.name != "error" || json.Unmarshal([]byte(last.data), &problem) != nil || problem.Status != http.StatusGatewayTimeout ||
		len(problem.Errors) != 1 || problem.Errors[0].Location != "message_id" || problem.Errors[0].Value == "" {
		t.Fatalf("last event %+v, want an error with the 504 problem and the question's id", last)
	}

	second := postChat(t, url, "text/event-stream") // the second of the burst
	_ = second.Body.Close()
	third := postChat(t, url, "text/event-stream")
	defer third.Body.Close()
	resp = third
	if resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("over the limit: %d %q, want a 429 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
