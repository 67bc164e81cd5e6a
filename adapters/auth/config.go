package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/kchat/kchat/domain"
)

// Modes of KCHAT_AUTH (docs/security.md, "Gateway trust boundaries").
const (
	// ModeNone authenticates no one: each visitor gets an identity of its
	// own, a random id in a signed cookie. Development and demos.
	ModeNone = "none"
	// ModeHeader believes the user a trusted proxy in front names in the
	// X-User-ID header; the proxy authenticates.
	ModeHeader = "header"
	// ModeToken requires a static bearer token or an HS256 JWT.
	ModeToken = "token"
)

// CookieKeyVar is the variable of the key that signs visitor cookies.
const CookieKeyVar = "KCHAT_COOKIE_KEY"

// minSecretLen is the HS256 key size RFC 7518 §3.2 asks for: a shorter
// secret can be brute-forced offline from any token it signed.
const minSecretLen = 32

// Config configures authentication. The env tags name the KCHAT_* variables
// a binary loads it from.
type Config struct {
	// Mode is ModeNone, ModeHeader or ModeToken.
	Mode string `env:"KCHAT_AUTH" envDefault:"none"`
	// Tokens are static bearer tokens, each "token:user"; the token is
	// everything before the first colon, so it cannot contain one. Spaces
	// around an entry are ignored.
	Tokens []string `env:"KCHAT_AUTH_TOKENS" envSeparator:","`
	// JWTSecret is the HS256 key that signs accepted JWTs, at least 32 bytes.
	JWTSecret string `env:"KCHAT_AUTH_JWT_SECRET"`
	// CookieKey signs the visitor cookies of ModeNone, at least 32 bytes,
	// the same in every gateway replica. Empty: a random key of this
	// process (the all-in-one; a binary of its own requires one, see
	// RequireCookieKey).
	CookieKey string `env:"KCHAT_COOKIE_KEY"`
	// TrustedProxies are the addresses (CIDRs or single IPs) of the
	// proxies in front of the gateway. Only from them are X-Forwarded-For,
	// X-Forwarded-Proto and, in ModeHeader, X-User-ID believed.
	TrustedProxies []string `env:"KCHAT_TRUSTED_PROXIES" envSeparator:","`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{Mode: ModeNone}
}

// Validate reports the first setting that is wrong, naming its variable.
// Errors never quote a token or a secret.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeNone, ModeHeader:
		// Credentials with no mode to use them would leave the gateway
		// open while its operator believes it closed.
		if len(c.Tokens) > 0 || c.JWTSecret != "" {
			return fmt.Errorf("KCHAT_AUTH is %s but KCHAT_AUTH_TOKENS or KCHAT_AUTH_JWT_SECRET is set: set KCHAT_AUTH=token to use them", c.Mode)
		}
	case ModeToken:
		if len(c.Tokens) == 0 && c.JWTSecret == "" {
			return errors.New("KCHAT_AUTH=token needs KCHAT_AUTH_TOKENS or KCHAT_AUTH_JWT_SECRET")
		}
		if _, err := parseTokens(c.Tokens); err != nil {
			return err
		}
		if c.JWTSecret != "" && len(c.JWTSecret) < minSecretLen {
			return fmt.Errorf("KCHAT_AUTH_JWT_SECRET must be at least %d bytes, got %d", minSecretLen, len(c.JWTSecret))
		}
	default:
		return fmt.Errorf("KCHAT_AUTH must be none, header or token, got %q", c.Mode)
	}
	if c.CookieKey != "" && len(c.CookieKey) < domain.MinKeyBytes {
		return fmt.Errorf("%s must be at least %d bytes, got %d; make one with `openssl rand -hex 32`", CookieKeyVar, domain.MinKeyBytes, len(c.CookieKey))
	}
	proxies, err := parseProxies(c.TrustedProxies)
	if err != nil {
		return err
	}
	if c.Mode == ModeHeader && len(proxies) == 0 {
		return errors.New("KCHAT_AUTH=header needs KCHAT_TRUSTED_PROXIES: X-User-ID is believed only from the proxies listed there")
	}
	return nil
}

// RequireCookieKey is the check of a gateway that runs as a process of its
// own: in ModeNone its visitor cookies must verify on every replica, so
// the key must be given, not made up per process.
func (c Config) RequireCookieKey() error {
	if c.Mode == ModeNone && c.CookieKey == "" {
		return fmt.Errorf("%s is required with KCHAT_AUTH=none: it signs the visitors' identity cookies, and every gateway replica needs the same key; make one with `openssl rand -hex 32`", CookieKeyVar)
	}
	return nil
}

// parseTokens splits the "token:user" entries into a map from token to
// user. Entries are named by position, never by content.
func parseTokens(entries []string) (map[string]string, error) {
	tokens := make(map[string]string, len(entries))
	for i, e := range entries {
		token, user, ok := strings.Cut(strings.TrimSpace(e), ":")
		switch {
		case !ok || token == "" || user == "":
			return nil, fmt.Errorf("KCHAT_AUTH_TOKENS entry %d must be token:user with both parts non-empty", i+1)
		case !validUserID(user):
			return nil, fmt.Errorf("KCHAT_AUTH_TOKENS entry %d: user must be at most %d characters of UTF-8 without control characters", i+1, maxUserIDLen)
		}
		if _, dup := tokens[token]; dup {
			return nil, fmt.Errorf("KCHAT_AUTH_TOKENS entry %d repeats an earlier token", i+1)
		}
		tokens[token] = user
	}
	return tokens, nil
}

// parseProxies reads KCHAT_TRUSTED_PROXIES: CIDRs, or single addresses
// (a /32 or /128). Empty entries are ignored.
func parseProxies(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("KCHAT_TRUSTED_PROXIES entry %d (%q) is neither a CIDR such as 10.0.0.0/8 nor an IP address", i+1, e)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
