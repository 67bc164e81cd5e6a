package domain_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/kchat/kchat/domain"
)

func validMessage() domain.Message {
	return domain.Message{
		MessageID: "m-1", SessionID: "s-1", UserID: "u-1",
		Type: domain.TypeQuery, Text: "How do I run kchat?",
	}
}

func TestMessageValidate(t *testing.T) {
	tests := []struct {
		name      string
		give      func(*domain.Message)
		wantField string
	}{
		{"valid", func(*domain.Message) {}, ""},
		{"valid prompt with reply", func(m *domain.Message) { m.Type = domain.TypePrompt; m.ReplyTo = "q-1" }, ""},
		{"message at the limit", func(m *domain.Message) { m.Text = strings.Repeat("a", domain.MaxMessageBytes) }, ""},
		{"unknown type", func(m *domain.Message) { m.Type = "shout" }, "type"},
		{"empty type", func(m *domain.Message) { m.Type = "" }, "type"},
		{"empty message", func(m *domain.Message) { m.Text = "" }, "message"},
		{"message over 32 KiB", func(m *domain.Message) { m.Text = strings.Repeat("a", domain.MaxMessageBytes+1) }, "message"},
		{"multibyte message over 32 KiB", func(m *domain.Message) { m.Text = strings.Repeat("é", domain.MaxMessageBytes/2+1) }, "message"},
		{"invalid utf-8", func(m *domain.Message) { m.Text = "bad \xff byte" }, "message"},
		{"missing session", func(m *domain.Message) { m.SessionID = "" }, "session_id"},
		{"missing user", func(m *domain.Message) { m.UserID = "" }, "user_id"},
		{"missing message id", func(m *domain.Message) { m.MessageID = "" }, "message_id"},
		{"long session id", func(m *domain.Message) { m.SessionID = strings.Repeat("s", domain.MaxIDLength+1) }, "session_id"},
		{"long reply_to", func(m *domain.Message) { m.ReplyTo = strings.Repeat("r", domain.MaxIDLength+1) }, "reply_to"},
		{"id at the limit", func(m *domain.Message) { m.UserID = strings.Repeat("u", domain.MaxIDLength) }, ""},
		{"multibyte id at the limit", func(m *domain.Message) { m.UserID = strings.Repeat("ü", domain.MaxIDLength) }, ""},
		{"multibyte id over the limit", func(m *domain.Message) { m.UserID = strings.Repeat("ü", domain.MaxIDLength+1) }, "user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMessage()
			tt.give(&m)
			err := m.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var verr *domain.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			if verr.Field != tt.wantField {
				t.Errorf("field = %q, want %q (%v)", verr.Field, tt.wantField, verr)
			}
			if verr.Reason == "" {
				t.Error("reason is empty")
			}
		})
	}
}

func TestCorrelationID(t *testing.T) {
	q := validMessage()
	if got := q.CorrelationID(); got != "m-1" {
		t.Errorf("query correlation = %q, want its own id", got)
	}
	a := validMessage()
	a.Type, a.ReplyTo = domain.TypeAnswer, "q-9"
	if got := a.CorrelationID(); got != "q-9" {
		t.Errorf("answer correlation = %q, want reply_to", got)
	}
}

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewMessageID(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := domain.NewMessageID()
		if !uuidV7.MatchString(id) {
			t.Fatalf("%q is not a UUIDv7", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		// The first 48 bits are milliseconds: ids never go back in time.
		if prev != "" && id[:13] < prev[:13] {
			t.Fatalf("id %q sorts before earlier id %q", id, prev)
		}
		prev = id
	}
}

// Ids end up raw in Kafka keys and headers and in Redis keys: control
// characters and bidirectional overrides are refused in every id field.
func TestIDsRefuseControlAndBidiCharacters(t *testing.T) {
	for _, bad := range []string{"a\x00b", "a\rb", "a\nb", "a\x1b[31mb", "a\u202eb", "a\u2066b", "a\u200fb", "a\x7fb"} {
		for _, field := range []string{"session_id", "user_id", "message_id", "reply_to"} {
			m := validMessage()
			switch field {
			case "session_id":
				m.SessionID = bad
			case "user_id":
				m.UserID = bad
			case "message_id":
				m.MessageID = bad
			case "reply_to":
				m.ReplyTo = bad
			}
			var verr *domain.ValidationError
			if err := m.Validate(); !errors.As(err, &verr) || verr.Field != field {
				t.Errorf("%s = %q: %v, want a validation error on %s", field, bad, err, field)
			}
		}
		if err := domain.ValidateID("session_id", bad); err == nil {
			t.Errorf("ValidateID(%q) passed", bad)
		}
	}
	for _, good := range []string{"s-1", "ünïcödé-Ω", "0193a2f4-8c1e-7d2a-9f00-1c2d3e4f5a6b", "alice@example.com"} {
		if err := domain.ValidateID("session_id", good); err != nil {
			t.Errorf("ValidateID(%q) = %v", good, err)
		}
	}
}
