package profanity

import (
	"fmt"
	"strings"
)

// Config configures the filter. The env tags name the KCHAT_* variables a
// binary loads it from.
type Config struct {
	// Enabled turns masking on; when off, Censor returns every text as it came.
	Enabled bool `env:"KCHAT_PROFANITY_FILTER" envDefault:"true"`
	// ExtraAllowed are innocent words the filter catches, added to the
	// built-in allow-list. Each also clears the longer words containing it
	// ("grape" clears "grapefruit").
	ExtraAllowed []string `env:"KCHAT_PROFANITY_ALLOW" envSeparator:","`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{Enabled: true}
}

// Validate reports the first setting that is wrong, naming its variable.
func (c Config) Validate() error {
	for _, w := range c.ExtraAllowed {
		w = strings.TrimSpace(w)
		// go-away compares unaccented, de-leeted lower-case letters, so any
		// other character would keep the entry from ever matching.
		for _, r := range w {
			if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
				return fmt.Errorf("KCHAT_PROFANITY_ALLOW: %q must be one word of ASCII letters a-z, without accents", w)
			}
		}
	}
	return nil
}
