package llm

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// sentence is one candidate for an extractive answer.
type sentence struct {
	passage int // index in prompt.Passages
	pos     int // position within the passage
	text    string
}

// splitSentences cuts a passage's Markdown-ish text into sentences. Headings
// repeat the passage title and fenced code is no prose to quote, so both are
// dropped, but for code's line comments (codeComment; consecutive ones join
// as a paragraph); each list item, quote line and table row stands alone;
// paragraph lines are joined and cut at sentence ends.
func splitSentences(text string) []string {
	var out, para []string
	flush := func() {
		if len(para) > 0 {
			out = append(out, splitProse(strings.Join(para, " "))...)
			para = para[:0]
		}
	}
	inFence := false
	for line := range strings.SplitSeq(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			flush()
			inFence = !inFence
			continue
		}
		if inFence {
			if c, ok := codeComment(t); ok {
				para = append(para, c)
			} else {
				flush()
			}
			continue
		}
		switch {
		case t == "":
			flush()
		case strings.HasPrefix(t, "#"), isRule(t):
			flush()
		case strings.HasPrefix(t, "|"):
			flush()
			if row := tableRow(t); row != "" {
				out = append(out, row)
			}
		default:
			if item, ok := listItem(t); ok {
				// A list item opens its own unit; its wrapped lines join it.
				flush()
				t = item
			}
			para = append(para, strings.TrimSpace(strings.TrimLeft(t, ">")))
		}
	}
	flush()
	return out
}

// codeComment returns the text of a line comment in code ("// Get the
// union." or "# Start the broker."), or false. A comment is prose: in
// documentation made mostly of code samples it is often the only text
// that says what the sample does (docs/quality.md, "Round 3").
func codeComment(t string) (string, bool) {
	if c, ok := strings.CutPrefix(t, "//"); ok {
		c = strings.TrimSpace(strings.TrimLeft(c, "/!"))
		return c, c != ""
	}
	if c, ok := strings.CutPrefix(t, "# "); ok {
		c = strings.TrimSpace(c)
		return c, c != ""
	}
	return "", false
}

// isRule reports a thematic break or table separator such as "---" or
// "|---|:--|".
func isRule(t string) bool {
	if len(t) < 3 {
		return false
	}
	return strings.Trim(t, "-=*_|: ") == ""
}

// tableRow renders "| a | b |" as "a | b", or "" for a separator row.
func tableRow(t string) string {
	if isRule(t) {
		return ""
	}
	return strings.TrimSpace(strings.Trim(t, "|"))
}

// listItem strips a bullet ("- ", "* ", "+ ") or number ("1. ", "2) ")
// marker.
func listItem(t string) (string, bool) {
	if len(t) >= 2 && strings.ContainsRune("-*+", rune(t[0])) && t[1] == ' ' {
		return strings.TrimSpace(t[2:]), true
	}
	i := 0
	for i < len(t) && i < 4 && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i > 0 && i+1 < len(t) && (t[i] == '.' || t[i] == ')') && t[i+1] == ' ' {
		return strings.TrimSpace(t[i+2:]), true
	}
	return t, false
}

// abbreviations end in a period that does not end a sentence.
var abbreviations = map[string]bool{
	"e.g": true, "i.e": true, "eg": true, "ie": true, "cf": true, "vs": true,
	"approx": true, "incl": true, "resp": true, "fig": true, "no": true,
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "st": true,
	"al": true, "ca": true, "min": true, "max": true, "sec": true, "v": true,
}

// splitProse cuts a paragraph at ".", "!" or "?" followed by a space and
// a likely sentence start, outside `code spans` and after no abbreviation.
func splitProse(p string) []string {
	p = strings.Join(strings.Fields(p), " ")
	var out []string
	start := 0
	inCode := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '`' {
			inCode = !inCode
			continue
		}
		if inCode || (c != '.' && c != '!' && c != '?') {
			continue
		}
		end := i + 1
		for end < len(p) && strings.IndexByte(`)"'”’]*_`, p[end]) >= 0 {
			end++
		}
		if end >= len(p) || p[end] != ' ' || end+1 >= len(p) {
			continue
		}
		if c == '.' && isAbbreviation(p[start:i]) {
			continue
		}
		next, _ := utf8.DecodeRuneInString(p[end+1:])
		if !unicode.IsUpper(next) && !unicode.IsDigit(next) && !strings.ContainsRune("`\"'“‘([*_", next) {
			continue
		}
		out = appendSentence(out, p[start:end])
		start = end + 1
		i = end
	}
	return appendSentence(out, p[start:])
}

// isAbbreviation reports whether the word before a period (the end of
// before) is an abbreviation: a known one, an initial ("J.") or one with
// inner periods ("e.g", "U.S").
func isAbbreviation(before string) bool {
	w := before[strings.LastIndexAny(before, " (")+1:]
	if w == "" {
		return false
	}
	lw := strings.ToLower(w)
	if abbreviations[lw] || strings.Contains(w, ".") && !strings.ContainsAny(w, "/") && len(w) <= 6 {
		return true
	}
	r, size := utf8.DecodeRuneInString(w)
	return size == len(w) && unicode.IsUpper(r)
}

func appendSentence(out []string, s string) []string {
	if s = strings.TrimSpace(s); s != "" {
		out = append(out, s)
	}
	return out
}
