package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// ErrAnswered means the question has an answer already, with another text.
var ErrAnswered = errors.New("the question was answered already")

// PostAnswer takes an external worker's answer to a prompt
// (KCHAT_GENERATOR=external) and does for it what the generate stage does
// for its own: it checks the answer is for a question its session records
// and has not answered yet, records it in the session, signs it and
// publishes it to the answer topic. Workers thus never hold the answer
// key, and the producer, which anyone inside may reach, never writes an
// answer a gateway delivers.
type PostAnswer struct {
	Sessions  ports.SessionStore
	Publisher ports.Publisher
	// Key signs the answer (KCHAT_ANSWER_KEY).
	Key *domain.AnswerKey
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// PostAnswerInput is a worker's answer to the prompt of question ReplyTo
// in session SessionID.
type PostAnswerInput struct {
	SessionID string
	ReplyTo   string
	Text      string
	Citations []domain.Citation
	// Failure, when set, says why the worker could not answer; Text then
	// tells the user so.
	Failure string
}

// PostAnswerResult is the answer as published and where.
type PostAnswerResult struct {
	Answer   domain.Message
	Position domain.Position
}

// Execute publishes the answer once it is recorded. Posting the same
// answer again (a retry after a 503, say) publishes it again; readers drop
// the repeat by message id. Errors: *domain.ValidationError for bad input,
// domain.ErrNotFound when the session does not record the question,
// ErrAnswered when the question has another answer, domain.ErrUnavailable
// when the session store or Kafka does not answer.
func (uc *PostAnswer) Execute(ctx context.Context, in PostAnswerInput) (PostAnswerResult, error) {
	if uc.Key == nil {
		return PostAnswerResult{}, errors.New("the answerer has no answer key")
	}
	switch {
	case in.SessionID == "":
		return PostAnswerResult{}, &domain.ValidationError{Field: "session_id", Reason: "is required"}
	case in.ReplyTo == "":
		return PostAnswerResult{}, &domain.ValidationError{Field: "reply_to", Reason: "is required"}
	}
	owner, err := uc.question(ctx, in.SessionID, in.ReplyTo)
	if err != nil {
		return PostAnswerResult{}, err
	}
	// The answer of the question's prompt, as the generate stage makes it.
	pm := domain.Message{SessionID: in.SessionID, UserID: owner, ReplyTo: in.ReplyTo}
	a := domain.NewAnswerMessage(pm, in.Text, now(uc.Now))
	if in.Failure != "" {
		a.Metadata = domain.NewFailedAnswer(pm, in.Failure, a.CreatedAt).Metadata
	}
	a.Citations = in.Citations
	if err := a.Validate(); err != nil {
		return PostAnswerResult{}, err
	}
	if err := uc.record(ctx, a); err != nil {
		return PostAnswerResult{}, err
	}
	a = uc.Key.Sign(a)
	pos, err := uc.Publisher.Publish(ctx, a)
	if err != nil {
		return PostAnswerResult{}, fmt.Errorf("publish answer %s: %w", a.MessageID, err)
	}
	return PostAnswerResult{Answer: a, Position: pos}, nil
}

// question returns the owner of the session when it records question
// replyTo as one of its user's turns; domain.ErrNotFound otherwise.
func (uc *PostAnswer) question(ctx context.Context, sessionID, replyTo string) (owner string, err error) {
	owner, err = uc.Sessions.Owner(ctx, sessionID)
	if err != nil {
		return "", fmt.Errorf("session %s: %w", sessionID, err)
	}
	q, err := uc.Sessions.Turn(ctx, sessionID, replyTo)
	switch {
	case err != nil:
		return "", fmt.Errorf("question %s in session %s: %w", replyTo, sessionID, err)
	case q.Role != domain.RoleUser:
		return "", fmt.Errorf("question %s in session %s: %w", replyTo, sessionID, domain.ErrNotFound)
	}
	return owner, nil
}

// record appends the answer to the session unless it has one; an answer
// recorded with another text is ErrAnswered (the first answer wins, and a
// repeat of it passes).
func (uc *PostAnswer) record(ctx context.Context, a domain.Message) error {
	turn := domain.Turn{Role: domain.RoleAssistant, MessageID: a.MessageID, Text: a.Text, Citations: a.Citations, At: a.CreatedAt}
	if err := uc.Sessions.Append(ctx, a.SessionID, turn); err != nil {
		return fmt.Errorf("record answer %s: %w", a.MessageID, err)
	}
	got, err := uc.Sessions.Turn(ctx, a.SessionID, a.MessageID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return fmt.Errorf("answer %s was not kept: %w", a.MessageID, domain.ErrUnavailable)
	case err != nil:
		return fmt.Errorf("read answer %s back: %w", a.MessageID, err)
	case got.Text != a.Text:
		return fmt.Errorf("question %s: %w", a.ReplyTo, ErrAnswered)
	}
	return nil
}
