package kafka_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
)

// What the answerer signs still verifies after the envelope's JSON round
// trip: prompts with history and passages, failed answers, odd scores and
// text that JSON cannot carry as it is (invalid UTF-8 in a passage).
func TestSignatureSurvivesTheEnvelope(t *testing.T) {
	key, err := domain.NewAnswerKey([]byte("a key of at least thirty-two bytes, for tests"))
	if err != nil {
		t.Fatal(err)
	}
	q := domain.Message{MessageID: "q1", SessionID: "s1", UserID: "alice", Type: domain.TypeQuery, Text: "How do I <start> kchat?"}
	history := []domain.Turn{{Role: domain.RoleUser, MessageID: "q0", Text: "earlier \"question\""}, {Role: domain.RoleAssistant, MessageID: "a0", Text: "an answer [1] ünïcode"}}
	passages := []domain.Passage{
		{Source: "running.md", Title: "Run", Text: "make run \xff\xfe then wait", Score: 0.1 + 0.2},
		{Source: "x.md", Text: "plain", Score: 1e-7},
	}
	now := time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.FixedZone("CEST", 2*3600))
	prompt := key.Sign(domain.NewPromptMessage(q, domain.BuildPrompt(q.Text, q.MessageID, history, passages), now))
	failed := key.Sign(domain.NewFailedAnswer(prompt, "generator failed after 3 attempts: model down", now))
	answer := key.Sign(domain.NewAnswerMessage(prompt, "Run make run [1] and [2].", now))
	for _, m := range []domain.Message{prompt, failed, answer} {
		rec, err := kafka.NewRecord("t", m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := kafka.DecodeValue(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		if back.Signature != m.Signature {
			t.Fatalf("%s: signature %q came back as %q", m.Type, m.Signature, back.Signature)
		}
		if err := key.Verify(back); err != nil {
			t.Errorf("%s: does not verify after the round trip: %v", m.Type, err)
		}
		back.Text += "!"
		if err := key.Verify(back); err == nil {
			t.Errorf("%s: a changed text still verifies", m.Type)
		}
	}
}

// Readers accept records without a signature (the records of the producer,
// and those written before signatures existed); an unsigned message's
// envelope carries no signature field.
func TestUnsignedEnvelopeHasNoSignature(t *testing.T) {
	m := domain.Message{MessageID: "a1", SessionID: "s1", UserID: "u", Type: domain.TypeAnswer, Text: "hi", ReplyTo: "q1"}
	rec, err := kafka.NewRecord("answer", m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec.Value), "signature") {
		t.Fatalf("unsigned envelope %s carries a signature field", rec.Value)
	}
	back, err := kafka.DecodeValue(rec.Value)
	if err != nil || back.Signature != "" {
		t.Fatalf("DecodeValue = %+v, %v", back, err)
	}
}
