package kafka

import (
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
)

// Record header names (docs/design.md, "Topics and wire format").
const (
	HeaderType          = "kchat-type"
	HeaderMessageID     = "kchat-message-id"
	HeaderCorrelationID = "kchat-correlation-id"
	HeaderUserID        = "kchat-user-id"
)

// NewRecord encodes msg as a record for topic: key = session id, value =
// the v1 envelope (wire.Envelope), and the kchat headers.
func NewRecord(topic string, msg domain.Message) (*kgo.Record, error) {
	value, err := json.Marshal(wire.EnvelopeOf(msg))
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
	var env wire.Envelope
	if err := json.Unmarshal(value, &env); err != nil {
		return domain.Message{}, fmt.Errorf("decode envelope: %w", err)
	}
	if env.V != domain.EnvelopeVersion {
		return domain.Message{}, fmt.Errorf("decode envelope: version %d, want %d", env.V, domain.EnvelopeVersion)
	}
	msg := env.Domain()
	if err := msg.Validate(); err != nil {
		return domain.Message{}, fmt.Errorf("decode envelope: %w", err)
	}
	return msg, nil
}

// kerrFor turns a Kafka error code into an error (nil for 0).
func kerrFor(code int16) error {
	return kerr.ErrorForCode(code)
}
