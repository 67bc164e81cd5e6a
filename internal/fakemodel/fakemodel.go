// Package fakemodel is an OpenAI-compatible chat-completions server that
// streams every answer token by token at a set pace and notes when it
// wrote each token: the model of the streaming tests (cmd/answerer,
// cmd/kchat) and of the stream scenario of make bench (cmd/kbench). It
// finds the question an answer is for by a reference in its text, a tag
// followed by digits ("zqref12"): the last one in the request, the
// question asked after any history.
package fakemodel

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Server is the fake model. Its answers to a question are Tokens(ref, n).
type Server struct {
	n     int
	delay time.Duration
	ref   *regexp.Regexp
	srv   *httptest.Server

	mu      sync.Mutex
	emitted map[string][]time.Time // by reference, of the latest request
}

// Start serves answers of n tokens, one every delay (the first one delay
// after the request), to questions whose reference is tag followed by
// digits. Close stops it.
func Start(n int, delay time.Duration, tag string) *Server {
	s := &Server{n: n, delay: delay, ref: regexp.MustCompile(regexp.QuoteMeta(tag) + `(\d+)`), emitted: map[string][]time.Time{}}
	s.srv = httptest.NewServer(s)
	return s
}

// URL is the server's root; the openai generator's base URL.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Tokens is the answer streamed for reference ref, token by token: a
// sentence ends every tenth token (so a streaming answerer flushes at
// sentence ends as well as on its clock) and a citation ends it.
func Tokens(ref string, n int) []string {
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf(" %s-%d", ref, i)
		if i%10 == 9 {
			tokens[i] += "."
		}
	}
	tokens[0] = strings.TrimSpace(tokens[0])
	tokens[n-1] += " [1]."
	return tokens
}

// ServeHTTP streams the answer as chat.completion.chunk events. It stops
// when its client goes away (an answerer killed mid-stream).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	ref := "none"
	if all := s.ref.FindAllSubmatch(raw, -1); all != nil {
		ref = string(all[len(all)-1][1])
	}
	s.mu.Lock()
	s.emitted[ref] = nil
	s.mu.Unlock()
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no streaming", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	tick := time.NewTicker(s.delay)
	defer tick.Stop()
	for _, tok := range Tokens(ref, s.n) {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		chunk, _ := json.Marshal(map[string]any{
			"id": "fake", "object": "chat.completion.chunk", "created": 1, "model": "fake",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": tok}}},
		})
		fmt.Fprintf(w, "data: %s\n\n", chunk)
		flusher.Flush()
		s.mu.Lock()
		s.emitted[ref] = append(s.emitted[ref], time.Now())
		s.mu.Unlock()
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// TokenAt is when the model wrote the i-th token (from 0) of the answer
// to ref, in its latest request for it.
func (s *Server) TokenAt(ref string, i int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.emitted[ref]) {
		return time.Time{}, false
	}
	return s.emitted[ref][i], true
}

// Finished is when the model wrote the first and the last token of the
// answer to ref, once it wrote all of them.
func (s *Server) Finished(ref string) (first, last time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.emitted[ref]
	if len(e) < s.n {
		return time.Time{}, time.Time{}, false
	}
	return e[0], e[len(e)-1], true
}
