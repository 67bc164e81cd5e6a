package porttest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kchat/kchat/ports"
)

// RunLimiter runs the ports.Limiter contract. newLimiter returns a limiter
// allowing rate events per second per key, burst at once, on keys no other
// test uses.
func RunLimiter(t *testing.T, newLimiter func(t *testing.T, rate float64, burst int) ports.Limiter) {
	allow := func(t *testing.T, l ports.Limiter, key string) bool {
		t.Helper()
		ok, err := l.Allow(context.Background(), key)
		if err != nil {
			t.Fatalf("Allow(%q) = %v", key, err)
		}
		return ok
	}

	t.Run("a key gets its burst at once, then is refused", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t, 0.001, 3)
		for i := range 3 {
			if !allow(t, l, "k") {
				t.Fatalf("event %d of a burst of 3 refused", i+1)
			}
		}
		for range 5 {
			if allow(t, l, "k") {
				t.Fatal("an event beyond the burst was allowed")
			}
		}
	})

	t.Run("keys are limited apart", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t, 0.001, 2)
		allow(t, l, "a")
		allow(t, l, "a")
		if allow(t, l, "a") {
			t.Fatal("a exceeded its burst")
		}
		for i := range 2 {
			if !allow(t, l, "b") {
				t.Fatalf("event %d of b was refused because a used up its own limit", i+1)
			}
		}
	})

	t.Run("the limit refills at the rate, and refused events do not count", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t, 20, 1) // one token every 50 ms
		if !allow(t, l, "k") {
			t.Fatal("first event refused")
		}
		// Hammer the key while it is empty: refusals must not push the
		// next token further away.
		deadline := time.Now().Add(time.Second)
		allowed := 0
		for time.Now().Before(deadline) && allowed == 0 {
			if allow(t, l, "k") {
				allowed++
			}
		}
		if allowed == 0 {
			t.Fatal("no token came back within 1s at 20 per second: refused events were counted")
		}
	})

	t.Run("concurrent callers share one burst", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t, 0.001, 10)
		var got atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					if allow(t, l, "k") {
						got.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got.Load() != 10 {
			t.Fatalf("200 concurrent events were allowed %d times, want the burst of 10", got.Load())
		}
	})
}
