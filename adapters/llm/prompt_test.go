package llm_test

import (
	"strings"
	"testing"

	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/domain"
)

func TestRenderMessages(t *testing.T) {
	msgs := llm.RenderMessages(domain.Prompt{
		Question: "  How long are records kept? ",
		History: []domain.Turn{
			{Role: domain.RoleUser, Text: "Hi"},
			{Role: domain.RoleAssistant, Text: "Hello."},
			{Role: domain.RoleUser, Text: "  "},
		},
		Passages: []domain.Passage{
			{Source: "topics.md", Title: "Retention", Text: "Records stay 2 minutes.\n"},
			{Source: "notes.md", Text: "No title here."},
		},
	})
	want := []llm.Message{
		{Role: "system"},
		{Role: "user", Content: "Hi"},
		{Role: "assistant", Content: "Hello."},
		{Role: "user", Content: "Passages:\n" +
			"[1] (topics.md › Retention) Records stay 2 minutes.\n" +
			"[2] (notes.md) No title here.\n" +
			"\nQuestion: How long are records kept?"},
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages %q, want %d", len(msgs), msgs, len(want))
	}
	for i := range want {
		if msgs[i].Role != want[i].Role || (i > 0 && msgs[i].Content != want[i].Content) {
			t.Errorf("message %d = %q, want %q", i, msgs[i], want[i])
		}
	}
	for _, rule := range []string{"only", "[n]", "do not contain"} {
		if !strings.Contains(msgs[0].Content, rule) {
			t.Errorf("system message lacks %q: %s", rule, msgs[0].Content)
		}
	}
}

func TestRenderMessagesNoPassages(t *testing.T) {
	msgs := llm.RenderMessages(domain.Prompt{Question: "Why?"})
	if len(msgs) != 2 || !strings.Contains(msgs[1].Content, "none") || !strings.HasSuffix(msgs[1].Content, "Question: Why?") {
		t.Fatalf("got %q", msgs)
	}
}
