package main

import (
	"io"
	"testing"

	"github.com/kchat/kchat/cmd/internal/config/configtest"
	"github.com/kchat/kchat/cmd/internal/runner"
)

// -h and --help list every variable the answerer reads (its Config and the
// admin listener runner.Main loads), as the README's table does; any other
// argument is refused.
func TestHelpListsWhatItReads(t *testing.T) {
	configtest.CheckBinary(t, "answerer", func(args []string, out io.Writer) error { return run(args, nil, out) }, &Config{}, &runner.AdminConfig{})
}
