package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Role says who spoke a turn.
type Role string

// The two roles of a conversation.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Turn is one utterance of a session: the user's question or the
// assistant's answer. MessageID identifies it (appending the same turn
// twice records it once).
type Turn struct {
	Role      Role
	MessageID string
	Text      string
	Citations []Citation
	At        time.Time
}

// Passage is one retrieved chunk of the knowledge base.
type Passage struct {
	// Source is the document the passage comes from (a path such as
	// "consumer.md").
	Source string
	// Title is the heading the passage sits under.
	Title string
	Text  string
	Score float64
}

// DerivedID returns a stable UUID-shaped id for kind of the message id:
// the prompt and the answer of a query get the same ids however often a
// stage runs, so a retried stage writes the same turn and record again.
func DerivedID(messageID, kind string) string {
	sum := sha256.Sum256([]byte("kchat/" + kind + "/" + messageID))
	u := sum[:16]
	u[6] = 0x80 | (u[6] & 0x0f) // version 8: custom
	u[8] = 0x80 | (u[8] & 0x3f) // variant 10
	s := hex.EncodeToString(u)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}
