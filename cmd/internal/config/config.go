// Package config loads a binary's configuration from KCHAT_* environment
// variables; nothing else in kchat reads the environment.
package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Load fills cfg (a pointer to a struct with env tags) from environ, a list
// of KEY=value pairs (os.Environ()), and validates it with validate. Errors
// name the variable that is wrong.
func Load(cfg any, environ []string, validate func() error) error {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: vars}); err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) {
			msgs := make([]string, len(agg.Errors))
			for i, e := range agg.Errors {
				msgs[i] = e.Error()
			}
			return fmt.Errorf("configuration: %s", strings.Join(msgs, "; "))
		}
		return fmt.Errorf("configuration: %w", err)
	}
	if err := validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}
