package domain_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
)

const secret = "0123456789abcdef0123456789abcdef-answer"

func key(t *testing.T, s string) *domain.AnswerKey {
	t.Helper()
	k, err := domain.NewAnswerKey([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signedAnswer() domain.Message {
	return domain.Message{
		MessageID: "a1", SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, Text: "Run make run [1].",
		ReplyTo: "q1", CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Metadata:  map[string]any{"error": "generator failed"},
		Citations: []domain.Citation{{N: 1, Source: "running.md", Title: "Run", Score: 1.25, Snippet: "make run"}},
	}
}

// Every field that reaches the user or routes the answer is covered: a
// change to any of them after signing breaks the signature.
func TestSignatureCoversEveryFieldThatMatters(t *testing.T) {
	k := key(t, secret)
	tests := map[string]func(m *domain.Message){
		"message_id": func(m *domain.Message) { m.MessageID = "a2" },
		"session_id": func(m *domain.Message) { m.SessionID = "s2" },
		"user_id":    func(m *domain.Message) { m.UserID = "mallory" },
		"reply_to":   func(m *domain.Message) { m.ReplyTo = "q2" },
		"type":       func(m *domain.Message) { m.Type = domain.TypePrompt },
		"created_at": func(m *domain.Message) { m.CreatedAt = m.CreatedAt.Add(time.Nanosecond) },
		"message":    func(m *domain.Message) { m.Text += " Or not." },
		"failure":    func(m *domain.Message) { m.Metadata = map[string]any{"error": "another reason"} },
		"no failure": func(m *domain.Message) { m.Metadata = nil },
		"metadata":   func(m *domain.Message) { m.Metadata["history"] = []any{} },
		"citation":   func(m *domain.Message) { m.Citations[0].Snippet = "rm -rf /" },
		"source":     func(m *domain.Message) { m.Citations[0].Source = "evil.md" },
		"score":      func(m *domain.Message) { m.Citations[0].Score = 1.5 },
		"one more":   func(m *domain.Message) { m.Citations = append(m.Citations, domain.Citation{N: 2}) },
		// Length prefixes: moving text from one field to the next is a change.
		"shifted": func(m *domain.Message) { m.SessionID, m.UserID = "s1a", "lice" },
	}
	for name, change := range tests {
		m := k.Sign(signedAnswer())
		if err := k.Verify(m); err != nil {
			t.Fatalf("%s: the signed answer does not verify: %v", name, err)
		}
		change(&m)
		if err := k.Verify(m); !errors.Is(err, domain.ErrBadSignature) {
			t.Errorf("%s changed after signing: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestVerifyTellsWhatIsWrong(t *testing.T) {
	ours, theirs := key(t, secret), key(t, secret+"-other")
	m := signedAnswer()
	if err := ours.Verify(m); !errors.Is(err, domain.ErrUnsigned) {
		t.Errorf("unsigned: %v, want ErrUnsigned", err)
	}
	var mismatch *domain.KeyMismatchError
	err := ours.Verify(theirs.Sign(m))
	if !errors.As(err, &mismatch) || mismatch.Theirs != theirs.ID() || mismatch.Ours != ours.ID() {
		t.Errorf("another key: %v, want a KeyMismatchError naming both key ids", err)
	}
	for _, sig := range []string{"nonsense", ours.ID() + ".!!!", ours.ID() + ".", ours.ID() + "." + strings.Repeat("A", 43), strings.Repeat("x", 9) + ".abc"} {
		m.Signature = sig
		if err := ours.Verify(m); !errors.Is(err, domain.ErrBadSignature) {
			t.Errorf("signature %q: %v, want ErrBadSignature", sig, err)
		}
	}
}

func TestAnswerKeyNeverShowsItsSecret(t *testing.T) {
	if _, err := domain.NewAnswerKey([]byte("short")); err == nil || strings.Contains(err.Error(), "short") {
		t.Fatalf("a 5-byte key: %v, want an error that does not quote it", err)
	}
	k := key(t, secret)
	if len(k.ID()) != 8 || k.ID() != domain.KeyID([]byte(secret)) {
		t.Fatalf("key id %q, want the 8 hex digits of KeyID", k.ID())
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, k); strings.Contains(out, secret[:16]) || !strings.Contains(out, k.ID()) {
			t.Errorf("%s prints %q: want the key id, never the secret", format, out)
		}
	}
	if s := k.Sign(signedAnswer()).Signature; !strings.HasPrefix(s, k.ID()+".") || strings.Contains(s, secret[:16]) {
		t.Errorf("signature %q, want <key id>.<mac>", s)
	}
}
