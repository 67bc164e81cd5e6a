package kafka

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
)

// Record header names (docs/design.md, "Topics and wire format").
const (
	HeaderType          = "kchat-type"
	HeaderMessageID     = "kchat-message-id"
	HeaderCorrelationID = "kchat-correlation-id"
	HeaderUserID        = "kchat-user-id"
	// HeaderAskedAt carries, on prompts, answers and deltas, when their
	// question was published (its query record's timestamp, Unix
	// milliseconds), for the end-to-end latency (docs/design.md, "Tracing").
	HeaderAskedAt = "kchat-asked-at"
)

// NewRecord encodes msg as a record for topic: key = session id, value =
// the v1 envelope (wire.Envelope), and the kchat headers.
func NewRecord(topic string, msg domain.Message) (*kgo.Record, error) {
	value, err := json.Marshal(wire.EnvelopeOf(msg))
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", msg.MessageID, err)
	}
	r := &kgo.Record{
		Topic: topic,
		Key:   []byte(msg.SessionID),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderType, Value: []byte(msg.Type)},
			{Key: HeaderMessageID, Value: []byte(msg.MessageID)},
			{Key: HeaderCorrelationID, Value: []byte(msg.CorrelationID())},
			{Key: HeaderUserID, Value: []byte(msg.UserID)},
		},
	}
	if h, ok := askedAtHeader(msg.Trace); ok {
		r.Headers = append(r.Headers, h)
	}
	if h, ok := replyRecordHeader(msg.Reply); ok {
		r.Headers = append(r.Headers, h)
	}
	return r, nil
}

// askedAtHeader is t's question time as a record header.
func askedAtHeader(t domain.Trace) (kgo.RecordHeader, bool) {
	if t.AskedAt.IsZero() {
		return kgo.RecordHeader{}, false
	}
	return kgo.RecordHeader{Key: HeaderAskedAt, Value: strconv.AppendInt(nil, t.AskedAt.UnixMilli(), 10)}, true
}

// recordTrace is what r tells of its question's way: its own time, its
// question's (the header, or r's own for a query) and the trace context of
// the span r.Context holds (the reader's span, when tracing is on).
func recordTrace(r *kgo.Record, asked bool) domain.Trace {
	t := domain.Trace{PublishedAt: r.Timestamp}
	if asked {
		t.AskedAt = r.Timestamp
	}
	for _, h := range r.Headers {
		if h.Key == HeaderAskedAt {
			if ms, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil && ms > 0 {
				t.AskedAt = time.UnixMilli(ms)
			}
		}
	}
	if r.Context != nil && trace.SpanContextFromContext(r.Context).IsValid() {
		c := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(r.Context, c)
		t.Parent = c.Get("traceparent")
	}
	return t
}

// DecodeValue decodes a record value. It fails for anything that is not a
// valid v1 envelope: such records are poison and must be reported, not
// dropped. Readers of records use DecodeRecord, which also reads the seed's
// format.
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

// legacyValue is the value the seed's producer wrote: the five fields of
// its request as a JSON object, all strings, any of them possibly empty,
// and no version (docs/migration.md, "Records").
type legacyValue struct {
	V         *int   `json:"v"`
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	MessageID string `json:"message_id"`
	Type      string `json:"type"`
	Message   string `json:"message"`
}

// DecodeRecord decodes r's value: a v1 envelope, or a record in the seed's
// format (no "v"), upgraded on read. An upgraded record's empty ids are
// filled: the message id from the record key (the seed keyed records by
// it), else one derived from the record's position, so every reader and
// every retry names it alike; the session id from the message id (a
// conversation of its own); the user as domain.AnonymousUser. Its type is the one
// its topic carries (the seed used the type as the topic name) and its
// time the record's. An empty message, or fields of other JSON types, are
// poison, as is anything else that is no envelope.
func DecodeRecord(r *kgo.Record) (domain.Message, error) {
	m, err := decodeRecord(r)
	if err == nil {
		m.Trace = recordTrace(r, m.Type == domain.TypeQuery)
		m.Reply, _ = replyHeader(r)
	}
	return m, err
}

func decodeRecord(r *kgo.Record) (domain.Message, error) {
	var lv legacyValue
	if err := json.Unmarshal(r.Value, &lv); err != nil || lv.V != nil {
		return DecodeValue(r.Value)
	}
	m := domain.Message{
		MessageID: lv.MessageID, SessionID: lv.SessionID, UserID: lv.UserID,
		Type: topicType(r.Topic, lv.Type), Text: lv.Message, CreatedAt: r.Timestamp,
	}
	if m.MessageID == "" {
		m.MessageID = string(r.Key)
	}
	if m.MessageID == "" {
		m.MessageID = domain.DerivedID(fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset), "legacy")
	}
	if m.SessionID == "" {
		m.SessionID = m.MessageID
	}
	if m.UserID == "" {
		m.UserID = domain.AnonymousUser
	}
	if err := m.Validate(); err != nil {
		return domain.Message{}, fmt.Errorf("decode seed record: %w", err)
	}
	return m, nil
}

// topicType is the type topic carries: the type its name ends with, or
// named when the name ends with none (then Validate judges it).
func topicType(topic, named string) domain.MessageType {
	for _, t := range []domain.MessageType{domain.TypeQuery, domain.TypePrompt, domain.TypeAnswer} {
		if strings.HasSuffix(topic, string(t)) {
			return t
		}
	}
	return domain.MessageType(named)
}

// kerrFor turns a Kafka error code into an error (nil for 0).
func kerrFor(code int16) error {
	return kerr.ErrorForCode(code)
}
