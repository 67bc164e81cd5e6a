package rag

import (
	"context"

	"github.com/kchat/kchat/domain"
)

// RetrieveUnfiltered is Retrieve without the MinScore cut, for calibration.
func RetrieveUnfiltered(ix *Index, ctx context.Context, q string, k int) ([]domain.Passage, error) {
	return ix.search(ctx, domain.Query{Text: q}, k, 0)
}

// SetContextWeight sets how much a follow-up's context counts, for
// measurements; it returns the previous weight.
func SetContextWeight(w float64) float64 {
	prev := contextWeight
	contextWeight = w
	return prev
}

// Split exposes the chunker.
func Split(doc, fallback string) (titles, texts []string) {
	for _, c := range split(doc, fallback) {
		titles = append(titles, c.Title)
		texts = append(texts, c.Text)
	}
	return titles, texts
}
