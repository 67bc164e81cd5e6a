// Package configtest is a test kit: it checks that a binary's --help and
// the README's configuration table name exactly the variables the binary
// reads, as its config structs' env tags say.
package configtest

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
)

// services are the binaries "every service" means in the README's table.
var services = []string{"producer", "consumer", "answerer", "gateway"}

// binaries are the names the table's "read by" column may use.
var binaries = append(slices.Clone(services), "kchat", "ask")

var helpLine = regexp.MustCompile(`(?m)^\s+(KCHAT_[A-Z0-9_]+)\s+\[`)

// CheckHelp fails t unless help (the binary's answer to --help) and the
// README's configuration table (its "read by" column) each name exactly
// the variables the env tags of cfgs (pointers to every struct the binary
// loads) name, and unless the README gives each envDefault default.
func CheckHelp(t *testing.T, binary, help string, cfgs ...any) {
	t.Helper()
	reads := map[string]string{} // variable → envDefault
	for _, cfg := range cfgs {
		params, err := env.GetFieldParams(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range params {
			reads[p.Key] = p.DefaultValue
		}
	}
	if len(reads) == 0 {
		t.Fatalf("%s: no env tag in its config structs: the check is broken", binary)
	}
	inHelp := map[string]bool{}
	for _, m := range helpLine.FindAllStringSubmatch(help, -1) {
		inHelp[m[1]] = true
	}
	table := ReadmeTable(t)
	inReadme := map[string]bool{}
	for v, row := range table {
		if slices.Contains(row.UsedBy, binary) {
			inReadme[v] = true
		}
	}
	for v, def := range reads {
		if !inHelp[v] {
			t.Errorf("%s reads %s; its --help does not list it", binary, v)
		}
		if !inReadme[v] {
			t.Errorf("%s reads %s; the README's table does not name %s under \"used by\"", binary, v, binary)
		}
		if row, ok := table[v]; ok && def != "" && !strings.Contains(row.Default, "`"+def+"`") {
			t.Errorf("README gives %s the default %q; the code's is `%s`", v, row.Default, def)
		}
	}
	for v := range inHelp {
		if _, ok := reads[v]; !ok {
			t.Errorf("%s --help lists %s, which it does not read", binary, v)
		}
	}
	for v := range inReadme {
		if _, ok := reads[v]; !ok {
			t.Errorf("the README says %s reads %s; it does not", binary, v)
		}
	}
}

// Row is one variable of the README's configuration table.
type Row struct {
	Default string
	UsedBy  []string // binaries
}

// ReadmeTable reads the table of README.md's "Configuration" section: each
// variable with its default and the binaries that read it. A row may name
// several variables (`A` / `B`).
func ReadmeTable(t *testing.T) map[string]Row {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	name := regexp.MustCompile("`(KCHAT_[A-Z0-9_]+)`")
	rows := map[string]Row{}
	inTable := false
	for line := range strings.SplitSeq(section, "\n") {
		if strings.HasPrefix(line, "| variable | default | read by |") {
			inTable = true
			continue
		}
		if inTable && !strings.HasPrefix(line, "|") {
			break
		}
		if !inTable || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.SplitN(strings.TrimPrefix(line, "| "), " | ", 4)
		if len(cells) < 4 {
			t.Fatalf("README configuration row has fewer than 4 cells: %s", line)
		}
		var row Row
		row.Default = cells[1]
		for by := range strings.SplitSeq(cells[2], ", ") {
			switch {
			case by == "every service":
				row.UsedBy = append(row.UsedBy, services...)
			case slices.Contains(binaries, by):
				row.UsedBy = append(row.UsedBy, by)
			default:
				t.Errorf("README configuration row %s: %q in \"used by\" is no binary (want %s or \"every service\")", cells[0], by, strings.Join(binaries, ", "))
			}
		}
		for _, m := range name.FindAllStringSubmatch(cells[0], -1) {
			rows[m[1]] = row
		}
	}
	if len(rows) == 0 {
		t.Fatal("found no row in README.md's configuration table: the parser is broken")
	}
	return rows
}

// repoRoot is the folder of go.mod, above the test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// CheckBinary checks a service binary's arguments: run (its main's run,
// with the arguments and where to write) answers -h and --help with the
// variables cfgs name (CheckHelp), and refuses any other argument with an
// error that points at --help.
func CheckBinary(t *testing.T, binary string, run func(args []string, out io.Writer) error, cfgs ...any) {
	t.Helper()
	for _, arg := range []string{"-h", "--help"} {
		var out strings.Builder
		if err := run([]string{arg}, &out); err != nil {
			t.Fatalf("run %s: %v", arg, err)
		}
		CheckHelp(t, binary, out.String(), cfgs...)
	}
	if err := run([]string{"--verbose"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--help") {
		t.Errorf("run --verbose = %v, want a refusal that points at --help", err)
	}
}
