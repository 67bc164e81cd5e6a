package rag_test

import (
	"strings"
	"testing"

	"github.com/kchat/kchat/adapters/rag"
)

func TestSplit(t *testing.T) {
	long := strings.Repeat("word ", 100) // 500 bytes
	tests := []struct {
		name       string
		give       string
		wantTitles []string
		wantTexts  []string
	}{
		{
			name:       "text before any heading takes the fallback title",
			give:       "Just some text.\nOn two lines.",
			wantTitles: []string{"doc"},
			wantTexts:  []string{"Just some text.\nOn two lines."},
		},
		{
			name: "heading path",
			give: "# Consumer API\n\nIntro.\n\n## Delivery guarantees\n\nNo skipping.\n\n### Crashes\n\nAt most 32.\n\n## Gaps\n\nReported.\n",
			wantTitles: []string{
				"Consumer API",
				"Consumer API › Delivery guarantees",
				"Consumer API › Delivery guarantees › Crashes",
				"Consumer API › Gaps",
			},
			wantTexts: []string{"Intro.", "No skipping.", "At most 32.", "Reported."},
		},
		{
			name:       "a heading with no text of its own makes no passage",
			give:       "# A\n## B\n\nText of B.",
			wantTitles: []string{"A › B"},
			wantTexts:  []string{"Text of B."},
		},
		{
			name:       "small paragraphs under one heading merge",
			give:       "# H\n\nOne.\n\nTwo.\n\n\nThree.",
			wantTitles: []string{"H"},
			wantTexts:  []string{"One.\n\nTwo.\n\nThree."},
		},
		{
			name:       "paragraphs split when the passage would grow past the limit",
			give:       "# H\n\n" + long + "\n\n" + long + "\n\nshort",
			wantTitles: []string{"H", "H"},
			wantTexts:  []string{strings.TrimSpace(long), strings.TrimSpace(long) + "\n\nshort"},
		},
		{
			name:       "code fences stay whole, blank lines and # lines included",
			give:       "# H\n\nRun it:\n\n```bash\n# not a heading\n\nmake run\n```\n\nDone.",
			wantTitles: []string{"H"},
			wantTexts:  []string{"Run it:\n\n```bash\n# not a heading\n\nmake run\n```\n\nDone."},
		},
		{
			name:       "a long code block is never cut",
			give:       "# H\n\n~~~\n" + long + "\n\n" + long + "\n~~~\n\nAfter.",
			wantTitles: []string{"H", "H"},
			wantTexts:  []string{"~~~\n" + long + "\n\n" + long + "\n~~~", "After."},
		},
		{
			name:       "closing hashes and #hashtags",
			give:       "## Title ##\n\n#hashtag is text\n\n## C#\n\nSharp.",
			wantTitles: []string{"Title", "C#"},
			wantTexts:  []string{"#hashtag is text", "Sharp."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			titles, texts := rag.Split(tt.give, "doc")
			if strings.Join(titles, "|") != strings.Join(tt.wantTitles, "|") {
				t.Errorf("titles = %q, want %q", titles, tt.wantTitles)
			}
			if strings.Join(texts, "|") != strings.Join(tt.wantTexts, "|") {
				t.Errorf("texts = %q, want %q", texts, tt.wantTexts)
			}
		})
	}
}
