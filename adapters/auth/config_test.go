package auth_test

import (
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"

	"github.com/kchat/kchat/adapters/auth"
)

const secret = "0123456789abcdef0123456789abcdef" // 32 bytes

func TestConfigValidate(t *testing.T) {
	token := func(change func(*auth.Config)) auth.Config {
		c := auth.Config{Mode: auth.ModeToken, Tokens: []string{"s3cret:alice"}}
		change(&c)
		return c
	}
	tests := []struct {
		name string
		give auth.Config
		want string // a substring of the error; "" for valid
	}{
		{"defaults", auth.DefaultConfig(), ""},
		{"static tokens", token(func(*auth.Config) {}), ""},
		{"spaces around entries", token(func(c *auth.Config) { c.Tokens = []string{"a:alice", " b:bob "} }), ""},
		{"colon in user", token(func(c *auth.Config) { c.Tokens = []string{"a:team:alice"} }), ""},
		{"jwt only", token(func(c *auth.Config) { c.Tokens, c.JWTSecret = nil, secret }), ""},
		{"both", token(func(c *auth.Config) { c.JWTSecret = secret }), ""},
		{"empty mode", auth.Config{}, "KCHAT_AUTH must"},
		{"unknown mode", auth.Config{Mode: "basic"}, "KCHAT_AUTH must"},
		{"upper-case mode", auth.Config{Mode: "TOKEN", Tokens: []string{"a:b"}}, "KCHAT_AUTH must"},
		{"none with tokens", auth.Config{Mode: auth.ModeNone, Tokens: []string{"a:b"}}, "KCHAT_AUTH_TOKENS"},
		{"none with secret", auth.Config{Mode: auth.ModeNone, JWTSecret: secret}, "KCHAT_AUTH_JWT_SECRET"},
		{"token without credentials", auth.Config{Mode: auth.ModeToken}, "KCHAT_AUTH_TOKENS or KCHAT_AUTH_JWT_SECRET"},
		{"entry without colon", token(func(c *auth.Config) { c.Tokens = []string{"s3cret"} }), "KCHAT_AUTH_TOKENS entry 1"},
		{"entry without token", token(func(c *auth.Config) { c.Tokens = []string{"a:alice", ":bob"} }), "KCHAT_AUTH_TOKENS entry 2"},
		{"entry without user", token(func(c *auth.Config) { c.Tokens = []string{"s3cret:"} }), "KCHAT_AUTH_TOKENS entry 1"},
		{"empty entry", token(func(c *auth.Config) { c.Tokens = []string{""} }), "KCHAT_AUTH_TOKENS entry 1"},
		{"long user", token(func(c *auth.Config) { c.Tokens = []string{"a:" + strings.Repeat("u", 129)} }), "KCHAT_AUTH_TOKENS entry 1"},
		{"control in user", token(func(c *auth.Config) { c.Tokens = []string{"a:al\x00ice"} }), "KCHAT_AUTH_TOKENS entry 1"},
		{"bidi override in user", token(func(c *auth.Config) { c.Tokens = []string{"a:al\u202eice"} }), "KCHAT_AUTH_TOKENS entry 1"},
		{"repeated token", token(func(c *auth.Config) { c.Tokens = []string{"a:alice", "a:bob"} }), "KCHAT_AUTH_TOKENS entry 2 repeats"},
		{"short secret", token(func(c *auth.Config) { c.JWTSecret = secret[:31] }), "KCHAT_AUTH_JWT_SECRET must be at least 32 bytes"},
		{"header with a proxy", auth.Config{Mode: auth.ModeHeader, TrustedProxies: []string{"10.0.0.0/8"}}, ""},
		{"header without proxies", auth.Config{Mode: auth.ModeHeader}, "KCHAT_TRUSTED_PROXIES"},
		{"header with empty proxies", auth.Config{Mode: auth.ModeHeader, TrustedProxies: []string{" "}}, "KCHAT_TRUSTED_PROXIES"},
		{"header with tokens", auth.Config{Mode: auth.ModeHeader, TrustedProxies: []string{"10.0.0.1"}, Tokens: []string{"a:b"}}, "KCHAT_AUTH_TOKENS"},
		{"cookie key", auth.Config{Mode: auth.ModeNone, CookieKey: secret}, ""},
		{"short cookie key", auth.Config{Mode: auth.ModeNone, CookieKey: secret[:31]}, "KCHAT_COOKIE_KEY must be at least 32 bytes"},
		{"proxies of every form", auth.Config{Mode: auth.ModeNone, TrustedProxies: []string{"10.0.0.0/8", " 192.0.2.1 ", "2001:db8::/32", "::1"}}, ""},
		{"bad proxy", auth.Config{Mode: auth.ModeNone, TrustedProxies: []string{"10.0.0.0/8", "proxy.local"}}, "KCHAT_TRUSTED_PROXIES entry 2"},
		{"bad prefix length", auth.Config{Mode: auth.ModeNone, TrustedProxies: []string{"10.0.0.0/33"}}, "KCHAT_TRUSTED_PROXIES entry 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := auth.New(tt.give, slog.New(slog.DiscardHandler), nil); err != nil {
					t.Fatalf("New() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := auth.New(tt.give, slog.New(slog.DiscardHandler), nil); err == nil {
				t.Fatal("New() accepted a config Validate refuses")
			}
		})
	}
}

func TestConfigErrorsDoNotQuoteSecrets(t *testing.T) {
	for _, give := range []auth.Config{
		{Mode: auth.ModeToken, Tokens: []string{"hunter2"}},
		{Mode: auth.ModeToken, Tokens: []string{"hunter2:alice", "hunter2:bob"}},
		{Mode: auth.ModeToken, JWTSecret: "hunter2"},
		{Mode: auth.ModeNone, CookieKey: "hunter2"},
	} {
		if err := give.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Validate() = %v, want an error without the secret", err)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("KCHAT_AUTH", "token")
	t.Setenv("KCHAT_AUTH_TOKENS", "t1:alice,t2:bob")
	t.Setenv("KCHAT_AUTH_JWT_SECRET", secret)
	t.Setenv("KCHAT_TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.1")
	cfg, err := env.ParseAs[auth.Config]()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != auth.ModeToken || len(cfg.Tokens) != 2 || cfg.Tokens[1] != "t2:bob" || cfg.JWTSecret != secret || len(cfg.TrustedProxies) != 2 {
		t.Fatalf("parsed %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigDefaultsMatchEnvDefaults(t *testing.T) {
	for _, k := range []string{"KCHAT_AUTH", "KCHAT_AUTH_TOKENS", "KCHAT_AUTH_JWT_SECRET", "KCHAT_COOKIE_KEY", "KCHAT_TRUSTED_PROXIES"} {
		t.Setenv(k, "") // restored after the test
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := env.ParseAs[auth.Config]()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != auth.DefaultConfig().Mode || cfg.Tokens != nil || cfg.JWTSecret != "" || cfg.CookieKey != "" || cfg.TrustedProxies != nil {
		t.Fatalf("env defaults %+v, DefaultConfig %+v", cfg, auth.DefaultConfig())
	}
}

// A gateway of its own in none mode needs the cookie key every replica
// shares; the other modes need none.
func TestRequireCookieKey(t *testing.T) {
	if err := auth.DefaultConfig().RequireCookieKey(); err == nil || !strings.Contains(err.Error(), "KCHAT_COOKIE_KEY is required") || !strings.Contains(err.Error(), "openssl rand -hex 32") {
		t.Fatalf("RequireCookieKey() = %v, want an error naming KCHAT_COOKIE_KEY and how to make one", err)
	}
	for _, ok := range []auth.Config{
		{Mode: auth.ModeNone, CookieKey: secret},
		{Mode: auth.ModeToken, Tokens: []string{"a:b"}},
		{Mode: auth.ModeHeader, TrustedProxies: []string{"10.0.0.1"}},
	} {
		if err := ok.RequireCookieKey(); err != nil {
			t.Errorf("RequireCookieKey(%s) = %v", ok.Mode, err)
		}
	}
}
