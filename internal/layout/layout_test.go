package layout

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository root, from this package's folder.
var root = filepath.Join("..", "..")

const module = "github.com/kchat/kchat"

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pathLike matches a backquoted repository path in the design document:
// something with a slash or a file extension, without spaces.
var pathLike = regexp.MustCompile("`([A-Za-z0-9_.\\-]+(?:/[A-Za-z0-9_.\\-*]+)+/?|[A-Za-z0-9_\\-]+\\.(?:go|md|yml|yaml|sh|js|mjs|json|mod|sum))`")

// Every repository path docs/design.md names exists: the design of record
// cannot point a newcomer at a file that moved.
func TestDesignNamesOnlyExistingPaths(t *testing.T) {
	doc := read(t, "docs/design.md")
	checked := 0
	for _, m := range pathLike.FindAllStringSubmatch(doc, -1) {
		p := strings.TrimSuffix(m[1], "/")
		if strings.HasPrefix(p, "github.com/") || strings.Contains(p, "://") || strings.HasPrefix(p, "go.uber.org") || strings.HasPrefix(p, "golang.org") {
			continue // a module path, not a file of ours
		}
		matches, err := filepath.Glob(filepath.Join(root, p))
		if err != nil || len(matches) == 0 {
			t.Errorf("docs/design.md names %s, which does not exist", p)
		}
		checked++
	}
	if checked < 40 {
		t.Fatalf("only %d paths found in docs/design.md: the pattern no longer matches how it names files", checked)
	}
}

// sectionRef matches a code comment's pointer into the design document:
// docs/design.md, "Section" (the comment may wrap before the quote).
var sectionRef = regexp.MustCompile(`docs/design\.md,?\s*(?://\s*)?\(?"([^"]+)"`)

// Every section a comment points at is a heading of docs/design.md.
func TestCommentsPointAtDesignSections(t *testing.T) {
	headings := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(read(t, "docs/design.md")))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "#") {
			headings[strings.TrimSpace(strings.TrimLeft(line, "#"))] = true
		}
	}
	refs := 0
	for _, file := range sourceFiles(t) {
		if file == "internal/layout/layout_test.go" {
			continue // its own patterns are not references
		}
		src := read(t, file)
		// Join comment lines so a reference split over two lines is seen.
		flat := regexp.MustCompile(`\n\s*(//|#)\s*`).ReplaceAllString(src, " ")
		for _, m := range sectionRef.FindAllStringSubmatch(flat, -1) {
			refs++
			if !headings[m[1]] {
				t.Errorf("%s points at docs/design.md section %q, which is not a heading there", file, m[1])
			}
		}
	}
	if refs < 10 {
		t.Fatalf("only %d references to docs/design.md sections found", refs)
	}
}

// sourceFiles lists the tracked and untracked, not ignored, source files.
func sourceFiles(t *testing.T) []string {
	t.Helper()
	out := gitOutput(t, "ls-files", "--cached", "--others", "--exclude-standard")
	var files []string
	for _, f := range strings.Fields(out) {
		switch filepath.Ext(f) {
		case ".go", ".js", ".mjs", ".sh", ".yml", ".yaml":
			if _, err := os.Stat(filepath.Join(root, f)); err == nil {
				files = append(files, f)
			}
		}
	}
	return files
}

func gitOutput(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("git %s: %v (not a git checkout)", strings.Join(args, " "), err)
	}
	return string(out)
}

// No hand-written Go file exceeds 400 lines; tests, the test kits and
// generated code are exempt.
func TestHandWrittenFilesStaySmall(t *testing.T) {
	for _, f := range sourceFiles(t) {
		if !strings.HasSuffix(f, ".go") || strings.HasSuffix(f, "_test.go") ||
			strings.HasPrefix(f, "ports/porttest/") || strings.HasPrefix(f, "internal/kafkatest/") {
			continue
		}
		src := read(t, f)
		if strings.Contains(src, "Code generated") && strings.Contains(src, "DO NOT EDIT") {
			continue
		}
		if n := strings.Count(src, "\n"); n > 400 {
			t.Errorf("%s has %d lines; split it so each file holds one idea (at most 400)", f, n)
		}
	}
}

// deps lists the packages pkg imports, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.String())
	}
	return strings.Fields(string(out))
}

// The layers import what docs/design.md ("Layers") allows: domain only the
// standard library; no fx below cmd/; no binary a test kit.
func TestLayers(t *testing.T) {
	for _, d := range deps(t, "./domain/...") {
		if strings.Contains(strings.SplitN(d, "/", 2)[0], ".") && !strings.HasPrefix(d, module+"/domain") {
			t.Errorf("domain depends on %s; it may use only the standard library", d)
		}
	}
	for _, layer := range []string{"./domain/...", "./ports", "./app/...", "./adapters/..."} {
		for _, d := range deps(t, layer) {
			if strings.HasPrefix(d, "go.uber.org/fx") {
				t.Errorf("%s depends on %s; fx wiring lives under cmd/ only", layer, d)
				break
			}
		}
	}
	for _, d := range deps(t, "./cmd/...") {
		if d == module+"/internal/kafkatest" || d == module+"/internal/history" || d == module+"/internal/testenv" || d == module+"/ports/porttest" {
			t.Errorf("a binary depends on the test kit %s", d)
		}
	}
}

// What go build drops at the root and what the tools leave behind is
// ignored, so it cannot be committed by accident.
func TestBuildOutputsAreIgnored(t *testing.T) {
	outputs := []string{"kchat", "producer", "consumer", "gateway", "answerer", "ask", "kbench", "openapi",
		"bin/kchat", "x.test", "cover.out", ".schemathesis/default/cache/crashes/manifest.json",
		"adapters/web/e2e/node_modules/x.js", "adapters/web/e2e/shot.png"}
	cmd := exec.Command("git", append([]string{"check-ignore", "--no-index"}, outputs...)...)
	cmd.Dir = root
	out, _ := cmd.Output()
	ignored := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		ignored[l] = true
	}
	if len(ignored) == 0 {
		if _, err := exec.LookPath("git"); err != nil {
			t.Skip("no git")
		}
	}
	for _, o := range outputs {
		if !ignored[o] {
			t.Errorf("%s is not ignored by .gitignore", o)
		}
	}
	tracked := gitOutput(t, "ls-files")
	for _, f := range strings.Fields(tracked) {
		if f == "kchat" || strings.HasPrefix(f, ".schemathesis/") || strings.HasPrefix(f, "bin/") {
			t.Errorf("%s is committed: it is a build or test output", f)
		}
	}
}
