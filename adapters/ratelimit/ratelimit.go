// Package ratelimit is kchat's in-process ports.Limiter: a token bucket per
// key (golang.org/x/time/rate), so a user's questions are limited the same
// way on every entry point of a gateway. Each gateway replica keeps its own
// buckets (docs/design.md, "Limits").
package ratelimit

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/time/rate"

	"github.com/kchat/kchat/ports"
)

// Config sets the limit of each key. The env tags name the KCHAT_*
// variables a binary loads it from.
type Config struct {
	// Rate is how many events per second a key may have, on average.
	Rate float64 `env:"KCHAT_USER_RATE" envDefault:"10"`
	// Burst is how many it may have at once.
	Burst int `env:"KCHAT_USER_BURST" envDefault:"20"`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config { return Config{Rate: 10, Burst: 20} }

// Validate reports the first wrong setting, naming its variable.
func (c Config) Validate() error {
	if c.Rate <= 0 || c.Burst < 1 {
		return errors.New("KCHAT_USER_RATE must be positive and KCHAT_USER_BURST at least 1")
	}
	return nil
}

// sweepAt is how many buckets may build up beyond twice those kept by the
// last sweep before the next new key sweeps again (amortised: a sweep
// follows at least as many creations as it visits).
const sweepAt = 1024

// Limiter holds a token bucket per key. Safe for concurrent use.
type Limiter struct {
	cfg Config

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	next    int // bucket count at which a new key sweeps
}

var _ ports.Limiter = (*Limiter)(nil)

// New returns a limiter with cfg's rate and burst for every key.
func New(cfg Config) *Limiter {
	return &Limiter{cfg: cfg, buckets: map[string]*rate.Limiter{}, next: sweepAt}
}

// Allow takes a token from key's bucket if it has one. It never fails.
func (l *Limiter) Allow(_ context.Context, key string) (bool, error) {
	return l.bucket(key).Allow(), nil
}

func (l *Limiter) bucket(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.next {
			l.sweepLocked()
		}
		b = rate.NewLimiter(rate.Limit(l.cfg.Rate), l.cfg.Burst)
		l.buckets[key] = b
	}
	return b
}

// sweepLocked drops the buckets that are full again: they hold nothing a
// new bucket would not, so keys seen once do not pile up, and a key whose
// bucket is still draining keeps it (it cannot reset its limit).
func (l *Limiter) sweepLocked() {
	for key, b := range l.buckets {
		if b.Tokens() >= float64(l.cfg.Burst) {
			delete(l.buckets, key)
		}
	}
	l.next = 2*len(l.buckets) + sweepAt
}

// Len is how many buckets the limiter holds (for tests and metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
