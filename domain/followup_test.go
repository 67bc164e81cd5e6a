package domain_test

import (
	"testing"

	"github.com/kchat/kchat/domain"
)

func TestReadsAsFollowUp(t *testing.T) {
	for _, tt := range []struct {
		give string
		want bool
	}{
		{"And what does the WebSocket chat do then?", true},
		{"and the linter?", true},
		{"What about the gateway?", true},
		{"Is it ever skipped?", true},
		{"How long do they last?", true},
		{"Does that move the group's offsets?", true},
		{"Also, can I peek?", true},
		{"What happens if Kafka is down when the producer starts?", false},
		{"Is there a web page to chat in the browser?", false},
		{"How many messages can I send in one batch request?", false},
		{"New question: how do I fuzz the producer?", false},
		{"Different topic: how do I build each service as its own binary?", false},
		{"Another thing: what is a poison record?", false},
		{"", false},
		{"?!", false},
	} {
		if got := domain.ReadsAsFollowUp(tt.give); got != tt.want {
			t.Errorf("ReadsAsFollowUp(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestFollowUpContext(t *testing.T) {
	user := func(text string) domain.Turn { return domain.Turn{Role: domain.RoleUser, Text: text} }
	answer := func(text string) domain.Turn { return domain.Turn{Role: domain.RoleAssistant, Text: text} }
	history := []domain.Turn{
		user("How do I acknowledge a message?"), answer("POST /messages/ack [1]"),
		user("How do I build kchat?"), answer("Run make build [1]"),
		user("and the tests?"), answer("Run make test [1]"),
	}
	for _, tt := range []struct {
		name     string
		question string
		history  []domain.Turn
		want     string
	}{
		{"a question that stands alone", "What is a poison record?", history, ""},
		{"no history", "and the linter?", nil, ""},
		{"only answers", "and the linter?", []domain.Turn{answer("x")}, ""},
		{"the previous question", "Is it fast?", history[:4], "How do I build kchat?"},
		// A follow-up of a follow-up reaches the question it continued,
		// and no further.
		{"a chain", "and the linter?", history, "and the tests?\nHow do I build kchat?"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.FollowUpContext(tt.question, tt.history); got != tt.want {
				t.Errorf("FollowUpContext(%q) = %q, want %q", tt.question, got, tt.want)
			}
		})
	}
}
