package rag

import (
	"context"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
)

// TestBM25IsActive guards the trap of bleve v2.6: BM25 is only used when the
// mapping asks for it and the index is scorch (NewMemOnly silently scores
// with TF-IDF).
func TestBM25IsActive(t *testing.T) {
	ix, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })

	m, ok := ix.idx.Mapping().(*mapping.IndexMappingImpl)
	if !ok || m.ScoringModel != "bm25" {
		t.Fatalf("index mapping scoring model = %q, want bm25", m.ScoringModel)
	}
	q := query.NewMatchQuery("consumer lease")
	q.SetField(fieldBody)
	req := bleve.NewSearchRequestOptions(q, 1, 0, true)
	res, err := ix.idx.SearchInContext(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) == 0 || res.Hits[0].Expl == nil {
		t.Fatal("no hit with an explanation")
	}
	expl := res.Hits[0].Expl.String()
	if !strings.Contains(expl, "as per bm25 model") || strings.Contains(expl, "as per tfidf model") {
		t.Fatalf("score explanation does not show BM25:\n%s", expl)
	}
}
