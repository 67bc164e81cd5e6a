package redis

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Config configures the Redis session store. The env tags name the KCHAT_*
// variables a binary loads it from.
type Config struct {
	// URL is the server, redis://[user:password@]host:port/db (rediss:// for
	// TLS); go-redis options such as dial_timeout may be given as query
	// parameters.
	URL string `env:"KCHAT_REDIS_URL"`
	// TTL is how long an untouched session lives; every call renews it.
	TTL time.Duration `env:"KCHAT_SESSION_TTL" envDefault:"24h"`
	// MaxTurns is how many recent turns a session keeps.
	MaxTurns int `env:"KCHAT_SESSION_MAX_TURNS" envDefault:"50"`
	// KeyPrefix is put in front of every key, so that several deployments
	// (or tests) can share one Redis.
	KeyPrefix string `env:"KCHAT_REDIS_PREFIX" envDefault:"kchat:"`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{TTL: 24 * time.Hour, MaxTurns: 50, KeyPrefix: "kchat:"}
}

// Validate reports the first setting that is wrong, naming its variable.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("KCHAT_REDIS_URL is required: redis://host:port/db")
	}
	if _, err := parseURL(c.URL); err != nil {
		return err
	}
	return c.validateStore()
}

// validateStore checks what NewSessionsWithClient uses (all but the URL).
func (c Config) validateStore() error {
	switch {
	case c.TTL < time.Second || c.TTL > 365*24*time.Hour:
		return fmt.Errorf("KCHAT_SESSION_TTL must be between 1s and 8760h, got %s", c.TTL)
	case c.MaxTurns < 1 || c.MaxTurns > 10000:
		return fmt.Errorf("KCHAT_SESSION_MAX_TURNS must be between 1 and 10000, got %d", c.MaxTurns)
	case len(c.KeyPrefix) > 200:
		return errors.New("KCHAT_REDIS_PREFIX is longer than 200 characters")
	case strings.ContainsAny(c.KeyPrefix, "{}"):
		// The session id is the key's hash tag (so a script's keys share a
		// cluster slot); a brace in the prefix would move the tag.
		return fmt.Errorf("KCHAT_REDIS_PREFIX must not contain { or }, got %q", c.KeyPrefix)
	}
	return nil
}

// parseURL parses the URL without echoing it: it may hold a password.
func parseURL(raw string) (*goredis.Options, error) {
	opts, err := goredis.ParseURL(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("KCHAT_REDIS_URL is not a valid redis:// URL: %w", err)
	}
	return opts, nil
}
