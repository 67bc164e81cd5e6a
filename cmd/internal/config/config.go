// Package config loads a binary's configuration from KCHAT_* environment
// variables; nothing else in kchat reads the environment.
package config

import (
	"fmt"
	"reflect"
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
		if bad := culprits(cfg, vars); len(bad) > 0 {
			return fmt.Errorf("configuration: %s not valid: %w", strings.Join(bad, ", "), err)
		}
		return fmt.Errorf("configuration: %w", err)
	}
	if err := validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

// culprits names the variables that fail to parse on their own: the parser's
// errors name struct fields, and users know variables.
func culprits(cfg any, vars map[string]string) []string {
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		return nil
	}
	var bad []string
	for _, p := range params {
		v, ok := vars[p.Key]
		if !ok {
			continue
		}
		fresh := reflect.New(reflect.TypeOf(cfg).Elem()).Interface()
		if env.ParseWithOptions(fresh, env.Options{Environment: map[string]string{p.Key: v}}) != nil {
			bad = append(bad, fmt.Sprintf("%s=%q", p.Key, v))
		}
	}
	return bad
}
