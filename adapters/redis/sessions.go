package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	json "github.com/goccy/go-json"
	goredis "github.com/redis/go-redis/v9"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// idsPerTurn is how many message ids a session remembers per turn it keeps:
// a redelivered turn is recognised for a while after it was trimmed from
// the window, so a late retry does not come back as a new turn.
const idsPerTurn = 4

// Sessions is the Redis ports.SessionStore. A session is three keys that
// share one hash tag (so one cluster slot) and expire together:
//
//	<prefix>session:{<id>}        hash: owner, seq (ids appended so far)
//	<prefix>session:{<id>}:turns  list of wire.Turn JSON, oldest first
//	<prefix>session:{<id>}:ids    sorted set of message ids, by seq
//
// The session exists while its hash does. Every script, and DEL, touches
// only these three keys of one session, so on a Redis Cluster each runs on
// the one node that serves the slot (no CROSSSLOT); nothing spans two
// sessions (no per-user index, no scan). An id whose hash tag would be
// empty is laid out differently (see keys).
type Sessions struct {
	client     goredis.UniversalClient
	ownsClient bool
	cfg        Config
	ttlMillis  int64
	// replicas is how many replicas a write waits for (WAIT), and
	// writeTimeout bounds a write, that wait included.
	replicas     int
	writeTimeout time.Duration
}

var _ ports.SessionStore = (*Sessions)(nil)

// NewSessions connects to the Redis cfg names (lazily: the first call
// dials; use Ping for readiness): one node, a cluster or a master behind
// Sentinel. Close releases the connections.
func NewSessions(cfg Config) (*Sessions, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s, err := NewSessionsWithClient(client, cfg)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s.ownsClient = true
	return s, nil
}

// NewSessionsWithClient uses client, which the caller keeps and closes;
// where cfg says Redis is, is ignored but for resolving
// KCHAT_REDIS_WAIT_REPLICAS=auto (Config.Replicas). Waiting for replicas
// needs a *goredis.Client (a Sentinel failover client is one) or a
// *goredis.ClusterClient.
func NewSessionsWithClient(client goredis.UniversalClient, cfg Config) (*Sessions, error) {
	if err := cfg.validateStore(); err != nil {
		return nil, err
	}
	s := &Sessions{client: client, cfg: cfg, ttlMillis: cfg.TTL.Milliseconds(), replicas: cfg.Replicas(), writeTimeout: opTimeout}
	if s.replicas > 0 {
		if !pinnable(client) {
			return nil, fmt.Errorf("KCHAT_REDIS_WAIT_REPLICAS=%d needs a single-node or cluster client, got %T", s.replicas, client)
		}
		s.writeTimeout += cfg.WaitTimeout
	}
	return s, nil
}

// Ping reports whether Redis answers, for readiness checks.
// On a cluster it pings every master and is ready while one answers: a
// shard that is down (failing over) fails only its own sessions' calls, as
// one broker of three does not make kchat unready.
func (s *Sessions) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := pingAny(ctx, s.client); err != nil {
		return fmt.Errorf("redis ping: %w: %w", domain.ErrUnavailable, err)
	}
	return nil
}

// Close closes the client NewSessions made; a client passed to
// NewSessionsWithClient is left to its owner.
func (s *Sessions) Close() error {
	if !s.ownsClient {
		return nil
	}
	return s.client.Close()
}

// keys returns the session's three keys. Their hash tag, the text between
// the first { and the next }, is the session id (or its start, up to a }
// in it), the same for the three. The prefix holds no brace (Validate), so
// the tag is empty only for an id that is empty or starts with }: such an
// id is hex-encoded into the tag instead, in keys that start
// "session:}{x", which no other id's keys do (theirs start "session:{").
// Sessions of such ids that an earlier version stored under the plain
// layout are not found after an upgrade; they expire with their TTL.
func (s *Sessions) keys(sessionID string) []string {
	base := s.cfg.KeyPrefix + "session:{" + sessionID + "}"
	if sessionID == "" || sessionID[0] == '}' {
		base = s.cfg.KeyPrefix + "session:}{x" + hex.EncodeToString([]byte(sessionID)) + "}"
	}
	return []string{base, base + ":turns", base + ":ids"}
}

// openScript returns the owner, creating the session for ARGV[1] when its
// hash does not exist (and clearing leftovers of an expired one). Another
// user's session is neither changed nor renewed.
var openScript = goredis.NewScript(`
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'owner', ARGV[1])
  owner = ARGV[1]
elseif owner ~= ARGV[1] then
  return owner
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return owner
`)

// Open returns the owner, creating the session for userID when it does not
// exist; domain.ErrForbidden when another user owns it.
func (s *Sessions) Open(ctx context.Context, sessionID, userID string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	mine := func(cmd *goredis.Cmd) bool { owner, _ := cmd.Text(); return owner == userID }
	owner, err := s.runWrite(ctx, openScript, s.keys(sessionID), mine, userID, s.ttlMillis).Text()
	if err != nil {
		return "", translate("open", sessionID, err)
	}
	if owner != userID {
		return "", fmt.Errorf("redis open session %s: %w", sessionID, domain.ErrForbidden)
	}
	return owner, nil
}

// Owner returns the owner of an existing session; it creates and renews
// nothing.
func (s *Sessions) Owner(ctx context.Context, sessionID string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	owner, err := s.client.HGet(ctx, s.keys(sessionID)[0], "owner").Result()
	if err != nil {
		return "", translate("owner", sessionID, err)
	}
	return owner, nil
}

// appendScript adds ARGV[2] unless message id ARGV[1] is among the last
// ARGV[4] appended; it keeps the last ARGV[3] turns and renews the TTL. It
// returns nil when the session does not exist.
var appendScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local added = 0
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZADD', KEYS[3], seq, ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[4]) + 1))
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
  added = 1
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return added
`)

// Append adds turn unless its MessageID was appended before (ids of the
// last 4×MaxTurns turns are remembered); domain.ErrNotFound when the
// session does not exist.
func (s *Sessions) Append(ctx context.Context, sessionID string, turn domain.Turn) error {
	raw, err := json.Marshal(wire.TurnOf(turn))
	if err != nil {
		return fmt.Errorf("redis append session %s: encode turn: %w", sessionID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	err = s.runWrite(ctx, appendScript, s.keys(sessionID), nil,
		turn.MessageID, raw, s.cfg.MaxTurns, idsPerTurn*s.cfg.MaxTurns, s.ttlMillis).Err()
	if err != nil {
		return translate("append", sessionID, err)
	}
	return nil
}

// recentScript returns the last ARGV[1] turns and renews the TTL; nil when
// the session does not exist.
var recentScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
local limit = tonumber(ARGV[1])
if limit <= 0 then return {} end
return redis.call('LRANGE', KEYS[2], -limit, -1)
`)

// Recent returns up to limit most recent turns, oldest first;
// domain.ErrNotFound when the session does not exist.
func (s *Sessions) Recent(ctx context.Context, sessionID string, limit int) ([]domain.Turn, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	raws, err := recentScript.Run(ctx, s.client, s.keys(sessionID), limit, s.ttlMillis).StringSlice()
	if err != nil {
		return nil, translate("recent", sessionID, err)
	}
	return decodeTurns(sessionID, raws)
}

// recordScript is openScript, recentScript (ARGV[3] turns, taken before
// the append) and appendScript in one call: ARGV = user id, message id,
// history, turn, max turns, max ids, TTL. It returns the turns, or nil
// when another user owns the session (nothing is changed then).
var recordScript = goredis.NewScript(`
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'owner', ARGV[1])
elseif owner ~= ARGV[1] then
  return false
end
local limit = tonumber(ARGV[3])
local turns = {}
if limit > 0 then turns = redis.call('LRANGE', KEYS[2], -limit, -1) end
if not redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZADD', KEYS[3], seq, ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[6]) + 1))
  redis.call('RPUSH', KEYS[2], ARGV[4])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[7]) end
return turns
`)

// Record opens, reads and appends in one round trip.
func (s *Sessions) Record(ctx context.Context, sessionID, userID string, turn domain.Turn, history int) ([]domain.Turn, error) {
	raw, err := json.Marshal(wire.TurnOf(turn))
	if err != nil {
		return nil, fmt.Errorf("redis record session %s: encode turn: %w", sessionID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	raws, err := s.runWrite(ctx, recordScript, s.keys(sessionID), nil,
		userID, turn.MessageID, history, raw, s.cfg.MaxTurns, idsPerTurn*s.cfg.MaxTurns, s.ttlMillis).StringSlice()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis record session %s: %w", sessionID, domain.ErrForbidden)
	}
	if err != nil {
		return nil, translate("record", sessionID, err)
	}
	return decodeTurns(sessionID, raws)
}

func decodeTurns(sessionID string, raws []string) ([]domain.Turn, error) {
	turns := make([]domain.Turn, 0, len(raws))
	for _, raw := range raws {
		var w wire.Turn
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			return nil, fmt.Errorf("redis session %s: decode turn: %w", sessionID, err)
		}
		turns = append(turns, w.Domain())
	}
	return turns, nil
}

// turnScript returns the kept turn with message id ARGV[1] (as a list of
// one) and renews the TTL; an empty list when there is no such turn, nil
// when the session does not exist. A turn's place in the list follows
// from its sequence number: appendScript pushes one turn per number.
var turnScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
local seq = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not seq then return {} end
local back = tonumber(redis.call('HGET', KEYS[1], 'seq')) - tonumber(seq)
local raw = redis.call('LINDEX', KEYS[2], -(back + 1))
if not raw then return {} end
return {raw}
`)

// Turn returns the kept turn with messageID, decoding only that one.
func (s *Sessions) Turn(ctx context.Context, sessionID, messageID string) (domain.Turn, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	raws, err := turnScript.Run(ctx, s.client, s.keys(sessionID), messageID, s.ttlMillis).StringSlice()
	if err != nil {
		return domain.Turn{}, translate("turn", sessionID, err)
	}
	if len(raws) == 0 {
		return domain.Turn{}, fmt.Errorf("redis session %s turn %s: %w", sessionID, messageID, domain.ErrNotFound)
	}
	var w wire.Turn
	if err := json.Unmarshal([]byte(raws[0]), &w); err != nil {
		return domain.Turn{}, fmt.Errorf("redis turn session %s: decode turn: %w", sessionID, err)
	}
	if w.MessageID != messageID {
		return domain.Turn{}, fmt.Errorf("redis turn session %s: found %s where %s belongs: %w", sessionID, w.MessageID, messageID, domain.ErrNotFound)
	}
	return w.Domain(), nil
}

// deleteScript removes the session's keys: DEL as a script, so that it
// takes runWrite's path (and its WAIT) like every other write.
var deleteScript = goredis.NewScript(`return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])`)

// Delete removes the session; deleting a missing one is not an error.
func (s *Sessions) Delete(ctx context.Context, sessionID string) error {
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	if err := s.runWrite(ctx, deleteScript, s.keys(sessionID), nil).Err(); err != nil {
		return translate("delete", sessionID, err)
	}
	return nil
}

// translate maps a driver error to the domain: a nil reply is a missing
// session; anything that is not a Redis error reply (network, timeout,
// closed pool, ctx) or is a reply saying Redis cannot serve now is
// ErrUnavailable; other replies (WRONGTYPE, a script error) are bugs and
// stay as they are.
func translate(op, sessionID string, err error) error {
	if errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis %s session %s: %w", op, sessionID, domain.ErrNotFound)
	}
	if unavailable(err) {
		return fmt.Errorf("redis %s session %s: %w: %w", op, sessionID, domain.ErrUnavailable, err)
	}
	return fmt.Errorf("redis %s session %s: %w", op, sessionID, err)
}

func unavailable(err error) bool {
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return true
	}
	if _, moved := goredis.IsMovedError(err); moved {
		return true // still moving after the redirects go-redis follows
	}
	if _, ask := goredis.IsAskError(err); ask {
		return true
	}
	return goredis.IsLoadingError(err) || goredis.IsReadOnlyError(err) ||
		goredis.IsClusterDownError(err) || goredis.IsTryAgainError(err) ||
		goredis.IsMasterDownError(err) || goredis.IsMaxClientsError(err) ||
		goredis.IsNoReplicasError(err)
}
