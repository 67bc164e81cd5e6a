package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Modes of KCHAT_AUTH.
const (
	// ModeNone trusts the user id the client names: development only.
	ModeNone = "none"
	// ModeToken requires a static bearer token or an HS256 JWT.
	ModeToken = "token"
)

// minSecretLen is the HS256 key size RFC 7518 §3.2 asks for: a shorter
// secret can be brute-forced offline from any token it signed.
const minSecretLen = 32

// Config configures authentication. The env tags name the KCHAT_* variables
// a binary loads it from.
type Config struct {
	// Mode is "none" (the client names its user id: X-User-ID header or
	// user_id query parameter) or "token".
	Mode string `env:"KCHAT_AUTH" envDefault:"none"`
	// Tokens are static bearer tokens, each "token:user"; the token is
	// everything before the first colon, so it cannot contain one. Spaces
	// around an entry are ignored.
	Tokens []string `env:"KCHAT_AUTH_TOKENS" envSeparator:","`
	// JWTSecret is the HS256 key that signs accepted JWTs, at least 32 bytes.
	JWTSecret string `env:"KCHAT_AUTH_JWT_SECRET"`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{Mode: ModeNone}
}

// Validate reports the first setting that is wrong, naming its variable.
// Errors never quote a token or the secret.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeNone:
		// Credentials with no mode to use them would leave the gateway
		// open while its operator believes it closed.
		if len(c.Tokens) > 0 || c.JWTSecret != "" {
			return errors.New("KCHAT_AUTH is none but KCHAT_AUTH_TOKENS or KCHAT_AUTH_JWT_SECRET is set: set KCHAT_AUTH=token to use them")
		}
		return nil
	case ModeToken:
	default:
		return fmt.Errorf("KCHAT_AUTH must be none or token, got %q", c.Mode)
	}
	if len(c.Tokens) == 0 && c.JWTSecret == "" {
		return errors.New("KCHAT_AUTH=token needs KCHAT_AUTH_TOKENS or KCHAT_AUTH_JWT_SECRET")
	}
	if _, err := parseTokens(c.Tokens); err != nil {
		return err
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < minSecretLen {
		return fmt.Errorf("KCHAT_AUTH_JWT_SECRET must be at least %d bytes, got %d", minSecretLen, len(c.JWTSecret))
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
