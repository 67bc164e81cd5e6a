package rag_test

import (
	"slices"
	"strings"
	"testing"
)

// The examples of issue 21, asked as the answerer asks them
// (app.PreparePrompt over a session, the index, the extractive
// generator): the follow-up is answered in its conversation, both
// questions about a language model cite answerer.md, and no answer
// stitches in a sentence about something else.
func TestIssue21Examples(t *testing.T) {
	a := newAsker(newDefault(t))

	_, first, _ := a.ask(t, "s1", "What happens if Kafka is down when the producer starts?")
	if strings.Contains(first, "docker compose") {
		t.Errorf("the answer about Kafka being down quotes Docker Compose: %q", first)
	}
	_, answer, cited := a.ask(t, "s1", "And what does the WebSocket chat do then?")
	if !slices.Contains(cited, "websocket.md") {
		t.Errorf("the follow-up's answer cites %v, want websocket.md: %q", cited, answer)
	}
	if !strings.Contains(answer, "`unavailable`") {
		t.Errorf("the follow-up's answer does not say what the chat does while Kafka is down: %q", answer)
	}

	_, answer, _ = a.ask(t, "s2", "How do I start kchat?")
	if !strings.HasPrefix(answer, "Run `make run`") {
		t.Errorf("How do I start kchat? is answered %q, want it to lead with make run", answer)
	}

	for i, q := range []string{"How do I use a local LLM like Ollama?", "How do I plug in a language model?"} {
		_, answer, cited := a.ask(t, "model-"+string(rune('a'+i)), q)
		if len(cited) == 0 || slices.ContainsFunc(cited, func(s string) bool { return s != "answerer.md" }) {
			t.Errorf("%s is answered citing %v, want answerer.md only: %q", q, cited, answer)
		}
	}
}
