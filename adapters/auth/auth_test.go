package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kchat/kchat/adapters/auth"
)

// request builds a GET /ws with the given Authorization header (none if
// empty) and query.
func request(t *testing.T, authorization string, query url.Values) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/ws?"+query.Encode(), nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return r
}

func newAuthenticator(t *testing.T, cfg auth.Config) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// check runs Authenticate and compares with the wanted user, or, when
// wantErr is not empty, with an ErrUnauthorized whose text contains it.
func check(t *testing.T, a *auth.Authenticator, r *http.Request, want, wantErr string) {
	t.Helper()
	got, err := a.Authenticate(r)
	if wantErr != "" {
		if !errors.Is(err, auth.ErrUnauthorized) || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Authenticate() = %q, %v; want ErrUnauthorized %q", got, err, wantErr)
		}
		if got != "" {
			t.Fatalf("Authenticate() returned user %q with its error", got)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("Authenticate() = %q, %v; want %q", got, err, want)
	}
}

func TestStaticTokens(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeToken, Tokens: []string{"t-alice:alice", " t-bob:bob"}})
	tests := []struct {
		name    string
		give    *http.Request
		want    string
		wantErr string
	}{
		{"header", request(t, "Bearer t-alice", nil), "alice", ""},
		{"second entry, trimmed", request(t, "Bearer t-bob", nil), "bob", ""},
		{"lower-case scheme", request(t, "bearer t-alice", nil), "alice", ""},
		{"upper-case scheme", request(t, "BEARER t-alice", nil), "alice", ""},
		{"wrong token", request(t, "Bearer t-alicf", nil), "", "unknown token"},
		{"token prefix", request(t, "Bearer t-alic", nil), "", "unknown token"},
		{"token and user", request(t, "Bearer t-alice:alice", nil), "", "unknown token"},
		{"missing", request(t, "", nil), "", "missing credential"},
		{"scheme only", request(t, "Bearer", nil), "", "missing credential"},
		{"scheme and space", request(t, "Bearer ", nil), "", "missing credential"},
		{"basic scheme", request(t, "Basic dC1hbGljZQ==", nil), "", "not a bearer credential"},
		{"no scheme", request(t, "t-alice", nil), "", "not a bearer credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, a, tt.give, tt.want, tt.wantErr)
		})
	}
}

// sign returns an HS256 JWT with claims, signed with key.
func sign(t *testing.T, claims jwt.MapClaims, key string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forge returns a JWT with the given header whose signature is the HMAC-SHA256
// of the rest under key: what an attacker who knows no secret, or one who
// hopes the server treats its HMAC key as an RSA public key, would send.
func forge(header, payload string, key []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	unsigned := enc([]byte(header)) + "." + enc([]byte(payload))
	if key == nil {
		return unsigned + "."
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc(mac.Sum(nil))
}

func TestJWT(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeToken, JWTSecret: secret})
	now := time.Now()
	hour := now.Add(time.Hour).Unix()
	good := func(sub string) jwt.MapClaims { return jwt.MapClaims{"sub": sub, "exp": hour} }
	payload := fmt.Sprintf(`{"sub":"mallory","exp":%d}`, hour)
	tests := []struct {
		name    string
		give    string
		want    string
		wantErr string
	}{
		{"good", sign(t, good("alice"), secret), "alice", ""},
		{"unicode subject", sign(t, good("zoë"), secret), "zoë", ""},
		{"subject of 128 characters", sign(t, good(strings.Repeat("é", 128)), secret), strings.Repeat("é", 128), ""},
		{"with nbf in the past", sign(t, jwt.MapClaims{"sub": "alice", "exp": hour, "nbf": now.Add(-time.Minute).Unix()}, secret), "alice", ""},
		{"expired within leeway", sign(t, jwt.MapClaims{"sub": "alice", "exp": now.Add(-10 * time.Second).Unix()}, secret), "alice", ""},
		{"expired", sign(t, jwt.MapClaims{"sub": "alice", "exp": now.Add(-time.Minute).Unix()}, secret), "", "token expired"},
		{"not yet valid", sign(t, jwt.MapClaims{"sub": "alice", "exp": hour, "nbf": now.Add(time.Minute).Unix()}, secret), "", "token not yet valid"},
		{"no exp", sign(t, jwt.MapClaims{"sub": "alice"}, secret), "", "token has no expiry"},
		{"wrong secret", sign(t, good("alice"), strings.ToUpper(secret)), "", "bad token signature"},
		{"tampered payload", tamper(sign(t, good("alice"), secret), payload), "", "bad token signature"},
		{"alg none", forge(`{"alg":"none","typ":"JWT"}`, payload, nil), "", "bad token signature"},
		{"RS256 header signed with the secret", forge(`{"alg":"RS256","typ":"JWT"}`, payload, []byte(secret)), "", "bad token signature"},
		{"HS512 with the secret", signWith(t, jwt.SigningMethodHS512, good("alice")), "", "bad token signature"},
		{"missing sub", sign(t, jwt.MapClaims{"exp": hour}, secret), "", "token has no subject"},
		{"empty sub", sign(t, good(""), secret), "", "token has no subject"},
		{"long sub", sign(t, good(strings.Repeat("a", 129)), secret), "", "bad token subject"},
		{"control character in sub", sign(t, good("ali\nce"), secret), "", "bad token subject"},
		{"numeric sub", sign(t, jwt.MapClaims{"sub": 42, "exp": hour}, secret), "", "unknown token"},
		{"not a JWT", "t-alice", "", "unknown token"},
		{"garbage segments", "a.b.c", "", "unknown token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, a, request(t, "Bearer "+tt.give, nil), tt.want, tt.wantErr)
		})
	}
	t.Run("query parameter on the upgrade", func(t *testing.T) {
		r := request(t, "", url.Values{"access_token": {sign(t, good("alice"), secret)}})
		if got, err := a.AuthenticateUpgrade(r); err != nil || got != "alice" {
			t.Fatalf("AuthenticateUpgrade() = %q, %v; want alice", got, err)
		}
	})
}

// tamper replaces the payload of token, keeping its header and signature.
func tamper(token, payload string) string {
	parts := strings.Split(token, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(payload))
	return strings.Join(parts, ".")
}

// signWith signs claims with the test secret under another HMAC method.
func signWith(t *testing.T, m jwt.SigningMethod, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokensAndJWTTogether(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeToken, Tokens: []string{"t-alice:alice"}, JWTSecret: secret})
	tests := []struct {
		name    string
		give    string
		want    string
		wantErr string
	}{
		{"static token", "t-alice", "alice", ""},
		{"JWT", sign(t, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()}, secret), "bob", ""},
		{"neither", "t-bob", "", "unknown token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, a, request(t, "Bearer "+tt.give, nil), tt.want, tt.wantErr)
		})
	}
}

// The access_token query parameter is for browsers' WebSocket handshakes
// only (issue 13, item 12): on any other route a token in the URL is no
// credential.
func TestAccessTokenOnlyOnTheUpgrade(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeToken, Tokens: []string{"t-alice:alice", "t-bob:bob"}})
	q := func(token string) url.Values { return url.Values{"access_token": {token}} }
	tests := []struct {
		name       string
		give       *http.Request
		want       string // from AuthenticateUpgrade
		wantErr    string
		wantOthers string // the error of Authenticate, every other route's check
	}{
		{"query parameter", request(t, "", q("t-bob")), "bob", "", "missing credential"},
		{"header wins over query", request(t, "Bearer t-alice", q("t-bob")), "alice", "", ""},
		{"bad header does not fall back to query", request(t, "Bearer nope", q("t-bob")), "", "unknown token", "unknown token"},
		{"wrong query token", request(t, "", q("nope")), "", "unknown token", "missing credential"},
		{"empty query token", request(t, "", q("")), "", "missing credential", "missing credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.AuthenticateUpgrade(tt.give)
			switch {
			case tt.wantErr == "" && (err != nil || got != tt.want):
				t.Fatalf("AuthenticateUpgrade() = %q, %v; want %q", got, err, tt.want)
			case tt.wantErr != "" && (!errors.Is(err, auth.ErrUnauthorized) || !strings.Contains(err.Error(), tt.wantErr) || got != ""):
				t.Fatalf("AuthenticateUpgrade() = %q, %v; want ErrUnauthorized %q", got, err, tt.wantErr)
			}
			if tt.wantOthers == "" {
				check(t, a, tt.give, tt.want, "")
			} else {
				check(t, a, tt.give, "", tt.wantOthers)
			}
		})
	}
}

// KCHAT_AUTH=header: the user is X-User-ID, believed only from a trusted
// proxy; nobody else can name themselves, in the header or the query.
func TestHeaderMode(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeHeader, TrustedProxies: []string{"10.0.0.0/8", "192.0.2.7"}})
	from := func(peer, user string, query url.Values) *http.Request {
		r := request(t, "", query)
		r.RemoteAddr = peer
		if user != "" {
			r.Header.Set("X-User-ID", user)
		}
		return r
	}
	tests := []struct {
		name    string
		give    *http.Request
		want    string
		wantErr string
	}{
		{"from a trusted proxy", from("10.1.2.3:4000", "alice", nil), "alice", ""},
		{"from a trusted single address", from("192.0.2.7:4000", "bob", nil), "bob", ""},
		{"IPv4-mapped trusted peer", from("[::ffff:10.0.0.9]:4000", "alice", nil), "alice", ""},
		{"from anyone else", from("192.0.2.8:4000", "alice", nil), "", "not a trusted proxy"},
		{"from anyone else, through a forged X-Forwarded-For", func() *http.Request {
			r := from("203.0.113.5:4000", "alice", nil)
			r.Header.Set("X-Forwarded-For", "10.1.2.3")
			return r
		}(), "", "not a trusted proxy"},
		{"no header", from("10.1.2.3:4000", "", nil), "", "named no user"},
		{"query parameter is no name", from("10.1.2.3:4000", "", url.Values{"user_id": {"alice"}}), "", "named no user"},
		{"bearer token is no name", func() *http.Request {
			r := from("10.1.2.3:4000", "", nil)
			r.Header.Set("Authorization", "Bearer t-alice")
			return r
		}(), "", "named no user"},
		{"control character", from("10.1.2.3:4000", "ali\x1bce", nil), "", "bad user id"},
		{"129 characters", from("10.1.2.3:4000", strings.Repeat("a", 129), nil), "", "bad user id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, a, tt.give, tt.want, tt.wantErr)
			got, err := a.AuthenticateUpgrade(tt.give)
			if (err == nil) != (tt.wantErr == "") || got != tt.want {
				t.Fatalf("AuthenticateUpgrade() = %q, %v; want the same as Authenticate", got, err)
			}
		})
	}
}
