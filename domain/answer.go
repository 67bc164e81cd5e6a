package domain

import (
	"regexp"
	"strconv"
	"time"
)

// Limits of what a prompt carries.
const (
	// PromptHistoryTurns is how many recent turns a prompt includes.
	PromptHistoryTurns = 10
	maxTurnText        = 1000
	maxSnippet         = 1200
)

// FailedAnswerText is what the user reads when every attempt to generate an
// answer failed.
const FailedAnswerText = "Sorry, I could not answer this question right now. Please ask again in a moment."

// BuildPrompt assembles the prompt of a question: the last
// PromptHistoryTurns turns before it (without the question itself, should a
// retried stage have recorded it already), and the retrieved passages.
func BuildPrompt(question, questionID string, history []Turn, passages []Passage) Prompt {
	var kept []Turn
	for _, t := range history {
		if t.MessageID == questionID || t.MessageID == DerivedID(questionID, "answer") {
			continue
		}
		t.Text = clip(t.Text, maxTurnText)
		kept = append(kept, t)
	}
	if len(kept) > PromptHistoryTurns {
		kept = kept[len(kept)-PromptHistoryTurns:]
	}
	return Prompt{Question: question, History: kept, Passages: passages}
}

// NewPromptMessage is the prompt message of query q: the censored question
// as its text, the passages as citations, and the history and the rendered
// prompt in its metadata. Its id is derived from the query's, so a retried
// stage produces the same message.
func NewPromptMessage(q Message, p Prompt, now time.Time) Message {
	history := make([]any, len(p.History))
	for i, t := range p.History {
		history[i] = map[string]any{"role": string(t.Role), "message_id": t.MessageID, "text": t.Text}
	}
	return Message{
		MessageID: DerivedID(q.MessageID, "prompt"),
		SessionID: q.SessionID,
		UserID:    q.UserID,
		Type:      TypePrompt,
		Text:      p.Question,
		ReplyTo:   q.MessageID,
		CreatedAt: now,
		Metadata:  map[string]any{"history": history, "prompt": p.Render()},
		Citations: passageCitations(p.Passages),
	}
}

// PromptFromMessage reads a prompt message back into a Prompt.
func PromptFromMessage(m Message) Prompt {
	p := Prompt{Question: m.Text}
	for _, c := range m.Citations {
		p.Passages = append(p.Passages, Passage{Source: c.Source, Title: c.Title, Text: c.Snippet, Score: c.Score})
	}
	if hs, ok := m.Metadata["history"].([]any); ok {
		for _, h := range hs {
			hm, ok := h.(map[string]any)
			if !ok {
				continue
			}
			role, _ := hm["role"].(string)
			id, _ := hm["message_id"].(string)
			text, _ := hm["text"].(string)
			p.History = append(p.History, Turn{Role: Role(role), MessageID: id, Text: text})
		}
	}
	return p
}

// NewAnswerMessage is the answer to prompt message pm: text, the passages
// its [n] markers cite, reply_to the query. Its id is derived from the
// query's: the answer of a query always has the same id.
func NewAnswerMessage(pm Message, text string, now time.Time) Message {
	return Message{
		MessageID: DerivedID(pm.ReplyTo, "answer"),
		SessionID: pm.SessionID,
		UserID:    pm.UserID,
		Type:      TypeAnswer,
		Text:      text,
		ReplyTo:   pm.ReplyTo,
		CreatedAt: now,
		Citations: CitationsUsed(text, PromptFromMessage(pm).Passages),
	}
}

// failureKey is the metadata key under which a failed answer says why.
const failureKey = "error"

// NewFailedAnswer tells the user their answer failed; Failure reads back
// why.
func NewFailedAnswer(pm Message, reason string, now time.Time) Message {
	a := NewAnswerMessage(pm, FailedAnswerText, now)
	a.Metadata = map[string]any{failureKey: reason}
	return a
}

// Failure reports whether m is an answer that failed, and why: the one
// place that reads a failure back, whoever wrote the answer (the generate
// stage or an external worker through the producer).
func (m Message) Failure() (reason string, failed bool) {
	reason, failed = m.Metadata[failureKey].(string)
	return reason, failed
}

var marker = regexp.MustCompile(`\[(\d{1,3})\]`)

// CitationsUsed returns the passages that text cites as [n], in order of
// n, each once; markers without a passage are ignored.
func CitationsUsed(text string, passages []Passage) []Citation {
	seen := map[int]bool{}
	for _, m := range marker.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[1])
		if n >= 1 && n <= len(passages) {
			seen[n] = true
		}
	}
	var out []Citation
	for n := 1; n <= len(passages); n++ {
		if seen[n] {
			out = append(out, passageCitation(n, passages[n-1]))
		}
	}
	return out
}

func passageCitations(ps []Passage) []Citation {
	out := make([]Citation, len(ps))
	for i, p := range ps {
		out[i] = passageCitation(i+1, p)
	}
	return out
}

func passageCitation(n int, p Passage) Citation {
	return Citation{N: n, Source: p.Source, Title: p.Title, Score: p.Score, Snippet: clip(p.Text, maxSnippet)}
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
