package rag

import (
	"regexp"
	"strings"
)

// The Markdown that documents written by others use around their text
// (CommonMark, GitHub's tables, the attributes and front matter of static
// site generators), read by split.

// frontMatter drops a YAML (---) or TOML (+++) front matter block opening
// the document and returns the rest with the block's title, if it has
// one. A block that is not closed within its first 50 lines is no front
// matter: the lines are returned unchanged.
func frontMatter(lines []string) ([]string, string) {
	if len(lines) == 0 {
		return lines, ""
	}
	open := strings.TrimSpace(lines[0])
	if open != "---" && open != "+++" {
		return lines, ""
	}
	for i := 1; i < len(lines) && i <= 50; i++ {
		l := strings.TrimSpace(lines[i])
		if l != open && (open != "---" || l != "...") {
			continue
		}
		title := ""
		for _, f := range lines[1:i] {
			k, v, ok := strings.Cut(f, ":")
			if open == "+++" {
				k, v, ok = strings.Cut(f, "=")
			}
			if ok && strings.TrimSpace(k) == "title" {
				title = strings.Trim(strings.TrimSpace(v), `"'`)
			}
		}
		return lines[i+1:], title
	}
	return lines, ""
}

// setextUnderline returns 1 for a line of = and 2 for a line of -, at
// most three spaces in, that underlines the paragraph above it as a
// heading; 0 otherwise.
func setextUnderline(line string) int {
	if len(line)-len(strings.TrimLeft(line, " ")) > 3 {
		return 0
	}
	t := strings.TrimSpace(line)
	switch {
	case t == "":
		return 0
	case strings.Trim(t, "=") == "":
		return 1
	case strings.Trim(t, "-") == "":
		return 2
	}
	return 0
}

// thematicBreak is a line of three or more *, - or _ (spaces allowed).
var thematicBreak = regexp.MustCompile(`^(?:(?:\*\s*){3,}|(?:-\s*){3,}|(?:_\s*){3,})$`)

func isThematicBreak(trimmed string) bool { return thematicBreak.MatchString(trimmed) }

// attributes are the {#anchor} or {.class} that site generators let a
// heading carry ("FlexBuffers {#flexbuffers}").
var attributes = regexp.MustCompile(`\s*\{[#.][^{}]*\}\s*$`)

// headingText is a heading's words: without attributes, with Markdown's
// escapes resolved ("Use in C\#").
func headingText(s string) string {
	s = attributes.ReplaceAllString(strings.TrimSpace(s), "")
	return strings.TrimSpace(unescape.Replace(s))
}

var unescape = strings.NewReplacer(`\#`, "#", `\*`, "*", `\_`, "_", `\|`, "|", "\\`", "`", `\\`, `\`)

// isTableLine reports a line that may be a row of a pipe table.
func isTableLine(line string) bool {
	return strings.TrimSpace(line) != "" && strings.Contains(strings.ReplaceAll(line, `\|`, ""), "|")
}

// delimiterCell is a cell of a table's delimiter row: ---, :--, --: or :-:.
var delimiterCell = regexp.MustCompile(`^:?-+:?$`)

// isDelimiterRow reports the row under a table's header ("| --- | :-: |").
func isDelimiterRow(line string) bool {
	if !isTableLine(line) {
		return false
	}
	cs := cells(line)
	for _, c := range cs {
		if !delimiterCell.MatchString(c) {
			return false
		}
	}
	return len(cs) > 0
}

// cells splits a table row at its unescaped pipes, outer pipes dropped,
// each cell trimmed.
func cells(line string) []string {
	t := strings.TrimSpace(line)
	t = strings.TrimPrefix(t, "|")
	if strings.HasSuffix(t, "|") && !strings.HasSuffix(t, `\|`) {
		t = t[:len(t)-1]
	}
	var out []string
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		switch {
		case t[i] == '\\' && i+1 < len(t) && t[i+1] == '|':
			b.WriteByte('|')
			i++
		case t[i] == '|':
			out = append(out, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(t[i])
		}
	}
	return append(out, strings.TrimSpace(b.String()))
}

// tableRow renders a body row as one list item naming each cell by its
// column: "- Feature: JSON parsing; C++: Yes; Java: No". Empty cells are
// left out; a cell without a header stands alone.
func tableRow(header, row []string) string {
	var parts []string
	for i, c := range row {
		if c == "" {
			continue
		}
		if i < len(header) && header[i] != "" {
			c = header[i] + ": " + c
		}
		parts = append(parts, c)
	}
	if len(parts) == 0 {
		return ""
	}
	return "- " + strings.Join(parts, "; ")
}
