package memory_test

import (
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/ports/porttest"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestSessionStore(t *testing.T) {
	porttest.RunSessionStore(t, func(t *testing.T) porttest.SessionHarness {
		clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		cfg := memory.SessionsConfig{MaxTurns: 250, TTL: time.Hour, Now: clock.Now}
		return porttest.SessionHarness{Store: memory.NewSessions(cfg), MaxTurns: cfg.MaxTurns, TTL: cfg.TTL, Advance: clock.Advance}
	})
}

func TestSessionStoreSmallBound(t *testing.T) {
	porttest.RunSessionStore(t, func(t *testing.T) porttest.SessionHarness {
		clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		cfg := memory.SessionsConfig{MaxTurns: 3, TTL: time.Minute, Now: clock.Now}
		return porttest.SessionHarness{Store: memory.NewSessions(cfg), MaxTurns: cfg.MaxTurns, TTL: cfg.TTL, Advance: clock.Advance}
	})
}

func TestNewSessionsRejectsBadBounds(t *testing.T) {
	for _, give := range []memory.SessionsConfig{{MaxTurns: 0, TTL: time.Hour}, {MaxTurns: 5, TTL: 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewSessions(%+v) did not panic", give)
				}
			}()
			memory.NewSessions(give)
		}()
	}
}
