package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// idsPerTurn is how many message ids a session remembers per turn it keeps:
// a retried turn is recognised for a while after it was trimmed from the
// window, so a late redelivery does not come back as a new turn.
const idsPerTurn = 4

// SessionsConfig configures the in-memory session store.
type SessionsConfig struct {
	// MaxTurns is how many recent turns a session keeps (at least 1).
	MaxTurns int
	// TTL is how long an untouched session lives (positive).
	TTL time.Duration
	// Now is the clock; time.Now when nil. Tests pass a fake one to move
	// past the TTL without sleeping.
	Now func() time.Time
}

// Sessions is the in-memory ports.SessionStore. Its sessions live as long
// as the process.
type Sessions struct {
	cfg SessionsConfig

	mu       sync.Mutex
	sessions map[string]*session
	sweepAt  int // map size at which the next new session sweeps expired ones
}

var _ ports.SessionStore = (*Sessions)(nil)

type session struct {
	owner   string
	turns   []domain.Turn // oldest first, at most cfg.MaxTurns
	ids     map[string]struct{}
	idOrder []string // ids in append order, to forget the oldest
	expires time.Time
}

// NewSessions returns an empty store. It panics on a MaxTurns below 1 or a
// TTL that is not positive: those are programming errors.
func NewSessions(cfg SessionsConfig) *Sessions {
	if cfg.MaxTurns < 1 || cfg.TTL <= 0 {
		panic(fmt.Sprintf("memory.NewSessions: MaxTurns %d and TTL %s must be positive", cfg.MaxTurns, cfg.TTL))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sessions{cfg: cfg, sessions: map[string]*session{}}
}

// live returns the session and renews its TTL, or nil when it does not
// exist or has expired (an expired one is dropped). s.mu must be held.
func (s *Sessions) live(id string) *session {
	sess := s.sessions[id]
	if sess == nil {
		return nil
	}
	now := s.cfg.Now()
	if !now.Before(sess.expires) {
		delete(s.sessions, id)
		return nil
	}
	sess.expires = now.Add(s.cfg.TTL)
	return sess
}

// sweep drops expired sessions once the map has doubled since the last
// sweep, so abandoned sessions do not pile up (amortised O(1) per Open).
// s.mu must be held.
func (s *Sessions) sweep() {
	if len(s.sessions) < s.sweepAt {
		return
	}
	now := s.cfg.Now()
	for id, sess := range s.sessions {
		if !now.Before(sess.expires) {
			delete(s.sessions, id)
		}
	}
	s.sweepAt = max(2*len(s.sessions), 64)
}

// Open returns the owner, creating the session for userID when it does not
// exist. Another user's session is neither changed nor renewed.
func (s *Sessions) Open(ctx context.Context, sessionID, userID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, err := s.openLocked(sessionID, userID)
	if err != nil {
		return "", err
	}
	return sess.owner, nil
}

// Owner returns the owner of a live session; it creates and renews nothing.
func (s *Sessions) Owner(ctx context.Context, sessionID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[sessionID]; sess != nil && s.cfg.Now().Before(sess.expires) {
		return sess.owner, nil
	}
	return "", fmt.Errorf("session %s: %w", sessionID, domain.ErrNotFound)
}

func (s *Sessions) openLocked(sessionID, userID string) (*session, error) {
	sess := s.sessions[sessionID]
	if sess != nil && s.cfg.Now().Before(sess.expires) && sess.owner != userID {
		return nil, fmt.Errorf("session %s: %w", sessionID, domain.ErrForbidden)
	}
	if sess = s.live(sessionID); sess == nil {
		s.sweep()
		sess = &session{owner: userID, ids: map[string]struct{}{}, expires: s.cfg.Now().Add(s.cfg.TTL)}
		s.sessions[sessionID] = sess
	}
	return sess, nil
}

// Append adds turn unless its MessageID was appended before (ids of the
// last 4×MaxTurns turns are remembered).
func (s *Sessions) Append(ctx context.Context, sessionID string, turn domain.Turn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.live(sessionID)
	if sess == nil {
		return fmt.Errorf("session %s: %w", sessionID, domain.ErrNotFound)
	}
	s.appendLocked(sess, turn)
	return nil
}

// appendLocked adds turn to sess unless its MessageID is remembered.
func (s *Sessions) appendLocked(sess *session, turn domain.Turn) {
	if _, seen := sess.ids[turn.MessageID]; seen {
		return
	}
	sess.ids[turn.MessageID] = struct{}{}
	sess.idOrder = append(sess.idOrder, turn.MessageID)
	if over := len(sess.idOrder) - idsPerTurn*s.cfg.MaxTurns; over > 0 {
		for _, id := range sess.idOrder[:over] {
			delete(sess.ids, id)
		}
		sess.idOrder = slices.Delete(sess.idOrder, 0, over)
	}
	sess.turns = append(sess.turns, cloneTurn(turn))
	if over := len(sess.turns) - s.cfg.MaxTurns; over > 0 {
		sess.turns = slices.Delete(sess.turns, 0, over)
	}
}

// Recent returns up to limit most recent turns, oldest first.
func (s *Sessions) Recent(ctx context.Context, sessionID string, limit int) ([]domain.Turn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.live(sessionID)
	if sess == nil {
		return nil, fmt.Errorf("session %s: %w", sessionID, domain.ErrNotFound)
	}
	limit = max(min(limit, len(sess.turns)), 0)
	out := make([]domain.Turn, 0, limit)
	for _, t := range sess.turns[len(sess.turns)-limit:] {
		out = append(out, cloneTurn(t))
	}
	return out, nil
}

// Record opens the session for userID, returns up to history recent turns
// and appends turn, under one lock.
func (s *Sessions) Record(ctx context.Context, sessionID, userID string, turn domain.Turn, history int) ([]domain.Turn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, err := s.openLocked(sessionID, userID)
	if err != nil {
		return nil, err
	}
	limit := max(min(history, len(sess.turns)), 0)
	out := make([]domain.Turn, 0, limit)
	for _, t := range sess.turns[len(sess.turns)-limit:] {
		out = append(out, cloneTurn(t))
	}
	s.appendLocked(sess, turn)
	return out, nil
}

// Turn returns the kept turn with messageID.
func (s *Sessions) Turn(ctx context.Context, sessionID, messageID string) (domain.Turn, error) {
	if err := ctx.Err(); err != nil {
		return domain.Turn{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.live(sessionID); sess != nil {
		for _, t := range sess.turns {
			if t.MessageID == messageID {
				return cloneTurn(t), nil
			}
		}
	}
	return domain.Turn{}, fmt.Errorf("session %s turn %s: %w", sessionID, messageID, domain.ErrNotFound)
}

// Delete removes the session; deleting a missing one is not an error.
func (s *Sessions) Delete(ctx context.Context, sessionID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sessionID)
	return nil
}

// cloneTurn copies the citations so callers cannot change a stored turn.
func cloneTurn(t domain.Turn) domain.Turn {
	t.Citations = slices.Clone(t.Citations)
	return t
}
