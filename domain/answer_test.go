package domain_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
)

var passages = []domain.Passage{
	{Source: "running.md", Title: "Two commands", Text: "make run starts every service.", Score: 3.2},
	{Source: "consumer.md", Title: "Ack modes", Text: "ack=manual leases a message.", Score: 2.1},
}

func query() domain.Message {
	return domain.Message{MessageID: "q-1", SessionID: "s-1", UserID: "alice", Type: domain.TypeQuery, Text: "How do I run kchat?"}
}

func TestBuildPromptLeavesOutTheQuestionItself(t *testing.T) {
	history := []domain.Turn{
		{Role: domain.RoleUser, MessageID: "q-0", Text: "hello"},
		{Role: domain.RoleAssistant, MessageID: domain.DerivedID("q-0", "answer"), Text: "hi"},
		{Role: domain.RoleUser, MessageID: "q-1", Text: "How do I run kchat?"}, // recorded by an earlier try
	}
	p := domain.BuildPrompt("How do I run kchat?", "q-1", history, passages)
	if len(p.History) != 2 || p.History[1].Text != "hi" {
		t.Fatalf("history %+v", p.History)
	}
	var many []domain.Turn
	for i := range 30 {
		many = append(many, domain.Turn{Role: domain.RoleUser, MessageID: string(rune('a' + i)), Text: strings.Repeat("x", 5000)})
	}
	p = domain.BuildPrompt("q", "q-1", many, nil)
	if len(p.History) != domain.PromptHistoryTurns || len(p.History[0].Text) > 1010 {
		t.Fatalf("history not bounded: %d turns, first %d bytes", len(p.History), len(p.History[0].Text))
	}
}

func TestRender(t *testing.T) {
	p := domain.BuildPrompt("How do I run kchat?", "q-1", []domain.Turn{{Role: domain.RoleUser, MessageID: "q-0", Text: "hello"}}, passages)
	r := p.Render()
	for _, want := range []string{"[1] (running.md › Two commands) make run starts every service.", "[2] (consumer.md", "user: hello", "Question: How do I run kchat?", "Cite the passages"} {
		if !strings.Contains(r, want) {
			t.Errorf("rendered prompt lacks %q:\n%s", want, r)
		}
	}
	if !strings.Contains(domain.Prompt{Question: "x"}.Render(), "none were found") {
		t.Error("a prompt without passages does not say so")
	}
}

func TestPromptMessageRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	p := domain.BuildPrompt("How do I run kchat?", "q-1", []domain.Turn{{Role: domain.RoleUser, MessageID: "q-0", Text: "hello"}}, passages)
	m := domain.NewPromptMessage(query(), p, now)
	if m.Type != domain.TypePrompt || m.ReplyTo != "q-1" || m.MessageID != domain.DerivedID("q-1", "prompt") || m.SessionID != "s-1" {
		t.Fatalf("prompt message %+v", m)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	// Through JSON, as on the wire.
	raw, _ := json.Marshal(m.Metadata)
	var meta map[string]any
	_ = json.Unmarshal(raw, &meta)
	m.Metadata = meta
	back := domain.PromptFromMessage(m)
	back.History[0].At = time.Time{}
	if !reflect.DeepEqual(back.History, p.History) || back.Question != p.Question || len(back.Passages) != 2 || back.Passages[1].Source != "consumer.md" {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, p)
	}
}

func TestAnswerMessage(t *testing.T) {
	now := time.Now()
	pm := domain.NewPromptMessage(query(), domain.Prompt{Question: "q", Passages: passages}, now)
	a := domain.NewAnswerMessage(pm, "Run make run [1]. Use ack=manual [2][2]. Not [7].", now)
	if a.Type != domain.TypeAnswer || a.ReplyTo != "q-1" || a.MessageID != domain.DerivedID("q-1", "answer") {
		t.Fatalf("answer %+v", a)
	}
	if len(a.Citations) != 2 || a.Citations[0].Source != "running.md" || a.Citations[1].N != 2 {
		t.Fatalf("citations %+v", a.Citations)
	}
	if none := domain.NewAnswerMessage(pm, "I found nothing.", now); len(none.Citations) != 0 {
		t.Fatalf("an answer without markers cites %+v", none.Citations)
	}
	f := domain.NewFailedAnswer(pm, "generator unavailable", now)
	if f.Text != domain.FailedAnswerText || f.Metadata["error"] != "generator unavailable" || f.ReplyTo != "q-1" {
		t.Fatalf("failed answer %+v", f)
	}
}

func TestDerivedIDIsStableAndDistinct(t *testing.T) {
	a, b := domain.DerivedID("q-1", "answer"), domain.DerivedID("q-1", "answer")
	if a != b || a == domain.DerivedID("q-1", "prompt") || a == domain.DerivedID("q-2", "answer") {
		t.Fatalf("derived ids %s %s", a, b)
	}
	if len(a) != 36 || a[14] != '8' {
		t.Fatalf("%s is not a version-8 UUID", a)
	}
}
