package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchat/kchat/domain"
)

// ErrUnauthorized means the request carries no acceptable identity. The
// errors Authenticate returns wrap it with a short reason ("token expired")
// for the log; clients get a generic refusal.
var ErrUnauthorized = errors.New("unauthorized")

const (
	// maxUserIDLen bounds a user id in characters (runes): ids end up in
	// keys, logs and every session record.
	maxUserIDLen = 128
	// leeway absorbs clock skew between the token issuer and the gateway.
	leeway = 30 * time.Second
	// accessTokenParam carries the credential where no header can: a
	// browser's WebSocket handshake, and nowhere else.
	accessTokenParam = "access_token"
	// userHeader names the user in ModeHeader, set by the trusted proxy.
	userHeader = "X-User-ID"
)

// Authenticator finds the user and the client of a request. Safe for
// concurrent use: it is only read after New, but for its counters.
type Authenticator struct {
	mode string
	// tokens holds the SHA-256 of each static token, so that comparing a
	// candidate takes the same time whatever its length or content.
	tokens []staticToken
	secret []byte // nil: no JWTs
	parser *jwt.Parser
	// proxies are the trusted proxies (KCHAT_TRUSTED_PROXIES).
	proxies []netip.Prefix
	// visitors signs and checks the visitor cookies of ModeNone; nil in
	// the other modes.
	visitors *visitors
}

type staticToken struct {
	sum  [sha256.Size]byte
	user string
}

// New returns an Authenticator for cfg, or the error Validate reports. In
// ModeNone without a cookie key it makes up a random one, and says so in
// log. reg, when not nil, gets the counter of rejected visitor cookies.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Authenticator, error) {
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
	if a.proxies, err = parseProxies(cfg.TrustedProxies); err != nil {
		return nil, err
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
	if cfg.Mode == ModeNone {
		if a.visitors, err = newVisitors(cfg.CookieKey, log, reg); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Mode is the KCHAT_AUTH mode the Authenticator enforces.
func (a *Authenticator) Mode() string { return a.mode }

// Authenticate returns the user id of r, or ErrUnauthorized wrapping why
// not. It is the check of every gateway route but /ws (AuthenticateUpgrade).
//
// ModeToken: the credential is the bearer token of the Authorization
// header ("Bearer" in any case); a static token gives its configured user,
// anything else must be an unexpired HS256 JWT whose sub is the user id.
// The access_token query parameter is not looked at: a URL is logged and
// kept far more often than a header.
//
// ModeHeader: the X-User-ID header, believed only when the request comes
// straight from a trusted proxy; from anyone else it is refused.
//
// ModeNone: the visitor the request's cookie proves or, without a valid
// one, a new visitor, whose cookie goes on the response when r passed
// through Edge. It never fails, and never grants the identity a client
// names: a forged, tampered or foreign cookie gets a new identity.
func (a *Authenticator) Authenticate(r *http.Request) (string, error) {
	switch a.mode {
	case ModeNone:
		return a.visitor(r), nil
	case ModeHeader:
		return a.proxyUser(r)
	}
	token, err := credential(r, false)
	if err != nil {
		return "", err
	}
	return a.tokenUser(token)
}

// AuthenticateUpgrade is Authenticate for a WebSocket handshake, where
// browsers cannot set headers: in ModeToken, a request without an
// Authorization header may carry the token in its access_token query
// parameter.
func (a *Authenticator) AuthenticateUpgrade(r *http.Request) (string, error) {
	if a.mode != ModeToken {
		return a.Authenticate(r)
	}
	token, err := credential(r, true)
	if err != nil {
		return "", err
	}
	return a.tokenUser(token)
}

func (a *Authenticator) tokenUser(token string) (string, error) {
	if user, ok := a.static(token); ok {
		return user, nil
	}
	if a.parser == nil {
		return "", unauthorized("unknown token")
	}
	return a.jwtUser(token)
}

// proxyUser is the user a trusted proxy names.
func (a *Authenticator) proxyUser(r *http.Request) (string, error) {
	if !a.trusts(peer(r)) {
		return "", unauthorized("X-User-ID from a peer that is not a trusted proxy")
	}
	user := r.Header.Get(userHeader)
	switch {
	case user == "":
		return "", unauthorized("the trusted proxy named no user")
	case !validUserID(user):
		return "", unauthorized("bad user id")
	}
	return user, nil
}

// credential returns the bearer token of r: its Authorization header or,
// when inQuery allows and there is no such header, its access_token
// query parameter.
func credential(r *http.Request, inQuery bool) (string, error) {
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
	if token := r.URL.Query().Get(accessTokenParam); inQuery && token != "" {
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

// validUserID reports whether id is a valid id of the wire contract (1 to
// 128 printable characters of UTF-8: no control characters or bidi
// overrides, which would corrupt or disguise logs, keys and frames).
func validUserID(id string) bool {
	return domain.ValidateID("user_id", id) == nil
}
