package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// fakeModel is an OpenAI-compatible chat-completions server that streams
// every answer as tokens tokens, delay apart (the first one delay after
// the request), and notes when it flushed the first and the last token of
// the answer to each question, found by the question's reference
// ("kbref<n>" in its text).
type fakeModel struct {
	tokens int
	delay  time.Duration
	srv    *httptest.Server

	mu      sync.Mutex
	emitted map[int]modelTimes // by reference, of the latest request
}

// modelTimes is when the model flushed an answer's first and last token.
type modelTimes struct{ first, last time.Time }

// refPattern finds a question's reference in a request; the last match is
// the question asked, after any history.
var refPattern = regexp.MustCompile(`kbref(\d+)`)

func startFakeModel(tokens int, delay time.Duration) *fakeModel {
	m := &fakeModel{tokens: tokens, delay: delay, emitted: map[int]modelTimes{}}
	m.srv = httptest.NewServer(m)
	return m
}

// baseURL is the API root to give the openai generator.
func (m *fakeModel) baseURL() string { return m.srv.URL + "/v1" }

func (m *fakeModel) close() { m.srv.Close() }

// modelToken is the i-th token of every answer: a sentence ends every
// tenth token, so the answerer's coalescing flushes at sentence ends as
// well as every 50 ms.
func modelToken(i int) string {
	tok := " word" + strconv.Itoa(i)
	if i == 0 {
		tok = "Word0"
	}
	if i%10 == 9 {
		tok += "."
	}
	return tok
}

func (m *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	ref := -1
	if all := refPattern.FindAllSubmatch(raw, -1); all != nil {
		ref, _ = strconv.Atoi(string(all[len(all)-1][1]))
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no streaming", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	tick := time.NewTicker(m.delay)
	defer tick.Stop()
	var times modelTimes
	for i := range m.tokens {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		chunk, _ := json.Marshal(map[string]any{
			"id": "kbench", "object": "chat.completion.chunk", "created": 1, "model": "fake",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": modelToken(i)}}},
		})
		fmt.Fprintf(w, "data: %s\n\n", chunk)
		flusher.Flush()
		now := time.Now()
		if i == 0 {
			times.first = now
		}
		times.last = now
	}
	if ref >= 0 { // before [DONE]: the final answer cannot come first
		m.mu.Lock()
		m.emitted[ref] = times
		m.mu.Unlock()
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// times is when the model wrote the first and last token of the answer to
// question ref, if it finished one.
func (m *fakeModel) times(ref int) (modelTimes, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.emitted[ref]
	return t, ok
}
