package rag

import (
	"path"
	"strings"
)

// maxPassageChars is how long merged paragraphs may grow: long enough to
// carry a whole idea, short enough that BM25's length normalisation and the
// prompt's budget favour focused passages. A single paragraph or code block
// longer than this stays whole.
const maxPassageChars = 800

// titleSep joins the headings of a title path.
const titleSep = " › "

// chunk is one passage before indexing.
type chunk struct {
	Title string
	Text  string
}

// split cuts a Markdown (or plain text) document into passages: a new
// section at each heading (ATX, "# Title", or setext, a title underlined
// with === or ---), then paragraphs at blank lines, with consecutive
// paragraphs of a section merged up to maxPassageChars. Fenced code blocks
// (``` or ~~~) are kept whole, blank lines included, and never read as
// headings. Front matter (YAML between --- lines, TOML between +++ lines)
// is dropped; its title, if any, names the text before the first heading,
// which is otherwise titled fallback. A pipe table becomes one paragraph
// per row, each cell named by its column ("- Feature: JSON parsing; Go:
// No"), so a long table splits across passages and a row reads alone.
// Each passage's title is its heading path ("Consumer API › Delivery
// guarantees"), under the document's title when a later level-1 heading
// replaced it ("FlexBuffers › Usage in Java").
func split(doc, fallback string) []chunk {
	lines := strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n")
	lines, title := frontMatter(lines)
	if title != "" {
		fallback = title
	}
	// docRoot is the document's title (its front matter's or its first
	// level-1 heading): a later level-1 heading ("# Usage in Java" after
	// "FlexBuffers\n===") names a part of the document, not another one.
	docRoot := title
	var (
		out      []chunk
		headings []string // headings[i] is the current level-(i+1) heading
		paras    []string // finished paragraphs of the current section
		cur      []string // lines of the paragraph being read
		fence    string   // the opening fence while inside a code block
	)
	pathTitle := func() string {
		var parts []string
		for _, h := range headings {
			if h != "" {
				parts = append(parts, h)
			}
		}
		if len(parts) == 0 {
			return fallback
		}
		if docRoot != "" && parts[0] != docRoot {
			parts = append([]string{docRoot}, parts...)
		}
		return strings.Join(parts, titleSep)
	}
	endParagraph := func() {
		if p := strings.TrimSpace(strings.Join(cur, "\n")); p != "" {
			paras = append(paras, p)
		}
		cur = cur[:0]
	}
	endSection := func() {
		endParagraph()
		t := pathTitle()
		for _, text := range merge(paras) {
			out = append(out, chunk{Title: t, Text: text})
		}
		paras = paras[:0]
	}
	startSection := func(level int, text string) {
		endSection()
		for len(headings) < level {
			headings = append(headings, "")
		}
		headings = headings[:level]
		headings[level-1] = text
		if docRoot == "" && level == 1 {
			docRoot = text
		}
	}

	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			cur = append(cur, line)
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				fence = ""
				endParagraph()
			}
			continue
		}
		if f := openingFence(trimmed); f != "" {
			endParagraph()
			fence = f
			cur = append(cur, line)
			continue
		}
		if level, text, ok := heading(line); ok {
			startSection(level, text)
			continue
		}
		if level := setextUnderline(line); level > 0 && len(cur) > 0 && !isTableLine(cur[len(cur)-1]) {
			text := headingText(strings.Join(cur, " "))
			cur = cur[:0]
			if text != "" {
				startSection(level, text)
			}
			continue
		}
		if i+1 < len(lines) && isTableLine(line) && isDelimiterRow(lines[i+1]) {
			endParagraph()
			header := cells(line)
			i++ // the delimiter row
			for i+1 < len(lines) && isTableLine(lines[i+1]) {
				i++
				if row := tableRow(header, cells(lines[i])); row != "" {
					paras = append(paras, row)
				}
			}
			continue
		}
		if trimmed == "" || isThematicBreak(trimmed) {
			endParagraph()
			continue
		}
		cur = append(cur, line)
	}
	endSection() // an unclosed fence runs to the end of the document
	return out
}

// merge joins consecutive paragraphs while the result stays within
// maxPassageChars.
func merge(paras []string) []string {
	var out []string
	var b strings.Builder
	for _, p := range paras {
		if b.Len() > 0 && b.Len()+2+len(p) > maxPassageChars {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(p)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// openingFence returns the fence (three or more backticks or tildes) that
// line opens, or "".
func openingFence(trimmed string) string {
	for _, c := range []string{"`", "~"} {
		n := len(trimmed) - len(strings.TrimLeft(trimmed, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

// heading parses an ATX heading ("## Title ##"), indented at most three
// spaces as CommonMark says.
func heading(line string) (level int, text string, ok bool) {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return 0, "", false
	}
	level = len(s) - len(strings.TrimLeft(s, "#"))
	if level < 1 || level > 6 {
		return 0, "", false
	}
	rest := s[level:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return 0, "", false // "#hashtag" is text
	}
	text = strings.TrimSpace(rest)
	if t := strings.TrimRight(text, "#"); t != text && (t == "" || strings.HasSuffix(t, " ")) {
		text = strings.TrimSpace(t) // closing sequence: "## Title ##"; "C#" stays
	}
	if text = headingText(text); text == "" {
		return 0, "", false
	}
	return level, text, true
}

// docTitle is the title of text that precedes a document's first heading:
// its file name without the extension.
func docTitle(source string) string {
	base := path.Base(source)
	return strings.TrimSuffix(base, path.Ext(base))
}
