package fakemodel_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/internal/fakemodel"
)

// The fake model streams its tokens the set delay apart as chat-completion
// chunks and notes their times under the reference of the last question in
// the request (the one asked, after the history).
func TestFakeModelStreamsAndNotesTheQuestion(t *testing.T) {
	m := fakemodel.Start(5, 20*time.Millisecond, "kbref")
	defer m.Close()
	body := `{"messages":[{"role":"user","content":"old (kbref7)"},{"role":"user","content":"new (kbref42)"}],"stream":true}`
	start := time.Now()
	resp, err := http.Post(m.URL()+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var text strings.Builder
	var chunks int
	var done bool
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "data: [DONE]":
			done = true
		case strings.HasPrefix(line, "data: "):
			chunks++
			if !strings.Contains(line, `"chat.completion.chunk"`) {
				t.Errorf("not a chunk: %s", line)
			}
			text.WriteString(line)
		}
	}
	if chunks != 5 || !done {
		t.Fatalf("%d chunks, [DONE] %v; want 5 and true", chunks, done)
	}
	for _, tok := range fakemodel.Tokens("42", 5) {
		if !strings.Contains(text.String(), strings.TrimSpace(tok)) {
			t.Errorf("token %q not streamed", tok)
		}
	}
	first, last, ok := m.Finished("42")
	if !ok {
		t.Fatal("no times for the question asked (kbref42)")
	}
	if _, _, old := m.Finished("7"); old {
		t.Error("times noted for a question of the history (kbref7)")
	}
	if tenth, ok := m.TokenAt("42", 4); !ok || !tenth.Equal(last) {
		t.Errorf("TokenAt(4) = %v %v, want the last token's time %v", tenth, ok, last)
	}
	if d := first.Sub(start); d < 20*time.Millisecond {
		t.Errorf("first token %s after the request, want ≥ 20ms", d)
	}
	if span := last.Sub(first); span < 4*20*time.Millisecond-5*time.Millisecond {
		t.Errorf("first to last token %s, want about 4 × 20ms", span)
	}
}
