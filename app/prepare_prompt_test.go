package app_test

import (
	"context"
	"sync"
	"testing"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// queryRecorder is a retriever that remembers what it was asked.
type queryRecorder struct {
	mu      sync.Mutex
	queries []domain.Query
}

func (r *queryRecorder) Retrieve(_ context.Context, q domain.Query, _ int) ([]domain.Passage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, q)
	return []domain.Passage{{Source: "kb.md", Text: "a passage"}}, nil
}

// A follow-up is retrieved with the question it follows up on, read from
// the session in the same step that records it; a question that stands on
// its own, or that announces a new topic, is retrieved alone.
func TestPreparePromptRetrievesAFollowUpWithItsContext(t *testing.T) {
	sessions := newSessions()
	rec := &queryRecorder{}
	uc := &app.PreparePrompt{Sessions: sessions, Retriever: rec, TopK: 3}
	ctx := context.Background()
	ask := func(id, text string) domain.Prompt {
		t.Helper()
		pm, err := uc.Execute(ctx, domain.Message{MessageID: id, SessionID: "s1", UserID: "alice", Type: domain.TypeQuery, Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return domain.PromptFromMessage(pm)
	}
	first := "What happens if Kafka is down when the producer starts?"
	ask("q1", first)
	p := ask("q2", "And what does the WebSocket chat do then?")
	ask("q3", "New question: how do I build the binaries?")
	ask("q4", "How do I require tokens from users?")
	p2 := ask("q5", "Does it work with JWTs?")

	want := []domain.Query{
		{Text: first},
		{Text: "And what does the WebSocket chat do then?", Context: first},
		{Text: "New question: how do I build the binaries?"},
		{Text: "How do I require tokens from users?"},
		{Text: "Does it work with JWTs?", Context: "How do I require tokens from users?"},
	}
	if len(rec.queries) != len(want) {
		t.Fatalf("retrieved %d times, want %d: %+v", len(rec.queries), len(want), rec.queries)
	}
	for i, q := range rec.queries {
		if q != want[i] {
			t.Errorf("query %d = %+v, want %+v", i+1, q, want[i])
		}
	}
	if len(p.Passages) != 1 || len(p.History) != 1 || p.History[0].Text != first {
		t.Errorf("follow-up prompt: passages %v, history %+v; want the passage and the first question", p.Passages, p.History)
	}
	if len(p2.History) != 4 {
		t.Errorf("last prompt has %d history turns, want the 4 questions before it", len(p2.History))
	}
}
