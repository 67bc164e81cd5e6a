// Package redis keeps kchat's conversations in Redis: it implements
// ports.SessionStore so that every kchat process sees the same sessions,
// with their owner, their bounded recent turns and a sliding time to live.
// Redis is one node, a Redis Cluster or a master that Redis Sentinel
// watches (Config).
// Each change is one Lua script over one session's keys, which share a
// cluster slot, so concurrent writers in different processes stay
// consistent; a change can wait until replicas have it (WAIT,
// KCHAT_REDIS_WAIT_REPLICAS) before it is reported done. Every driver error
// is translated at this boundary (a session that is not there is
// domain.ErrNotFound, a Redis that does not answer, or a write replicas did
// not confirm in time, is domain.ErrUnavailable).
package redis
