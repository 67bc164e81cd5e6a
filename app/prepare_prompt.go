package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// PreparePrompt is the retrieve stage (query → prompt): it masks profanity
// in the question, records it in the session, retrieves passages (for a
// follow-up, with the question it follows up on) and builds the prompt. Running it twice for one query gives the same prompt id and
// records the question once.
type PreparePrompt struct {
	Sessions  ports.SessionStore
	Retriever ports.Retriever
	Censor    ports.Censor
	// TopK is how many passages a prompt carries.
	TopK int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Execute returns domain.ErrUnavailable when the session store or the
// retriever does not answer; the caller retries.
func (uc *PreparePrompt) Execute(ctx context.Context, q domain.Message) (domain.Message, error) {
	if q.Type != domain.TypeQuery {
		return domain.Message{}, &domain.ValidationError{Field: "type", Reason: fmt.Sprintf("the retrieve stage takes queries, got %q", q.Type)}
	}
	question := q.Text
	if uc.Censor != nil {
		question, _ = uc.Censor.Censor(question)
	}
	history, err := uc.record(ctx, q, question)
	if err != nil {
		return domain.Message{}, err
	}
	p := domain.BuildPrompt(question, q.MessageID, history, nil)
	// A follow-up ("and what does the WebSocket do then?") is searched
	// with the question it follows up on: docs/quality.md, "Follow-ups".
	query := domain.Query{Text: question, Context: domain.FollowUpContext(question, p.History)}
	if p.Passages, err = uc.Retriever.Retrieve(ctx, query, uc.TopK); err != nil {
		return domain.Message{}, fmt.Errorf("retrieve for %s: %w", q.MessageID, err)
	}
	return domain.NewPromptMessage(q, p, now(uc.Now)), nil
}

// record opens the session (owned by the query's user), reads its recent
// turns and appends the question. A session owned by someone else is not
// touched: the prompt goes without history.
func (uc *PreparePrompt) record(ctx context.Context, q domain.Message, question string) ([]domain.Turn, error) {
	if uc.Sessions == nil {
		return nil, nil
	}
	turn := domain.Turn{Role: domain.RoleUser, MessageID: q.MessageID, Text: question, At: now(uc.Now)}
	history, err := uc.Sessions.Record(ctx, q.SessionID, q.UserID, turn, domain.PromptHistoryTurns+2)
	switch {
	case errors.Is(err, domain.ErrForbidden):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("record question %s in session %s: %w", q.MessageID, q.SessionID, err)
	}
	return history, nil
}

func now(clock func() time.Time) time.Time {
	if clock == nil {
		return time.Now().UTC()
	}
	return clock().UTC()
}
