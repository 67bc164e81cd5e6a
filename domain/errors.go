package domain

import (
	"errors"
	"fmt"
)

// Domain errors. Adapters translate driver errors into these at their
// boundary; inbound adapters map them to protocol errors in one place.
var (
	// ErrUnavailable means a dependency (Kafka, Redis) did not answer in time;
	// the caller may retry later.
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrForbidden means the caller may not touch the thing asked for.
	ErrForbidden = errors.New("forbidden")
	// ErrRateLimited means the caller asked more often than its limit
	// allows; it may ask again a moment later.
	ErrRateLimited = errors.New("rate limited")
)

// ValidationError says which field of an input is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s %s", e.Field, e.Reason)
}
