package ratelimit

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchat/kchat/ports"
)

// Counted is a limiter whose refusals are counted on Refused.
type Counted struct {
	Next    ports.Limiter
	Refused prometheus.Counter
}

var _ ports.Limiter = Counted{}

// Allow asks Next, and counts a refusal.
func (c Counted) Allow(ctx context.Context, key string) (bool, error) {
	ok, err := c.Next.Allow(ctx, key)
	if err == nil && !ok {
		c.Refused.Inc()
	}
	return ok, err
}
