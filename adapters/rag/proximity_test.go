package rag_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/domain"
)

// Of two passages holding the same question words as often, the one where
// they stand together as in the question ranks first, whichever is
// written first; the scores the relevance bars cut stay BM25's, equal.
func TestNeighbouringWordsRankFirst(t *testing.T) {
	together := "# Notes\n\nThe lease duration is a retry time set on the topic.\n"
	apart := "# Notes\n\nThe duration is a retry time set on the lease topic.\n"
	for _, tt := range []struct {
		name     string
		a, b     string
		wantFile string
	}{
		{"together written first", together, apart, "a.md"},
		{"together written second", apart, together, "b.md"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range map[string]string{"a.md": tt.a, "b.md": tt.b} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := rag.DefaultConfig()
			cfg.Dir = dir
			ix, err := rag.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ix.Close() })
			got, err := ix.Retrieve(context.Background(), domain.Query{Text: "What is the lease duration?"}, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Source != tt.wantFile {
				t.Fatalf("Retrieve = %s, want %s first", describe(got), tt.wantFile)
			}
			if got[0].Score != got[1].Score {
				t.Errorf("scores %.4f and %.4f, want BM25's, equal", got[0].Score, got[1].Score)
			}
		})
	}
}
