package layout

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
)

// fenceLine is a line that opens or closes a fenced code block, with what
// follows the fence.
var fenceLine = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})(.*)$")

// fenceProblems renders src as CommonMark and names every fenced code
// block that does not read as its author meant: one never closed (it runs
// to the end of the document), and one that swallowed a fence, as happens
// when a closing fence has text after it ("``` then") and so closes
// nothing: the paragraphs after it become code, and every fence after
// that pairs with the wrong one.
func fenceProblems(src []byte) []string {
	var problems []string
	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		block, ok := n.(*ast.FencedCodeBlock)
		if !ok || !entering {
			return ast.WalkContinue, nil
		}
		open := lineAt(src, blockStart(block, src))
		lines := block.Lines()
		end := blockStart(block, src) + len(open) + 1 // after the opening line
		if lines.Len() > 0 {
			end = lines.At(lines.Len() - 1).Stop
		}
		for i := range lines.Len() {
			seg := lines.At(i)
			if line := strings.TrimRight(string(seg.Value(src)), "\n"); fenceLine.MatchString(line) {
				problems = append(problems, fmt.Sprintf("line %d: the code block opened at line %d holds the fence %q: a fence followed by text closes nothing",
					lineNumber(src, seg.Start), lineNumber(src, blockStart(block, src)), line))
			}
		}
		if end >= len(src) {
			problems = append(problems, fmt.Sprintf("line %d: the code block %q is never closed", lineNumber(src, blockStart(block, src)), open))
			return ast.WalkContinue, nil
		}
		if closing := lineAt(src, end); !fenceLine.MatchString(closing) || strings.TrimSpace(fenceLine.FindStringSubmatch(closing)[2]) != "" {
			problems = append(problems, fmt.Sprintf("line %d: the code block opened at line %d ends without a closing fence (%q)",
				lineNumber(src, end), lineNumber(src, blockStart(block, src)), closing))
		}
		return ast.WalkContinue, nil
	})
	return problems
}

// blockStart is the offset of the line that opens block.
func blockStart(block *ast.FencedCodeBlock, src []byte) int {
	return bytes.LastIndexByte(src[:max(block.Pos(), 0)], '\n') + 1
}

// lineAt is the line of src that starts at offset.
func lineAt(src []byte, offset int) string {
	line, _, _ := strings.Cut(string(src[offset:]), "\n")
	return line
}

func lineNumber(src []byte, offset int) int {
	return bytes.Count(src[:offset], []byte("\n")) + 1
}

// The checker finds what broke the README before: it must be able to fail.
func TestFenceProblems(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // a substring of the problem; empty: none
	}{
		{"closed", "text\n\n```bash\nmake run\n```\n\nmore text\n", ""},
		{"empty block", "```\n```\n", ""},
		{"tilde", "~~~\ncode\n~~~\n", ""},
		{"unclosed", "text\n\n```bash\nmake run\n\n## Next\n", "never closed"},
		{"fence followed by text", "```bash\nmake run\n``` then open the page\n\n## Next\n\n```bash\nmake test\n```\n", "closes nothing"},
		{"longer fence inside", "````md\n```bash\nx\n```\n````\n", "closes nothing"},
	}
	for _, tt := range tests {
		got := strings.Join(fenceProblems([]byte(tt.give)), "; ")
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: problems %q, want %q", tt.name, got, tt.want)
		}
	}
}

// README.md renders as CommonMark the way it reads in an editor: every code
// block closes where it seems to, and the sections a newcomer looks for are
// headings, not text swallowed by a code block.
func TestReadmeRendersAsWritten(t *testing.T) {
	src := []byte(read(t, "README.md"))
	for _, p := range fenceProblems(src) {
		t.Error("README.md " + p)
	}
	var headings []string
	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if h, ok := n.(*ast.Heading); ok && entering && h.Level == 2 {
			var title strings.Builder
			for i := range h.Lines().Len() {
				seg := h.Lines().At(i)
				title.Write(seg.Value(src))
			}
			headings = append(headings, strings.TrimSpace(title.String()))
		}
		return ast.WalkContinue, nil
	})
	for _, want := range []string{"Two commands", "Every route, with curl", "Services and ports", "Configuration", "Tests", "Layout"} {
		if !slices.Contains(headings, want) {
			t.Errorf("README.md renders no heading %q (headings: %q)", want, headings)
		}
	}
}

// README.md links only to files that exist, and .golangci.yml's comments
// name only documents that exist: a newcomer following either to the
// design of record must not land on a file the repository never had.
func TestReadmeAndLintConfigNameExistingDocuments(t *testing.T) {
	src := []byte(read(t, "README.md"))
	links := 0
	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		link, ok := n.(*ast.Link)
		if !ok || !entering {
			return ast.WalkContinue, nil
		}
		dest, _, _ := strings.Cut(string(link.Destination), "#")
		if dest == "" || strings.Contains(dest, ":") {
			return ast.WalkContinue, nil // an anchor, a URL or mailto
		}
		links++
		if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
			t.Errorf("README.md links to %s, which does not exist", dest)
		}
		return ast.WalkContinue, nil
	})
	if links == 0 {
		t.Fatal("found no relative link in README.md: the walk is broken")
	}
	for _, m := range regexp.MustCompile(`[A-Za-z0-9_./-]+\.md\b`).FindAllString(read(t, ".golangci.yml"), -1) {
		if _, err := os.Stat(filepath.Join(root, m)); err != nil {
			t.Errorf(".golangci.yml names %s, which does not exist", m)
		}
	}
}
