// Package redis keeps kchat's conversations in Redis: it implements
// ports.SessionStore so that every kchat process sees the same sessions,
// with their owner, their bounded recent turns and a sliding time to live.
// Each change is one Lua script, so concurrent writers in different
// processes stay consistent, and every driver error is translated at this
// boundary (a session that is not there is domain.ErrNotFound, a Redis that
// does not answer is domain.ErrUnavailable).
package redis
