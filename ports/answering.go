package ports

import (
	"context"

	"github.com/kchat/kchat/domain"
)

// Retriever finds the knowledge-base passages that best match a query.
//
// Retrieve returns at most k passages, best first, each with its score;
// an empty slice (not an error) when nothing matches. The words of
// q.Context (what a follow-up question follows up on) count for less than
// those of q.Text: a query with an empty Context is the question alone.
// It does not block on the network for the built-in index. Safe for
// concurrent use.
type Retriever interface {
	Retrieve(ctx context.Context, q domain.Query, k int) ([]domain.Passage, error)
}

// Generator writes the answer to a prompt.
//
// Generate returns the answer text, which cites passages as [n] (1-based
// positions in prompt.Passages). When onChunk is not nil it is called with
// each piece of text as it is produced (streaming), in order, before
// Generate returns. Errors: domain.ErrUnavailable when the model did not
// answer (the caller may retry), ctx errors when ctx ended. Safe for
// concurrent use.
type Generator interface {
	Generate(ctx context.Context, prompt domain.Prompt, onChunk func(string)) (string, error)
}

// SessionStore keeps conversations: an owner and the recent turns, with a
// sliding time to live.
//
// Open returns the session's owner, creating the session for userID when it
// does not exist; it returns domain.ErrForbidden (and creates nothing) when
// another user owns it. Owner returns the owner of an existing session
// without creating, changing or renewing anything; domain.ErrNotFound when
// there is no such session (so a reader cannot squat an id by asking). Append adds a turn unless a turn with the same
// MessageID is already there (then it does nothing), keeping at most the
// store's bound of recent turns; it returns domain.ErrNotFound when the
// session does not exist. Recent returns up to limit most recent turns,
// oldest first; domain.ErrNotFound when the session does not exist. Turn
// returns the turn with a message id among the recent ones kept;
// domain.ErrNotFound when there is none (or no session). Record is Open,
// Recent(history) and Append in one step: it opens the session for userID,
// returns its recent turns as they were before turn, and appends turn; it
// returns domain.ErrForbidden, recording nothing, when another user owns
// the session. Delete removes a session (no error when it does not exist).
// Every call that touches a session, but Owner, renews its time to live.
// All methods return
// domain.ErrUnavailable when the store does not answer, and are safe for
// concurrent use, also across processes sharing the store.
type SessionStore interface {
	Open(ctx context.Context, sessionID, userID string) (owner string, err error)
	Owner(ctx context.Context, sessionID string) (string, error)
	Append(ctx context.Context, sessionID string, turn domain.Turn) error
	Recent(ctx context.Context, sessionID string, limit int) ([]domain.Turn, error)
	Turn(ctx context.Context, sessionID, messageID string) (domain.Turn, error)
	Record(ctx context.Context, sessionID, userID string, turn domain.Turn, history int) ([]domain.Turn, error)
	Delete(ctx context.Context, sessionID string) error
}

// DeltaPublisher writes the pieces of an answer while it is generated
// (domain.Delta; docs/design.md, "Streaming answers"), keyed by session.
// Best effort: an implementation logs and counts a delta it could not
// write; its error tells the caller the delta may be missing (readers stop
// at a gap) and the answer goes on; the final answer is the truth.
// PublishDelta waits for the write's acknowledgement until ctx ends, and
// never for room in a full buffer. Safe for concurrent use.
type DeltaPublisher interface {
	PublishDelta(ctx context.Context, d domain.Delta) error
}
