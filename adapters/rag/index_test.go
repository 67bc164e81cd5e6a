package rag_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/domain"
)

func TestDefaultKnowledgeBase(t *testing.T) {
	ix := newDefault(t)
	docs := ix.Documents()
	for _, want := range []string{"overview.md", "running.md", "producer.md", "consumer.md", "websocket.md", "answerer.md", "configuration.md"} {
		if !slices.Contains(docs, want) {
			t.Errorf("Documents() = %v, want it to hold %s", docs, want)
		}
	}
	got, err := ix.Retrieve(context.Background(), domain.Query{Text: "What happens if I don't acknowledge a message in manual mode?"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].Source != "consumer.md" || !strings.HasPrefix(got[0].Title, "Consumer API › ") || got[0].Text == "" {
		t.Fatalf("top passage = %s, want a consumer.md passage under Consumer API", describe(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Score > got[i-1].Score {
			t.Errorf("passages not best first: %s", describe(got))
		}
	}
}

func TestRetrieve(t *testing.T) {
	ix := newDefault(t)
	ctx := context.Background()
	t.Run("stemming matches other forms of a word", func(t *testing.T) {
		got, err := ix.Retrieve(ctx, domain.Query{Text: "acknowledging"}, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || !strings.Contains(strings.ToLower(got[0].Title+got[0].Text), "acknowledge") {
			t.Fatalf("Retrieve(acknowledging) = %s, want passages about acknowledgement", describe(got))
		}
	})
	t.Run("heading words match", func(t *testing.T) {
		got, err := ix.Retrieve(ctx, domain.Query{Text: "poison records"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Title != "Consumer API › Poison records" {
			t.Fatalf("Retrieve(poison records) = %s, want the Poison records section", describe(got))
		}
	})
	t.Run("k bounds the result and k <= 0 means TopK", func(t *testing.T) {
		for _, tt := range []struct{ give, want int }{{1, 1}, {5, 5}, {0, 3}, {-1, 3}} {
			got, err := ix.Retrieve(ctx, domain.Query{Text: "kafka"}, tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("Retrieve(kafka, %d) returned %d passages, want %d", tt.give, len(got), tt.want)
			}
		}
	})
	for _, q := range []string{"", "   ", "?!?", "how is the of and to", "what is it?", "…—«»"} {
		t.Run("no searchable word: "+q, func(t *testing.T) {
			got, err := ix.Retrieve(ctx, domain.Query{Text: q}, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || len(got) != 0 {
				t.Fatalf("Retrieve(%q) = %#v, want an empty, non-nil slice", q, got)
			}
		})
	}
	t.Run("a huge query is searched, not refused", func(t *testing.T) {
		got, err := ix.Retrieve(ctx, domain.Query{Text: strings.Repeat("redis session ", 4000)}, 3)
		if err != nil || len(got) == 0 {
			t.Fatalf("Retrieve(huge) = %s, %v; want passages", describe(got), err)
		}
	})
	t.Run("an ended context is an error", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := ix.Retrieve(cctx, domain.Query{Text: "kafka"}, 3); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestKBDirReplacesTheDefault(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("garden.md", "# Gardening\n\n## Tomatoes\n\nWater tomatoes every morning in summer.\n\n## Roses\n\nPrune roses in late winter.\n")
	write("kitchen/bread.txt", "Sourdough bread needs a starter fed with flour and water.\n\nBake it at 250 degrees.\n")
	write("notes.json", `{"kafka": "ignored: not a knowledge-base file"}`)
	write(".hidden/kafka.md", "# Kafka\n\nHidden directories are ignored.\n")

	ix, err := rag.New(rag.Config{Dir: dir, TopK: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })

	if got, want := ix.Documents(), []string{"garden.md", "kitchen/bread.txt"}; !slices.Equal(got, want) {
		t.Fatalf("Documents() = %v, want %v", got, want)
	}
	got, err := ix.Retrieve(context.Background(), domain.Query{Text: "When should I prune my roses?"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].Source != "garden.md" || got[0].Title != "Gardening › Roses" {
		t.Fatalf("Retrieve(roses) = %s, want garden.md's Roses section first", describe(got))
	}
	got, err = ix.Retrieve(context.Background(), domain.Query{Text: "How do I bake sourdough bread?"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].Source != "kitchen/bread.txt" || got[0].Title != "bread" {
		t.Fatalf("Retrieve(sourdough) = %s, want kitchen/bread.txt", describe(got))
	}
	for _, q := range []string{"How do I acknowledge a message in manual mode?", "kafka consumer"} {
		got, err := ix.Retrieve(context.Background(), domain.Query{Text: q}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("Retrieve(%q) = %s, want nothing: the default knowledge base is replaced", q, describe(got))
		}
	}
}

func TestNewRefusesAnEmptyKBDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.csv"), []byte("a,b"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := rag.New(rag.Config{Dir: dir, TopK: 3})
	if err == nil || !strings.Contains(err.Error(), "KCHAT_KB_DIR") {
		t.Fatalf("New(empty dir) error = %v, want one naming KCHAT_KB_DIR", err)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.md")
	if err := os.WriteFile(file, []byte("# A"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give rag.Config
		want string // substring of the error; "" for none
	}{
		{"defaults", rag.DefaultConfig(), ""},
		{"a directory", rag.Config{Dir: dir, TopK: 5}, ""},
		{"missing directory", rag.Config{Dir: filepath.Join(dir, "nope"), TopK: 3}, "KCHAT_KB_DIR"},
		{"a file, not a directory", rag.Config{Dir: file, TopK: 3}, "KCHAT_KB_DIR"},
		{"top k zero", rag.Config{TopK: 0}, "KCHAT_RAG_TOP_K"},
		{"top k too large", rag.Config{TopK: rag.MaxTopK + 1}, "KCHAT_RAG_TOP_K"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestConcurrentRetrieve(t *testing.T) {
	ix := newDefault(t)
	want := make(map[string]string, len(evalSet))
	for _, tt := range evalSet {
		got, err := ix.Retrieve(context.Background(), domain.Query{Text: tt.give}, 3)
		if err != nil {
			t.Fatal(err)
		}
		want[tt.give] = describe(got)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range evalSet {
				q := evalSet[(i+g*7)%len(evalSet)].give
				got, err := ix.Retrieve(context.Background(), domain.Query{Text: q}, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if describe(got) != want[q] {
					t.Errorf("concurrent Retrieve(%q) = %s, want %s", q, describe(got), want[q])
				}
				_ = ix.Documents()
			}
		})
	}
	wg.Wait()
}
