package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MinKeyBytes is the shortest secret kchat accepts for a signing key.
const MinKeyBytes = 32

// What Verify finds wrong with a message's signature.
var (
	// ErrUnsigned means the message carries no signature.
	ErrUnsigned = errors.New("not signed")
	// ErrBadSignature means the signature is malformed, or it names our
	// key but does not match the message: a forgery, or a message changed
	// after it was signed.
	ErrBadSignature = errors.New("bad signature")
)

// KeyMismatchError says a message was signed with a key other than ours:
// most likely two processes that were not given the same secret.
type KeyMismatchError struct {
	// Theirs is the key id the signature names; Ours is the verifier's.
	Theirs, Ours string
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("signed with another key (key id %s, ours %s)", e.Theirs, e.Ours)
}

// KeyID names a secret without revealing it: the first 8 hex digits of
// its SHA-256. Logs and signatures carry it so that two processes with
// different secrets can tell.
func KeyID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:4])
}

// AnswerKey signs what the answerer writes (prompts and answers) and
// verifies it where it is read: an HMAC-SHA256 over the message's
// canonical form. Its String names the key id, never the secret.
type AnswerKey struct {
	secret []byte
	id     string
}

// NewAnswerKey returns the key of secret, which must be at least
// MinKeyBytes long.
func NewAnswerKey(secret []byte) (*AnswerKey, error) {
	if len(secret) < MinKeyBytes {
		return nil, fmt.Errorf("the key is %d bytes; at least %d are needed", len(secret), MinKeyBytes)
	}
	return &AnswerKey{secret: slices.Clone(secret), id: KeyID(secret)}, nil
}

// ID is the key id signatures made with this key carry.
func (k *AnswerKey) ID() string { return k.id }

func (k *AnswerKey) String() string { return "answer key " + k.id }

// GoString keeps %#v from printing the secret.
func (k *AnswerKey) GoString() string { return k.String() }

// Sign returns m with its Signature set: "<key id>.<base64url HMAC>".
func (k *AnswerKey) Sign(m Message) Message {
	m.Signature = k.id + "." + base64.RawURLEncoding.EncodeToString(k.mac(m))
	return m
}

// Verify reports whether m carries a signature made by this key over m as
// it is: nil, ErrUnsigned, *KeyMismatchError or ErrBadSignature.
func (k *AnswerKey) Verify(m Message) error {
	if m.Signature == "" {
		return ErrUnsigned
	}
	id, sig, ok := strings.Cut(m.Signature, ".")
	if !ok || len(id) != 8 || len(sig) > 64 {
		return ErrBadSignature
	}
	if id != k.id {
		return &KeyMismatchError{Theirs: id, Ours: k.id}
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.mac(m)) {
		return ErrBadSignature
	}
	return nil
}

func (k *AnswerKey) mac(m Message) []byte {
	h := hmac.New(sha256.New, k.secret)
	_, _ = h.Write(canonical(k.id, m))
	return h.Sum(nil)
}

// canonical is the form of m a signature covers: every field that reaches
// a user or decides where a message goes (type, ids, reply_to, the time,
// the text, the metadata, where the failure reason and a prompt's history
// live, and the citations), each length-prefixed so no two messages share
// a form, and each as a reader sees it after the JSON envelope's round
// trip (which turns invalid UTF-8 into U+FFFD and numbers into float64).
// The signature itself is left out.
func canonical(keyID string, m Message) []byte {
	var c canonicalForm
	c.field("kchat-signature-v1")
	c.field(keyID)
	c.field(string(m.Type))
	c.field(m.MessageID)
	c.field(m.SessionID)
	c.field(m.UserID)
	c.field(m.ReplyTo)
	c.field(m.CreatedAt.UTC().Format(time.RFC3339Nano))
	c.field(m.Text)
	c.field(canonicalMetadata(m.Metadata))
	c.field(strconv.Itoa(len(m.Citations)))
	for _, ct := range m.Citations {
		c.field(strconv.Itoa(ct.N))
		c.field(ct.Source)
		c.field(ct.Title)
		c.field(strconv.FormatFloat(ct.Score, 'g', -1, 64))
		c.field(ct.Snippet)
	}
	return c.b
}

type canonicalForm struct{ b []byte }

func (c *canonicalForm) field(s string) {
	s = jsonString(s)
	c.b = strconv.AppendInt(c.b, int64(len(s)), 10)
	c.b = append(c.b, ':')
	c.b = append(c.b, s...)
	c.b = append(c.b, ',')
}

// jsonString is s as it comes back from JSON: each invalid UTF-8 byte
// replaced by U+FFFD.
func jsonString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s))
}

// canonicalMetadata is md as JSON with sorted keys, as a reader decodes it
// from the envelope (empty and nil are the same: the envelope writes {}).
func canonicalMetadata(md map[string]any) string {
	if len(md) == 0 {
		return ""
	}
	raw, err := json.Marshal(md)
	if err != nil {
		return "unencodable" // cannot travel in an envelope either
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "unencodable"
	}
	var b strings.Builder
	writeCanonical(&b, v)
	return b.String()
}

// writeCanonical writes a decoded JSON value with sorted object keys.
func writeCanonical(b *strings.Builder, v any) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k))
			b.WriteByte(':')
			writeCanonical(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case string:
		b.WriteString(strconv.Quote(v))
	case float64:
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	default: // nil
		b.WriteString("null")
	}
}
