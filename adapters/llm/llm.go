package llm

import (
	"github.com/kchat/kchat/ports"
)

// New returns the generator cfg.Generator names, after validating cfg. For
// external it returns (nil, nil): an outside service answers the prompts
// and the process runs no generate stage (see Config.External).
func New(cfg Config) (ports.Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Generator {
	case GeneratorOpenAI:
		return NewOpenAI(cfg)
	case GeneratorExternal:
		return nil, nil
	default:
		return &Extractive{Pace: cfg.Pace}, nil
	}
}
