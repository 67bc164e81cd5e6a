package llm

import (
	"errors"

	"go.uber.org/fx"

	"github.com/kchat/kchat/ports"
)

// Module provides the ports.Generator cfg.Generator names. It needs a
// Config. With KCHAT_GENERATOR=external there is no generator: the binary
// checks Config.External and leaves the generate stage out, and asking for
// a ports.Generator anyway fails the app's start with a message naming the
// variable rather than handing out a nil generator. fx builds values only
// when something asks for them, so the module is safe to include either
// way.
var Module = fx.Module("llm",
	fx.Provide(provideGenerator),
)

func provideGenerator(cfg Config) (ports.Generator, error) {
	if cfg.External() {
		return nil, errors.New("KCHAT_GENERATOR=external: an outside service answers the prompts, so this process has no generator and must not run the generate stage")
	}
	return New(cfg)
}
