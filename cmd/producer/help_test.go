package main

import (
	"io"
	"strings"
	"testing"

	"github.com/kchat/kchat/cmd/internal/config/configtest"
	"github.com/kchat/kchat/cmd/internal/runner"
)

// -h and --help list every variable the producer reads (its Config and the
// admin listener runner.Main loads), as the README's table does; any other
// argument is refused.
func TestHelpListsWhatItReads(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var out strings.Builder
		if err := run([]string{arg}, nil, &out); err != nil {
			t.Fatalf("run %s: %v", arg, err)
		}
		configtest.CheckHelp(t, "producer", out.String(), &Config{}, &runner.AdminConfig{})
	}
	if err := run([]string{"--verbose"}, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "--help") {
		t.Errorf("run --verbose = %v, want a refusal that points at --help", err)
	}
}
