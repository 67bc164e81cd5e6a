package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// ErrUnauthorized means the request carries no acceptable identity. The
// errors Authenticate returns wrap it with a short reason ("token expired")
// that is safe to show to the client.
var ErrUnauthorized = errors.New("unauthorized")

// Anonymous is the user of a request that names none when KCHAT_AUTH=none.
const Anonymous = "anonymous"

const (
	// maxUserIDLen bounds a user id in characters (runes): ids end up in
	// keys, logs and every session record.
	maxUserIDLen = 128
	// leeway absorbs clock skew between the token issuer and the gateway.
	leeway = 30 * time.Second
	// accessTokenParam carries the credential where no header can: a
	// browser's WebSocket handshake.
	accessTokenParam = "access_token"
)

// Authenticator finds the user of a request. Safe for concurrent use: it
// is only read after New.
type Authenticator struct {
	mode string
	// tokens holds the SHA-256 of each static token, so that comparing a
	// candidate takes the same time whatever its length or content.
	tokens []staticToken
	secret []byte // nil: no JWTs
	parser *jwt.Parser
}

type staticToken struct {
	sum  [sha256.Size]byte
	user string
}

// New returns an Authenticator for cfg, or the error Validate reports.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{mode: cfg.Mode}
	tokens, err := parseTokens(cfg.Tokens)
	if err != nil {
		return nil, err
	}
	for token, user := range tokens {
		a.tokens = append(a.tokens, staticToken{sum: sha256.Sum256([]byte(token)), user: user})
	}
	if cfg.JWTSecret != "" {
		a.secret = []byte(cfg.JWTSecret)
		a.parser = jwt.NewParser(
			// Only HS256: "none" and the RS*/ES* algorithms (whose "public
			// key" an attacker would pair with our HMAC secret) are refused.
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(leeway),
		)
	}
	return a, nil
}

// Authenticate returns the user id of r, or ErrUnauthorized wrapping why not.
//
// With KCHAT_AUTH=token the credential is the bearer token of the
// Authorization header ("Bearer" in any case) or, when the request has no
// Authorization header, its access_token query parameter, meant for
// browsers' WebSocket handshakes, which cannot set headers. A URL is more
// often logged than a header, so clients that can send the header should.
// A static token gives its configured user; anything else must be an
// unexpired HS256 JWT whose sub is the user id.
//
// With KCHAT_AUTH=none the user id is the X-User-ID header, else the
// user_id query parameter, else "anonymous".
func (a *Authenticator) Authenticate(r *http.Request) (string, error) {
	if a.mode == ModeNone {
		user := r.Header.Get("X-User-ID")
		if user == "" {
			user = r.URL.Query().Get("user_id")
		}
		if user == "" {
			return Anonymous, nil
		}
		if !validUserID(user) {
			return "", unauthorized("bad user id")
		}
		return user, nil
	}
	token, err := credential(r)
	if err != nil {
		return "", err
	}
	if user, ok := a.static(token); ok {
		return user, nil
	}
	if a.parser == nil {
		return "", unauthorized("unknown token")
	}
	return a.jwtUser(token)
}

// credential returns the bearer token of r.
func credential(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		// RFC 9110 §11.1: the scheme is case-insensitive.
		if !strings.EqualFold(scheme, "Bearer") {
			return "", unauthorized("not a bearer credential")
		}
		if token = strings.TrimSpace(token); token == "" {
			return "", unauthorized("missing credential")
		}
		return token, nil
	}
	if token := r.URL.Query().Get(accessTokenParam); token != "" {
		return token, nil
	}
	return "", unauthorized("missing credential")
}

// static looks token up among the static tokens, comparing with every one
// in constant time so that neither a match nor its position shows.
func (a *Authenticator) static(token string) (string, bool) {
	sum := sha256.Sum256([]byte(token))
	user, found := "", false
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			user, found = t.user, true
		}
	}
	return user, found
}

// jwtUser verifies token as an HS256 JWT and returns its subject.
func (a *Authenticator) jwtUser(token string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := a.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		return a.secret, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", unauthorized("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "", unauthorized("token not yet valid")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "", unauthorized("token has no expiry")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "", unauthorized("bad token signature")
	default:
		// Malformed, or not a JWT at all: most likely a wrong static token.
		return "", unauthorized("unknown token")
	}
	if claims.Subject == "" {
		return "", unauthorized("token has no subject")
	}
	if !validUserID(claims.Subject) {
		return "", unauthorized("bad token subject")
	}
	return claims.Subject, nil
}

func unauthorized(reason string) error {
	return fmt.Errorf("%w: %s", ErrUnauthorized, reason)
}

// validUserID reports whether id is 1 to 128 characters of valid UTF-8
// without control characters, which would corrupt logs and frames.
func validUserID(id string) bool {
	if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > maxUserIDLen {
		return false
	}
	return !strings.ContainsFunc(id, unicode.IsControl)
}
