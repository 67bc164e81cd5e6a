package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Answer is the generate stage (prompt → answer): it generates the answer,
// retrying a failing generator with backoff, records it in the session and
// returns the answer message, signed. After the last attempt it returns an
// answer that says the answer failed (metadata "error"), so the user hears
// back and the stream moves on. Running it twice for one prompt records the
// answer once and, once recorded, returns the recorded text.
//
// It answers only prompts the retrieve stage signed: the prompt topic is
// open to anyone who reaches the producer, and a forged prompt (a real
// question with passages of the forger's choosing) would otherwise come
// back as a genuine, signed answer.
type Answer struct {
	Sessions  ports.SessionStore
	Generator ports.Generator
	// Key verifies prompts and signs answers (KCHAT_ANSWER_KEY).
	Key *domain.AnswerKey
	// Attempts is how many times the generator is tried (at least 1).
	Attempts int
	// Backoff is the wait before the second attempt; it doubles after that.
	Backoff time.Duration
	// OnChunk, when set, receives streamed pieces of the answer text.
	OnChunk func(pm domain.Message, chunk string)
	// Deltas, when set, receives the answer while it is generated, as
	// signed deltas: each generator try streams under an attempt of its
	// own (docs/design.md, "Streaming answers").
	Deltas ports.DeltaPublisher
	// DeltaEvery is the longest text waits for its delta once the first
	// delta is out, unless a sentence ends first; 0 means DefaultDeltaEvery.
	DeltaEvery time.Duration
	// DeltaTimeout bounds the wait for a delta's acknowledgement and, once
	// the answer is generated, for its last deltas; 0 means
	// DefaultDeltaTimeout.
	DeltaTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	attempts attemptClock
}

// Execute returns domain.ErrUnavailable when the session store does not
// answer (the caller retries the prompt later); generator failures never
// fail it. A prompt that is not signed with the key fails with the
// verification's error (domain.ErrUnsigned, domain.ErrBadSignature or a
// *domain.KeyMismatchError), wrapped: the caller sets it aside.
func (uc *Answer) Execute(ctx context.Context, pm domain.Message) (domain.Message, error) {
	if pm.Type != domain.TypePrompt || pm.ReplyTo == "" {
		return domain.Message{}, &domain.ValidationError{Field: "type", Reason: "the generate stage takes prompts with reply_to"}
	}
	if uc.Key == nil {
		return domain.Message{}, errors.New("the generate stage has no answer key")
	}
	if err := uc.Key.Verify(pm); err != nil {
		return domain.Message{}, fmt.Errorf("prompt %s: %w", pm.MessageID, err)
	}
	a, err := uc.answer(ctx, pm)
	if err != nil {
		return domain.Message{}, err
	}
	return uc.Key.Sign(a), nil
}

func (uc *Answer) answer(ctx context.Context, pm domain.Message) (domain.Message, error) {
	answerID := domain.DerivedID(pm.ReplyTo, "answer")
	owned, recorded, err := uc.recorded(ctx, pm, answerID)
	if err != nil {
		return domain.Message{}, err
	}
	if recorded != nil {
		a := domain.NewAnswerMessage(pm, recorded.Text, now(uc.Now))
		return a, nil
	}
	text, genErr := uc.generate(ctx, pm)
	if genErr != nil && ctx.Err() != nil {
		return domain.Message{}, ctx.Err()
	}
	a := domain.NewAnswerMessage(pm, text, now(uc.Now))
	if genErr != nil {
		a = domain.NewFailedAnswer(pm, genErr.Error(), now(uc.Now))
	}
	if owned {
		turn := domain.Turn{Role: domain.RoleAssistant, MessageID: a.MessageID, Text: a.Text, Citations: a.Citations, At: a.CreatedAt}
		if err := uc.Sessions.Append(ctx, pm.SessionID, turn); err != nil {
			return domain.Message{}, fmt.Errorf("record answer %s: %w", a.MessageID, err)
		}
	}
	return a, nil
}

// recorded looks for an answer an earlier attempt already recorded.
// owned is false when the session belongs to someone else (then nothing is
// recorded).
func (uc *Answer) recorded(ctx context.Context, pm domain.Message, answerID string) (owned bool, turn *domain.Turn, err error) {
	if uc.Sessions == nil {
		return false, nil, nil
	}
	if _, err := uc.Sessions.Open(ctx, pm.SessionID, pm.UserID); err != nil {
		if errors.Is(err, domain.ErrForbidden) {
			return false, nil, nil
		}
		return false, nil, fmt.Errorf("open session %s: %w", pm.SessionID, err)
	}
	t, err := uc.Sessions.Turn(ctx, pm.SessionID, answerID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return true, nil, nil
	case err != nil:
		return false, nil, fmt.Errorf("session %s history: %w", pm.SessionID, err)
	}
	return true, &t, nil
}

func (uc *Answer) generate(ctx context.Context, pm domain.Message) (string, error) {
	prompt := domain.PromptFromMessage(pm)
	attempts := max(uc.Attempts, 1)
	backoff := uc.Backoff
	var err error
	for i := range attempts {
		var text string
		text, err = uc.try(ctx, pm, prompt)
		if err == nil {
			return text, nil
		}
		if ctx.Err() != nil || i == attempts-1 {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return "", fmt.Errorf("generator failed after %d attempts: %w", attempts, err)
}

// try runs the generator once, streaming its text under a new attempt
// when Deltas is set. A successful try's last delta is written (or given
// up after DeltaTimeout) before it returns, so before the answer is
// recorded and committed; a failed try's stream just stops, and the
// failure answer or the next attempt follows it.
func (uc *Answer) try(ctx context.Context, pm domain.Message, prompt domain.Prompt) (string, error) {
	var stream *deltaStream
	if uc.Deltas != nil && uc.Key != nil {
		head := domain.Delta{ReplyTo: pm.ReplyTo, SessionID: pm.SessionID, UserID: pm.UserID, Attempt: uc.attempts.next(now(uc.Now)),
			Trace: domain.Trace{AskedAt: pm.Trace.AskedAt}, Reply: pm.Reply}
		stream = startDeltaStream(ctx, uc.Deltas, uc.Key, head, cmp.Or(uc.DeltaEvery, DefaultDeltaEvery), cmp.Or(uc.DeltaTimeout, DefaultDeltaTimeout))
	}
	var onChunk func(string)
	if uc.OnChunk != nil || stream != nil {
		onChunk = func(c string) {
			if uc.OnChunk != nil {
				uc.OnChunk(pm, c)
			}
			if stream != nil {
				stream.chunk(c)
			}
		}
	}
	text, err := uc.Generator.Generate(ctx, prompt, onChunk)
	if stream != nil {
		if err == nil {
			stream.finish()
		} else {
			stream.abort()
		}
	}
	return text, err
}
