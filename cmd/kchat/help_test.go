package main

import (
	"io"
	"strings"
	"testing"

	"github.com/kchat/kchat/cmd/internal/config/configtest"
)

// -h and --help list every variable the all-in-one reads, as the README's
// table does; any other argument is refused.
func TestHelpListsWhatItReads(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var out strings.Builder
		if err := run([]string{arg}, nil, &out, 0); err != nil {
			t.Fatalf("run %s: %v", arg, err)
		}
		configtest.CheckHelp(t, "kchat", out.String(), &Config{})
		for _, want := range []string{"KCHAT_ANSWERER_INSTANCE            [kchat]", "KCHAT_ADMIN_ADDR                   [127.0.0.1:8100]"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("--help lacks %q:\n%s", want, out.String())
			}
		}
	}
	if err := run([]string{"--verbose"}, nil, io.Discard, 0); err == nil || !strings.Contains(err.Error(), "--help") {
		t.Errorf("run --verbose = %v, want a refusal that points at --help", err)
	}
}
