package redis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/kchat/kchat/adapters/redis"
)

func TestConfigValidate(t *testing.T) {
	valid := redis.DefaultConfig()
	valid.URL = "redis://127.0.0.1:6379/0"
	with := func(change func(*redis.Config)) redis.Config {
		c := valid
		change(&c)
		return c
	}
	tests := []struct {
		name string
		give redis.Config
		want string // a substring of the error; "" for valid
	}{
		{"defaults with a URL", valid, ""},
		{"TLS URL", with(func(c *redis.Config) { c.URL = "rediss://user:pw@cache.internal:6380/2" }), ""},
		{"empty prefix", with(func(c *redis.Config) { c.KeyPrefix = "" }), ""},
		{"no URL", with(func(c *redis.Config) { c.URL = "" }), "KCHAT_REDIS_URL"},
		{"wrong scheme", with(func(c *redis.Config) { c.URL = "http://127.0.0.1:6379" }), "KCHAT_REDIS_URL"},
		{"bad database", with(func(c *redis.Config) { c.URL = "redis://127.0.0.1:6379/zero" }), "KCHAT_REDIS_URL"},
		{"unparsable", with(func(c *redis.Config) { c.URL = "redis://user:s3cret@host:6379/%zz" }), "KCHAT_REDIS_URL"},
		{"bad query option", with(func(c *redis.Config) { c.URL = "redis://host:6379/0?dial_timeout=soon" }), "KCHAT_REDIS_URL"},
		{"zero TTL", with(func(c *redis.Config) { c.TTL = 0 }), "KCHAT_SESSION_TTL"},
		{"sub-second TTL", with(func(c *redis.Config) { c.TTL = 500 * time.Millisecond }), "KCHAT_SESSION_TTL"},
		{"zero turns", with(func(c *redis.Config) { c.MaxTurns = 0 }), "KCHAT_SESSION_MAX_TURNS"},
		{"too many turns", with(func(c *redis.Config) { c.MaxTurns = 10001 }), "KCHAT_SESSION_MAX_TURNS"},
		{"brace in prefix", with(func(c *redis.Config) { c.KeyPrefix = "kchat{x}:" }), "KCHAT_REDIS_PREFIX"},
		{"long prefix", with(func(c *redis.Config) { c.KeyPrefix = strings.Repeat("p", 201) }), "KCHAT_REDIS_PREFIX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: %v, want an error naming %s", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("the error shows the password: %v", err)
			}
			if _, nerr := redis.NewSessions(tt.give); (nerr == nil) != (err == nil) {
				t.Fatalf("NewSessions: %v, Validate: %v; want both to agree", nerr, err)
			}
		})
	}
}

// TestConfigFromEnv checks that the env tags' defaults are DefaultConfig.
func TestConfigFromEnv(t *testing.T) {
	t.Setenv("KCHAT_REDIS_URL", "redis://127.0.0.1:6379/0")
	got, err := env.ParseAs[redis.Config]()
	if err != nil {
		t.Fatal(err)
	}
	want := redis.DefaultConfig()
	want.URL = "redis://127.0.0.1:6379/0"
	if got != want {
		t.Fatalf("from env %+v, want %+v", got, want)
	}

	t.Setenv("KCHAT_SESSION_TTL", "90m")
	t.Setenv("KCHAT_SESSION_MAX_TURNS", "7")
	t.Setenv("KCHAT_REDIS_PREFIX", "staging:")
	got, err = env.ParseAs[redis.Config]()
	if err != nil {
		t.Fatal(err)
	}
	if got.TTL != 90*time.Minute || got.MaxTurns != 7 || got.KeyPrefix != "staging:" {
		t.Fatalf("from env %+v", got)
	}
}

func TestNewSessionsWithClientValidates(t *testing.T) {
	if _, err := redis.NewSessionsWithClient(nil, redis.Config{TTL: time.Hour}); err == nil || !strings.Contains(err.Error(), "KCHAT_SESSION_MAX_TURNS") {
		t.Fatalf("got %v, want an error naming KCHAT_SESSION_MAX_TURNS", err)
	}
}
