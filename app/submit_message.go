package app

import (
	"context"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// SubmitMessageInput is a message as a client submits it: the id and time
// are optional and filled in when missing.
type SubmitMessageInput struct {
	SessionID string
	UserID    string
	MessageID string
	Type      domain.MessageType
	Message   string
	ReplyTo   string
	Metadata  map[string]any
	Citations []domain.Citation
	// Reply routes a query's answer (docs/design.md, "Answer routing").
	Reply domain.Reply
}

// SubmitMessageResult says where a submitted message was stored.
type SubmitMessageResult struct {
	MessageID string
	Position  domain.Position
}

// SubmitMessage validates a message and publishes it to the topic of its type.
type SubmitMessage struct {
	Publisher ports.Publisher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Execute returns a *domain.ValidationError for bad input and the publisher's
// error (domain.ErrUnavailable when Kafka did not acknowledge in time).
func (uc *SubmitMessage) Execute(ctx context.Context, in SubmitMessageInput) (SubmitMessageResult, error) {
	msg, err := newMessage(in, uc.Now)
	if err != nil {
		return SubmitMessageResult{}, err
	}
	pos, err := uc.Publisher.Publish(ctx, msg)
	if err != nil {
		return SubmitMessageResult{MessageID: msg.MessageID}, err
	}
	return SubmitMessageResult{MessageID: msg.MessageID, Position: pos}, nil
}

// newMessage turns client input into a message, filling in the id and time.
func newMessage(in SubmitMessageInput, now func() time.Time) (domain.Message, error) {
	if now == nil {
		now = time.Now
	}
	msg := domain.Message{
		MessageID: in.MessageID,
		SessionID: in.SessionID,
		UserID:    in.UserID,
		Type:      in.Type,
		Text:      in.Message,
		ReplyTo:   in.ReplyTo,
		CreatedAt: now().UTC(),
		Metadata:  in.Metadata,
		Citations: in.Citations,
		Reply:     in.Reply,
	}
	if msg.MessageID == "" {
		msg.MessageID = domain.NewMessageID()
	}
	return msg, msg.Validate()
}
