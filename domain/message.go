package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a message, from the wire contract (docs/design.md, "Topics and
// wire format").
const (
	// EnvelopeVersion is the version of the wire envelope this code writes.
	EnvelopeVersion = 1
	// MaxMessageBytes is the largest message text accepted, in bytes.
	MaxMessageBytes = 32 * 1024
	// MaxIDLength is the longest session, user, message or reply id accepted,
	// in characters.
	MaxIDLength = 128
	// AnonymousUser is the user of a message in the seed's format that
	// named none: its producer accepted an empty user_id (docs/migration.md).
	AnonymousUser = "anonymous"
)

// MessageType names the stage of the pipeline a message belongs to; each type
// has its own topic.
type MessageType string

// The three message types, one per topic.
const (
	TypeQuery  MessageType = "query"
	TypePrompt MessageType = "prompt"
	TypeAnswer MessageType = "answer"
)

// MessageTypes lists every type in pipeline order.
var MessageTypes = []MessageType{TypeQuery, TypePrompt, TypeAnswer}

// Valid reports whether t is one of the three message types.
func (t MessageType) Valid() bool {
	switch t {
	case TypeQuery, TypePrompt, TypeAnswer:
		return true
	}
	return false
}

// Citation points an answer at the knowledge-base passage that supports it.
type Citation struct {
	N       int
	Source  string
	Title   string
	Score   float64
	Snippet string
}

// Message is one envelope travelling through the query → prompt → answer
// pipeline. Its wire form is the versioned JSON envelope of docs/design.md
// ("Topics and wire format"); the
// adapters own the encoding.
type Message struct {
	MessageID string
	SessionID string
	UserID    string
	Type      MessageType
	Text      string
	// ReplyTo is the message_id of the query this prompt or answer belongs to.
	ReplyTo   string
	CreatedAt time.Time
	Metadata  map[string]any
	Citations []Citation
	// Signature is set on what the answerer writes (prompts and answers),
	// by AnswerKey.Sign; empty on everything else.
	Signature string
	// Trace is for observability only, outside the envelope and its
	// signature.
	Trace Trace
	// Reply routes a query's answer (set on queries and prompts).
	Reply Reply
}

// CorrelationID is the id that ties a query to its prompt and answer: the
// query's own message_id, or the query it replies to.
func (m Message) CorrelationID() string {
	if m.ReplyTo != "" {
		return m.ReplyTo
	}
	return m.MessageID
}

// Validate checks the message against the wire contract. It returns a
// *ValidationError naming the first field that is wrong.
func (m Message) Validate() error {
	if !m.Type.Valid() {
		return &ValidationError{Field: "type", Reason: fmt.Sprintf("must be one of query, prompt, answer; got %q", m.Type)}
	}
	if err := validateID("message_id", m.MessageID, true); err != nil {
		return err
	}
	if err := validateID("session_id", m.SessionID, true); err != nil {
		return err
	}
	if err := validateID("user_id", m.UserID, true); err != nil {
		return err
	}
	if err := validateID("reply_to", m.ReplyTo, false); err != nil {
		return err
	}
	switch {
	case m.Text == "":
		return &ValidationError{Field: "message", Reason: "must not be empty"}
	case len(m.Text) > MaxMessageBytes:
		return &ValidationError{Field: "message", Reason: fmt.Sprintf("is %d bytes; the limit is %d bytes (32 KiB)", len(m.Text), MaxMessageBytes)}
	case !utf8.ValidString(m.Text):
		return &ValidationError{Field: "message", Reason: "must be valid UTF-8"}
	}
	return nil
}

// ValidateID checks a required id (session, user, message) against the
// wire contract: 1 to MaxIDLength characters of valid UTF-8, printable.
// It returns a *ValidationError naming field.
func ValidateID(field, id string) error { return validateID(field, id, true) }

func validateID(field, id string, required bool) error {
	switch {
	case id == "" && required:
		return &ValidationError{Field: field, Reason: "is required"}
	case len(id) > 4*MaxIDLength || utf8.RuneCountInString(id) > MaxIDLength:
		return &ValidationError{Field: field, Reason: fmt.Sprintf("is longer than %d characters", MaxIDLength)}
	case !utf8.ValidString(id):
		return &ValidationError{Field: field, Reason: "must be valid UTF-8"}
	case strings.IndexFunc(id, unprintable) >= 0:
		return &ValidationError{Field: field, Reason: "must not contain control characters or bidirectional overrides"}
	}
	return nil
}

// unprintable reports the characters an id may not hold: ids end up raw in
// Kafka keys and headers, Redis keys and logs, where a control character
// (NUL, CR, LF, ESC) or a bidirectional override (which reorders how the
// text around it is shown) would corrupt or disguise them.
func unprintable(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f': // Arabic letter mark, LRM, RLM
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069': // embeddings, overrides, isolates
		return true
	}
	return false
}
