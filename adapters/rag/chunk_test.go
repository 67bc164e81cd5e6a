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
		{
			name:       "setext headings, with attributes and escapes; a later level-1 heading stays under the title",
			give:       "FlexBuffers    {#flexbuffers}\n==========\n\nIntro.\n\nUse in C\\#\n------\n\nSharp.\n\n# Usage {.note}\n\nText.",
			wantTitles: []string{"FlexBuffers", "FlexBuffers › Use in C#", "FlexBuffers › Usage"},
			wantTexts:  []string{"Intro.", "Sharp.", "Text."},
		},
		{
			name:       "a setext title may span lines; a rule after a blank line is no heading",
			give:       "A long\ntitle\n===\n\nOne.\n\n---\n\nTwo.\n\n* * *\n\nThree.",
			wantTitles: []string{"A long title"},
			wantTexts:  []string{"One.\n\nTwo.\n\nThree."},
		},
		{
			name:       "content tabs and admonitions are text",
			give:       "# H\n\n=== \"C++\"\n\n!!! note\n    Mind it.",
			wantTitles: []string{"H"},
			wantTexts:  []string{"=== \"C++\"\n\n!!! note\n    Mind it."},
		},
		{
			name:       "YAML front matter titles the document",
			give:       "---\nlayout: default\ntitle: \"Custom marshalers\"\nnav_order: 6\n---\n\nIntro.\n\n## Stream delimiters\n\nNewlines.",
			wantTitles: []string{"Custom marshalers", "Custom marshalers › Stream delimiters"},
			wantTexts:  []string{"Intro.", "Newlines."},
		},
		{
			name:       "TOML front matter",
			give:       "+++\ntitle = 'Install'\n+++\nRun it.",
			wantTitles: []string{"Install"},
			wantTexts:  []string{"Run it."},
		},
		{
			name:       "a rule that closes nothing is no front matter",
			give:       "---\n\nText.",
			wantTitles: []string{"doc"},
			wantTexts:  []string{"Text."},
		},
		{
			name:       "pipe tables become a row per item, cells named by column",
			give:       "# Support\n\nThe matrix:\nFeature | C++ | Go\n------- | :-: | --\nJSON parsing | Yes | No\nReflection | Yes |\n\n| Size | Type |\n|---|---|\n| 8-bit | `byte`, a \\| b |\n\nAfter.",
			wantTitles: []string{"Support"},
			wantTexts: []string{"The matrix:\n\n- Feature: JSON parsing; C++: Yes; Go: No\n\n- Feature: Reflection; C++: Yes\n\n" +
				"- Size: 8-bit; Type: `byte`, a | b\n\nAfter."},
		},
		{
			name:       "a long table splits across passages",
			give:       "# T\n\n| Key | Value |\n|--|--|\n" + strings.Repeat("| k | "+strings.Repeat("v", 300)+" |\n", 4),
			wantTitles: []string{"T", "T"},
			wantTexts: []string{
				strings.Repeat("- Key: k; Value: "+strings.Repeat("v", 300)+"\n\n", 2)[:2*(len("- Key: k; Value: ")+300)+2],
				strings.Repeat("- Key: k; Value: "+strings.Repeat("v", 300)+"\n\n", 2)[:2*(len("- Key: k; Value: ")+300)+2],
			},
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
