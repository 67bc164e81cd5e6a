package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// Records in the seed's value format (its producer's five fields, no
// version) are read as messages, upgraded (issue 15, point 2).
func TestDecodeRecordReadsTheSeedFormat(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	rec := func(topic, key, value string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Partition: 2, Offset: 41, Value: []byte(value), Timestamp: at}
		if key != "" {
			r.Key = []byte(key)
		}
		return r
	}
	full := `{"session_id":"s1","user_id":"alice","message_id":"m1","type":"query","message":"hi there"}`
	m, err := DecodeRecord(rec("query", "m1", full))
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Message{MessageID: "m1", SessionID: "s1", UserID: "alice", Type: domain.TypeQuery, Text: "hi there", CreatedAt: at}
	if m.MessageID != want.MessageID || m.SessionID != want.SessionID || m.UserID != want.UserID || m.Type != want.Type || m.Text != want.Text || !m.CreatedAt.Equal(at) {
		t.Errorf("seed record read as %+v, want %+v", m, want)
	}

	// Empty ids are filled: the message id from the key, the session from
	// the message id, the user as anonymous; the type from the topic
	// (prefixed here), whatever the record named.
	m, err = DecodeRecord(rec("kchat-prompt", "k9", `{"session_id":"","user_id":"","message_id":"","type":"","message":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID != "k9" || m.SessionID != "k9" || m.UserID != domain.AnonymousUser || m.Type != domain.TypePrompt {
		t.Errorf("filled as %+v, want id k9, session k9, user %s, type prompt", m, domain.AnonymousUser)
	}

	// Without a key the id is derived from the record's position: every
	// reader and every retry of the answerer names it alike.
	noKey := `{"session_id":"s","user_id":"u","message_id":"","type":"query","message":"x"}`
	a, err := DecodeRecord(rec("query", "", noKey))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DecodeRecord(rec("query", "", noKey))
	other := rec("query", "", noKey)
	other.Offset++
	c, _ := DecodeRecord(other)
	if a.MessageID == "" || a.MessageID != b.MessageID || a.MessageID == c.MessageID {
		t.Errorf("derived ids %q, %q (same record) and %q (next offset): want equal, then different", a.MessageID, b.MessageID, c.MessageID)
	}
	if err := domain.ValidateID("message_id", a.MessageID); err != nil {
		t.Error(err)
	}

	// The kchat envelope still decodes as before.
	env, err := NewRecord("query", want)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := DecodeRecord(env); err != nil || m.MessageID != "m1" {
		t.Errorf("envelope: %+v, %v", m, err)
	}
}

// What is really not a message stays poison, with a reason.
func TestDecodeRecordPoison(t *testing.T) {
	for name, c := range map[string]struct{ value, reason string }{
		"empty message":  {`{"session_id":"s","user_id":"u","message_id":"m","type":"query","message":""}`, "message"},
		"no fields":      {`{"foo":1}`, "message"},
		"number for id":  {`{"session_id":5,"user_id":"u","message_id":"m","type":"query","message":"x"}`, "decode envelope"},
		"other version":  {`{"v":2,"message_id":"m"}`, "version 2"},
		"not json":       {`hello`, "decode envelope"},
		"json array":     {`[1,2]`, "decode envelope"},
		"id too long":    {`{"session_id":"` + strings.Repeat("s", 200) + `","user_id":"u","message_id":"m","type":"query","message":"x"}`, "session_id"},
		"envelope no id": {`{"v":1,"session_id":"s","user_id":"u","type":"query","message":"x"}`, "message_id"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeRecord(&kgo.Record{Topic: "query", Key: nil, Value: []byte(c.value)})
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("DecodeRecord(%s) = %v, want poison naming %q", c.value, err, c.reason)
			}
		})
	}
}
