package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// Delta is a piece of an answer while it is generated (docs/design.md,
// "Streaming answers"). The answerer writes deltas beside the answer
// topic's transaction, best effort; the final answer is the truth and
// replaces them.
//
// Attempt names one generation of the answer: a retry, in the same process
// or after a crash, streams again under a greater attempt, and a reader
// keeps the text of the greatest attempt it has seen, never a mix. Seq
// numbers the deltas of an attempt from 0, so a reader that missed one (or
// joined mid-stream) can tell.
type Delta struct {
	ReplyTo   string // the question's message id
	SessionID string
	UserID    string
	Attempt   int64
	Seq       int
	Text      string
	// Signature is "<key id>.<base64url HMAC>" over the canonical form,
	// made with the answer key, as answers are.
	Signature string
	// Trace is for observability only, outside the signature.
	Trace Trace
	// Reply routes the delta to the partition its answer goes to.
	Reply Reply
}

// AnswerID is the id of the final answer this delta is part of.
func (d Delta) AnswerID() string { return DerivedID(d.ReplyTo, "answer") }

// SignDelta returns d with its Signature set.
func (k *AnswerKey) SignDelta(d Delta) Delta {
	d.Signature = k.id + "." + base64.RawURLEncoding.EncodeToString(k.deltaMAC(d))
	return d
}

// VerifyDelta reports whether d carries a signature made by this key over
// d as it is: nil, ErrUnsigned, *KeyMismatchError or ErrBadSignature.
func (k *AnswerKey) VerifyDelta(d Delta) error {
	if d.Signature == "" {
		return ErrUnsigned
	}
	id, sig, ok := strings.Cut(d.Signature, ".")
	if !ok || len(id) != 8 || len(sig) > 64 {
		return ErrBadSignature
	}
	if id != k.id {
		return &KeyMismatchError{Theirs: id, Ours: k.id}
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.deltaMAC(d)) {
		return ErrBadSignature
	}
	return nil
}

func (k *AnswerKey) deltaMAC(d Delta) []byte {
	var c canonicalForm
	c.field("kchat-delta-v1")
	c.field(k.id)
	c.field(d.ReplyTo)
	c.field(d.SessionID)
	c.field(d.UserID)
	c.field(strconv.FormatInt(d.Attempt, 10))
	c.field(strconv.Itoa(d.Seq))
	c.field(d.Text)
	h := hmac.New(sha256.New, k.secret)
	_, _ = h.Write(c.b)
	return h.Sum(nil)
}

// StreamTopicName is the topic of the answer deltas under prefix.
func StreamTopicName(prefix string) string { return prefix + "answer.stream" }
