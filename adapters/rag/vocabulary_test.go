package rag_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/domain"
)

// The questions of issue 21, point 3: worded as users word them, not as
// the knowledge base does.
func TestRetrieveAcrossVocabulary(t *testing.T) {
	ix := newDefault(t)
	for _, tt := range []struct{ give, want, title string }{
		{"How do I use a local LLM like Ollama?", "answerer.md", "Answerer › The openai generator"},
		{"How do I plug in a language model?", "answerer.md", ""},
		{"Which close code do I get when my WS frame is too big?", "websocket.md", ""},
	} {
		got, err := ix.Retrieve(context.Background(), domain.Query{Text: tt.give}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || got[0].Source != tt.want || tt.title != "" && got[0].Title != tt.title {
			t.Errorf("Retrieve(%q) = %s, want %s %s first", tt.give, describe(got), tt.want, tt.title)
		}
	}
}

// kchat's own vocabulary (a model is a generator) is not forced on
// documents written by others; the abbreviations of technical writing
// are.
func TestKBDirGetsOnlyTheGeneralThesaurus(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("model.md", "# Data model\n\nThe data model has three tables.\n")
	write("codegen.md", "# Code generator\n\nThe code generator writes Go structs.\n")
	write("socket.md", "# WebSocket API\n\nThe server pushes events over a WebSocket.\n")
	write("receipts.md", "# Receipts\n\nA consumer must acknowledge each receipt before its lease ends.\n")
	ix, err := rag.New(rag.Config{Dir: dir, TopK: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	for _, tt := range []struct{ give, want string }{
		{"How many tables does the model have?", "model.md"},
		{"What does the generator write?", "codegen.md"},
		{"How do I get events over WS?", "socket.md"},
		// An abbreviation's verb forms are its words too.
		{"Is acking per receipt?", "receipts.md"},
	} {
		got, err := ix.Retrieve(context.Background(), domain.Query{Text: tt.give}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Source != tt.want {
			t.Errorf("Retrieve(%q) = %s, want %s alone", tt.give, describe(got), tt.want)
		}
	}
}

// A follow-up is found through the question it follows up on; a new
// question keeps its own topic first although the context is elsewhere.
func TestRetrieveWithContext(t *testing.T) {
	ix := newDefault(t)
	kafkaDown := "What happens if Kafka is down when the producer starts?"
	for _, tt := range []struct {
		name string
		give domain.Query
		want string
	}{
		{"follow-up", domain.Query{Text: "And what does the WebSocket chat do then?", Context: kafkaDown}, "websocket.md"},
		{"follow-up alone is vague", domain.Query{Text: "Is it ever skipped?", Context: "What is a poison record?"}, "consumer.md"},
		{"context does not drown a new topic", domain.Query{Text: "What is a poison record?", Context: kafkaDown}, "consumer.md"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ix.Retrieve(context.Background(), tt.give, 3)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range got {
				found = found || p.Source == tt.want
			}
			if !found {
				t.Errorf("Retrieve(%+v) = %s, want a passage of %s", tt.give, describe(got), tt.want)
			}
		})
	}
	got, err := ix.Retrieve(context.Background(), domain.Query{Text: "What is a poison record?", Context: kafkaDown}, 1)
	if err != nil || len(got) != 1 || got[0].Title != "Consumer API › Poison records" {
		t.Errorf("new topic after a context = %s, %v; want the Poison records section first", describe(got), err)
	}
}
