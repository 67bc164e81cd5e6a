package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/kchat/kchat/domain"
)

// The visitor cookie of KCHAT_AUTH=none (docs/security.md, "Identities
// and cookies"): "<visitor id>.<key id>.<HMAC-SHA256 of the id>", HttpOnly,
// SameSite=Lax, Secure when the client came over https.
const (
	VisitorCookie = "kchat_visitor"
	// visitorPrefix starts every visitor's user id, so that logs and
	// records tell visitors from named users.
	visitorPrefix = "visitor-"
	visitorMaxAge = 365 * 24 * time.Hour
	// visitorContext separates this use of the key from any other.
	visitorContext = "kchat visitor cookie v1\n"
)

// Why a visitor cookie was not accepted: the reason label of
// kchat_gateway_visitor_cookies_rejected_total.
const (
	rejectMalformed    = "malformed"
	rejectBadSignature = "bad_signature"
	rejectKeyMismatch  = "key_mismatch"
)

var (
	errMalformedCookie = errors.New("malformed visitor cookie")
	errForgedCookie    = errors.New("visitor cookie with a bad signature")
)

// visitors signs and checks visitor cookies.
type visitors struct {
	key []byte
	id  string // domain.KeyID of key
	// random: the key was made up by this process, so a cookie of another
	// key id comes from an earlier run, not from a misconfigured replica.
	random   bool
	log      *slog.Logger
	rejected *prometheus.CounterVec
	// A flood of bad cookies must not flood the log: one line per
	// interval for each kind, every one counted.
	warnLog, errorLog rate.Sometimes
}

func newVisitors(secret string, log *slog.Logger, reg prometheus.Registerer) (*visitors, error) {
	v := &visitors{log: log, warnLog: rate.Sometimes{Interval: 10 * time.Second}, errorLog: rate.Sometimes{Interval: 10 * time.Second}}
	if secret == "" {
		v.key, v.random = make([]byte, 32), true
		_, _ = rand.Read(v.key) // crypto/rand.Read never fails (Go 1.24+)
	} else {
		v.key = []byte(secret)
	}
	v.id = domain.KeyID(v.key)
	v.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kchat", Subsystem: "gateway", Name: "visitor_cookies_rejected_total",
		Help: "Visitor cookies (KCHAT_AUTH=none) not accepted, by reason; each visitor got a new identity instead.",
	}, []string{"reason"})
	for _, r := range []string{rejectMalformed, rejectBadSignature, rejectKeyMismatch} {
		v.rejected.WithLabelValues(r)
	}
	if reg != nil {
		if err := reg.Register(v.rejected); err != nil {
			return nil, fmt.Errorf("register visitor cookie metrics: %w", err)
		}
	}
	if v.random {
		log.Info(CookieKeyVar+" is unset: visitor cookies are signed with a random key made for this process; visitors get new identities when it restarts", "key_id", v.id)
	}
	return v, nil
}

// newID returns a fresh visitor id: 128 random bits.
func newVisitorID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return visitorPrefix + hex.EncodeToString(b)
}

func validVisitorID(id string) bool {
	rest, ok := strings.CutPrefix(id, visitorPrefix)
	return ok && len(rest) == 32 && isLowerHex(rest)
}

func isLowerHex(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

func (v *visitors) mac(id string) string {
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte(visitorContext))
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// cookie returns the Set-Cookie value that gives the client id.
func (v *visitors) cookie(id string, secure bool) string {
	c := http.Cookie{
		Name: VisitorCookie, Value: id + "." + v.id + "." + v.mac(id), Path: "/",
		MaxAge: int(visitorMaxAge.Seconds()), HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	}
	return c.String()
}

// verify returns the visitor id a cookie value proves.
func (v *visitors) verify(value string) (string, error) {
	id, rest, ok1 := strings.Cut(value, ".")
	keyID, mac, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !validVisitorID(id) || len(keyID) != 8 || !isLowerHex(keyID) {
		return "", errMalformedCookie
	}
	if keyID != v.id {
		return "", &domain.KeyMismatchError{Theirs: keyID, Ours: v.id}
	}
	if !hmac.Equal([]byte(mac), []byte(v.mac(id))) {
		return "", errForgedCookie
	}
	return id, nil
}

// fromRequest returns the visitor r's cookie proves, or "" when it proves
// none: no cookie, or one that is malformed, forged or signed with
// another key. Each rejection is counted and logged (rate-limited).
func (v *visitors) fromRequest(r *http.Request) string {
	for _, c := range r.CookiesNamed(VisitorCookie) {
		id, err := v.verify(c.Value)
		if err == nil {
			return id
		}
		v.reject(r, err)
	}
	return ""
}

func (v *visitors) reject(r *http.Request, err error) {
	var mismatch *domain.KeyMismatchError
	switch {
	case errors.As(err, &mismatch):
		v.rejected.WithLabelValues(rejectKeyMismatch).Inc()
		if v.random {
			// Expected after a restart of a process that made its key up.
			v.warnLog.Do(func() {
				v.log.Info("visitor cookie from an earlier run ("+CookieKeyVar+" is random per start): a new identity instead", "key_id", mismatch.Theirs)
			})
			return
		}
		v.errorLog.Do(func() {
			v.log.Error(fmt.Sprintf("visitor cookie signed with another %s (key id %s, ours %s): every process must share the key; the visitor gets a new identity",
				CookieKeyVar, mismatch.Theirs, mismatch.Ours), "path", r.URL.Path)
		})
	case errors.Is(err, errForgedCookie):
		v.rejected.WithLabelValues(rejectBadSignature).Inc()
		v.warnLog.Do(func() {
			v.log.Warn("visitor cookie with a bad signature refused: a new identity instead", "path", r.URL.Path)
		})
	default:
		v.rejected.WithLabelValues(rejectMalformed).Inc()
		v.warnLog.Do(func() { v.log.Warn("malformed visitor cookie refused: a new identity instead", "path", r.URL.Path) })
	}
}
