package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/internal/fakemodel"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// Issue 17's acceptance at the WebSocket: with a model writing 50 tokens
// 20 ms apart, the first answer_delta of each of 20 questions asked at once
// reaches its socket before the model wrote its 10th token, and the deltas
// of the final attempt add up to the final answer.
func TestStreamedAnswersReachTheSocket(t *testing.T) {
	testStreamedAnswersReachTheSocket(t, kafkatest.Fake(t), testenv.Prefix("kfake"), "")
}

func TestIntegrationStreamedAnswersReachTheSocket(t *testing.T) {
	prefix := testenv.Prefix("it-wsstream")
	testStreamedAnswersReachTheSocket(t, kafkatest.Real(t, prefix), prefix, testenv.RedisURL(t))
}

func testStreamedAnswersReachTheSocket(t *testing.T, brokers []string, prefix, redisURL string) {
	const questions, tokens, delay = 20, 50, 20 * time.Millisecond
	model := fakemodel.Start(tokens, delay, "zqref")
	t.Cleanup(model.Close)
	cfg := allInOneConfig(t, brokers, prefix, auth.ModeNone)
	cfg.Answerer.LLM.Generator, cfg.Answerer.LLM.BaseURL, cfg.Answerer.LLM.Model = llm.GeneratorOpenAI, model.URL(), "test-model"
	cfg.Answerer.Stage.Concurrency = questions
	if redisURL != "" {
		cfg.Redis.URL, cfg.Redis.KeyPrefix = redisURL, prefix
	}
	app := startAllInOne(t, cfg)
	waitReady(t, app.base["gateway"]+"/readyz")

	socks := make([]*websocket.Conn, questions)
	for i := range socks {
		conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(app.base["gateway"], "http")+"/ws", nil)
		if resp != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			t.Fatalf("socket %d: %v", i, err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		socks[i] = conn
	}
	got := make([]streamed, questions)
	var wg sync.WaitGroup
	for i, conn := range socks {
		wg.Go(func() { got[i] = askAndFollow(t, conn, fmt.Sprintf("How do I start kchat? zqref%d", i)) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	var leads, margins []time.Duration
	for i, s := range got {
		ref := fmt.Sprint(i)
		first, ok1 := model.TokenAt(ref, 0)
		tenth, ok10 := model.TokenAt(ref, 9)
		if !ok1 || !ok10 {
			t.Errorf("question %d: the model never wrote its 10th token", i)
			continue
		}
		if len(s.deltas) == 0 {
			t.Errorf("question %d: no answer_delta before the answer %q", i, s.answer)
			continue
		}
		if at := s.deltas[0].at; !at.Before(tenth) {
			t.Errorf("question %d: the first answer_delta came %s after the model's first token, the 10th %s after it", i, at.Sub(first), tenth.Sub(first))
		}
		leads, margins = append(leads, s.deltas[0].at.Sub(first)), append(margins, tenth.Sub(s.deltas[0].at))
		if text := s.finalAttemptText(t, i); text != s.answer {
			t.Errorf("question %d: the final attempt's deltas add up to %q, the answer is %q", i, text, s.answer)
		}
		if want := strings.Join(fakemodel.Tokens(ref, tokens), ""); s.answer != want {
			t.Errorf("question %d: the answer is %q, the model wrote %q", i, s.answer, want)
		}
	}
	if len(leads) == 0 {
		return
	}
	// Issue 18, point 4: each socket's first delta is timed from its
	// question (kchat_pipeline_first_delta_duration_seconds).
	if n, ok := sample(scrape(t, app.base["admin"]+"/metrics"), "kchat_pipeline_first_delta_duration_seconds_count"); !ok || n < float64(len(leads)) {
		t.Errorf("first deltas timed: %v, want at least the %d sockets that got one", n, len(leads))
	}
	slices.Sort(leads)
	slices.Sort(margins)
	t.Logf("first answer_delta at the socket after the model's first token: p50 %s, max %s; before the 10th token (%s after the first): by %s at least, p50 %s",
		leads[len(leads)/2], leads[len(leads)-1], 9*delay, margins[0], margins[len(margins)/2])
}

// deltaFrame is an answer_delta frame and when the socket read it.
type deltaFrame struct {
	attempt int64
	seq     int
	text    string
	at      time.Time
}

// streamed is what one socket got for its question: its deltas in the
// order they came, and the final answer's text.
type streamed struct {
	deltas []deltaFrame
	answer string
}

// finalAttemptText checks that the deltas come in order (seq 0, 1, 2… of
// one attempt, a greater attempt starting at seq 0) and returns the text of
// the last attempt.
func (s streamed) finalAttemptText(t *testing.T, i int) string {
	t.Helper()
	var attempt int64 = -1
	next, text := 0, ""
	for _, d := range s.deltas {
		if d.attempt != attempt {
			if d.attempt < attempt || d.seq != 0 {
				t.Errorf("question %d: attempt %d seq %d after attempt %d: not a new attempt's start", i, d.attempt, d.seq, attempt)
			}
			attempt, next, text = d.attempt, 0, ""
		}
		if d.seq != next {
			t.Errorf("question %d: attempt %d seq %d, want %d", i, d.attempt, d.seq, next)
		}
		next, text = d.seq+1, text+d.text
	}
	return text
}

// askAndFollow asks question on conn and reads until its answer, noting
// when each of its answer_delta frames came.
func askAndFollow(t *testing.T, conn *websocket.Conn, question string) streamed {
	var s streamed
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	if err := conn.WriteJSON(map[string]string{"type": "query", "id": "q", "message": question}); err != nil {
		t.Errorf("%s: %v", question, err)
		return s
	}
	var asked string
	for {
		_, raw, err := conn.ReadMessage()
		at := time.Now()
		if err != nil {
			t.Errorf("%s: waiting for its answer: %v", question, err)
			return s
		}
		var f struct {
			Type      string `json:"type"`
			MessageID string `json:"message_id"`
			ReplyTo   string `json:"reply_to"`
			Attempt   int64  `json:"attempt"`
			Seq       int    `json:"seq"`
			Text      string `json:"text"`
			Message   string `json:"message"`
			Error     string `json:"error"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Errorf("%s: frame %q: %v", question, raw, err)
			return s
		}
		switch f.Type {
		case "ack":
			asked = f.MessageID
		case "error":
			t.Errorf("%s: %s", question, raw)
			return s
		case "answer_delta":
			if asked == "" || f.ReplyTo != asked {
				t.Errorf("%s (asked as %q): a delta of %q", question, asked, f.ReplyTo)
				continue
			}
			s.deltas = append(s.deltas, deltaFrame{f.Attempt, f.Seq, f.Text, at})
		case "answer":
			if f.ReplyTo != asked {
				t.Errorf("%s (asked as %q): the answer to %q", question, asked, f.ReplyTo)
				continue
			}
			if f.Error != "" {
				t.Errorf("%s: the answer failed: %s", question, raw)
			}
			s.answer = f.Message
			return s
		}
	}
}

// waitReady waits until url answers 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30 s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
