package rag

import (
	"context"

	"github.com/kchat/kchat/domain"
)

// RetrieveUnfiltered is Retrieve without the MinScore cut, for calibration.
func RetrieveUnfiltered(ix *Index, ctx context.Context, q string, k int) ([]domain.Passage, error) {
	return ix.search(ctx, domain.Query{Text: q}, k, 0)
}

// SetFusion sets how a follow-up's search weighs its context, for
// measurements (docs/quality.md); it returns the previous settings.
func SetFusion(weight, bonus float64) (prevWeight, prevBonus float64) {
	prevWeight, prevBonus = contextWeight, bothBonus
	contextWeight, bothBonus = weight, bonus
	return prevWeight, prevBonus
}

// Split exposes the chunker.
func Split(doc, fallback string) (titles, texts []string) {
	for _, c := range split(doc, fallback) {
		titles = append(titles, c.Title)
		texts = append(texts, c.Text)
	}
	return titles, texts
}
