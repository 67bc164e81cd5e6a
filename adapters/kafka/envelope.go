package kafka

import (
	"fmt"
	"time"

	json "github.com/goccy/go-json"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// Record header names (SPEC §2).
const (
	HeaderType          = "kchat-type"
	HeaderMessageID     = "kchat-message-id"
	HeaderCorrelationID = "kchat-correlation-id"
	HeaderUserID        = "kchat-user-id"
)

// envelopeV1 is the JSON value of every kchat record.
type envelopeV1 struct {
	V         int            `json:"v"`
	MessageID string         `json:"message_id"`
	SessionID string         `json:"session_id"`
	UserID    string         `json:"user_id"`
	Type      string         `json:"type"`
	Message   string         `json:"message"`
	ReplyTo   string         `json:"reply_to,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	Metadata  map[string]any `json:"metadata"`
	Citations []citationV1   `json:"citations"`
}

type citationV1 struct {
	N       int     `json:"n"`
	Source  string  `json:"source"`
	Title   string  `json:"title"`
	Score   float64 `json:"score"`
	Snippet string  `json:"snippet"`
}

// NewRecord encodes msg as a record for topic: key = session id, value =
// the v1 envelope, and the kchat headers.
func NewRecord(topic string, msg domain.Message) (*kgo.Record, error) {
	env := envelopeV1{
		V:         domain.EnvelopeVersion,
		MessageID: msg.MessageID,
		SessionID: msg.SessionID,
		UserID:    msg.UserID,
		Type:      string(msg.Type),
		Message:   msg.Text,
		ReplyTo:   msg.ReplyTo,
		CreatedAt: msg.CreatedAt.UTC(),
		Metadata:  msg.Metadata,
		Citations: make([]citationV1, len(msg.Citations)),
	}
	if env.Metadata == nil {
		env.Metadata = map[string]any{}
	}
	for i, c := range msg.Citations {
		env.Citations[i] = citationV1(c)
	}
	value, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", msg.MessageID, err)
	}
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(msg.SessionID),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderType, Value: []byte(msg.Type)},
			{Key: HeaderMessageID, Value: []byte(msg.MessageID)},
			{Key: HeaderCorrelationID, Value: []byte(msg.CorrelationID())},
			{Key: HeaderUserID, Value: []byte(msg.UserID)},
		},
	}, nil
}

// DecodeValue decodes a record value. It fails for anything that is not a
// valid v1 envelope: such records are poison and must be reported, not
// dropped.
func DecodeValue(value []byte) (domain.Message, error) {
	var env envelopeV1
	if err := json.Unmarshal(value, &env); err != nil {
		return domain.Message{}, fmt.Errorf("decode envelope: %w", err)
	}
	if env.V != domain.EnvelopeVersion {
		return domain.Message{}, fmt.Errorf("decode envelope: version %d, want %d", env.V, domain.EnvelopeVersion)
	}
	msg := domain.Message{
		MessageID: env.MessageID,
		SessionID: env.SessionID,
		UserID:    env.UserID,
		Type:      domain.MessageType(env.Type),
		Text:      env.Message,
		ReplyTo:   env.ReplyTo,
		CreatedAt: env.CreatedAt,
		Metadata:  env.Metadata,
	}
	if len(msg.Metadata) == 0 {
		msg.Metadata = nil
	}
	for _, c := range env.Citations {
		msg.Citations = append(msg.Citations, domain.Citation(c))
	}
	if err := msg.Validate(); err != nil {
		return domain.Message{}, fmt.Errorf("decode envelope: %w", err)
	}
	return msg, nil
}

// kerrFor turns a Kafka error code into an error (nil for 0).
func kerrFor(code int16) error {
	return kerr.ErrorForCode(code)
}
