package domain_test

import (
	"errors"
	"testing"

	"github.com/kchat/kchat/domain"
)

func TestDeltaSignature(t *testing.T) {
	k, _ := domain.NewAnswerKey([]byte("delta-test-key-0123456789abcdefghij"))
	other, _ := domain.NewAnswerKey([]byte("another-delta-key-0123456789abcdefgh"))
	d := k.SignDelta(domain.Delta{ReplyTo: "q1", SessionID: "s1", UserID: "u1", Attempt: 7, Seq: 2, Text: "Run make run"})
	if err := k.VerifyDelta(d); err != nil {
		t.Fatalf("a signed delta: %v", err)
	}
	for name, change := range map[string]func(*domain.Delta){
		"text":     func(d *domain.Delta) { d.Text += "!" },
		"reply_to": func(d *domain.Delta) { d.ReplyTo = "q2" },
		"session":  func(d *domain.Delta) { d.SessionID = "s2" },
		"user":     func(d *domain.Delta) { d.UserID = "u2" },
		"attempt":  func(d *domain.Delta) { d.Attempt++ },
		"seq":      func(d *domain.Delta) { d.Seq++ },
	} {
		forged := d
		change(&forged)
		if err := k.VerifyDelta(forged); !errors.Is(err, domain.ErrBadSignature) {
			t.Errorf("%s changed after signing: %v, want ErrBadSignature", name, err)
		}
	}
	var mismatch *domain.KeyMismatchError
	if err := other.VerifyDelta(d); !errors.As(err, &mismatch) {
		t.Errorf("verified with another key: %v, want a key mismatch", err)
	}
	d.Signature = ""
	if err := k.VerifyDelta(d); !errors.Is(err, domain.ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	// A delta's signature is no answer's: the forms differ.
	m := k.Sign(domain.Message{Type: domain.TypeAnswer, MessageID: "a", SessionID: "s1", UserID: "u1", ReplyTo: "q1", Text: "Run make run"})
	if err := k.VerifyDelta(domain.Delta{ReplyTo: "q1", SessionID: "s1", UserID: "u1", Text: "Run make run", Signature: m.Signature}); !errors.Is(err, domain.ErrBadSignature) {
		t.Errorf("an answer's signature on a delta: %v, want ErrBadSignature", err)
	}
}
