package ratelimit_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/ports"
	"github.com/kchat/kchat/ports/porttest"
)

func TestLimiterContract(t *testing.T) {
	porttest.RunLimiter(t, func(_ *testing.T, rate float64, burst int) ports.Limiter {
		return ratelimit.New(ratelimit.Config{Rate: rate, Burst: burst})
	})
}

// Keys seen once do not pile up: a sweep drops the buckets that are full
// again, and keeps one still draining (its key cannot reset its limit by
// coming back as new).
func TestBucketsDoNotPileUp(t *testing.T) {
	l := ratelimit.New(ratelimit.Config{Rate: 0.001, Burst: 2})
	ctx := context.Background()
	_, _ = l.Allow(ctx, "draining")
	_, _ = l.Allow(ctx, "draining")
	for i := range 5000 {
		key := "once-" + strconv.Itoa(i)
		if ok, _ := l.Allow(ctx, key); !ok {
			t.Fatalf("a new key %s was refused", key)
		}
	}
	// Each of those took a token, so none is full at 0.001/s: the sweeps
	// may drop nothing. A limiter with a fast rate refills at once.
	if n := l.Len(); n < 5000 {
		t.Fatalf("buckets still draining were dropped: %d left of 5001", n)
	}
	if ok, _ := l.Allow(ctx, "draining"); ok {
		t.Fatal("the draining key got a fresh burst")
	}

	fast := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1})
	for i := range 10000 {
		_, _ = fast.Allow(ctx, "k"+strconv.Itoa(i))
	}
	if n := fast.Len(); n > 3000 {
		t.Fatalf("%d buckets for 10,000 keys seen once whose buckets are full again: they pile up", n)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, give := range []ratelimit.Config{{Rate: 0, Burst: 1}, {Rate: -1, Burst: 1}, {Rate: 1, Burst: 0}} {
		if give.Validate() == nil {
			t.Errorf("%+v passed validation", give)
		}
	}
	if err := ratelimit.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
