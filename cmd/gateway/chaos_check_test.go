package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/history"
)

// chatTopics is what the query and answer topics hold of a chat load's
// questions, read to their end offsets after the run.
type chatTopics struct {
	queries, answers history.Report
	sessionOf        map[string]string // marker → the session its query names
	answered         map[string]string // answer id → the marker of its question
}

// checkTopics reads the query topic (each record named by the marker its
// text carries) and the answer topic at read_committed (each answer named
// by its question's marker), and judges the history against both: every
// acknowledged question in query once and answered once; no question that
// was refused or never asked, and no answer to one. It fails the test on
// an anomaly.
func (l *chatLoad) checkTopics(t *testing.T) chatTopics {
	t.Helper()
	ct := chatTopics{sessionOf: map[string]string{}, answered: map[string]string{}}
	markerOfQuestion := map[string]string{}
	queries := history.Reader{Brokers: l.rig.brokers, ID: func(r *kgo.Record) string {
		m, err := kafka.DecodeValue(r.Value)
		if err != nil {
			return ""
		}
		marker := markerOf(m.Text)
		markerOfQuestion[m.MessageID], ct.sessionOf[marker] = marker, m.SessionID
		return marker
	}}.Read(t, l.rig.prefix+"query")
	answers := history.Reader{Brokers: l.rig.brokers, Committed: true, ID: func(r *kgo.Record) string {
		var question string
		for _, hd := range r.Headers {
			if hd.Key == kafka.HeaderCorrelationID {
				question = string(hd.Value)
			}
		}
		marker := markerOfQuestion[question]
		ct.answered[history.HeaderID(r)] = marker
		return marker
	}}.Read(t, l.rig.prefix+"answer")
	ct.queries, ct.answers = history.Check(l.h, queries), history.Check(l.h, answers)
	t.Logf("queries: %s", ct.queries)
	t.Logf("answers: %s", ct.answers)
	if err := ct.queries.Err(); err != nil {
		t.Errorf("the query topic: %v", err)
	}
	if err := ct.answers.Err(); err != nil {
		t.Errorf("the answer topic: %v", err)
	}
	return ct
}

// chatterView is what the chatters saw.
type chatterView struct {
	delivered int // answers to acknowledged questions that reached their chatter
	// missed lists, per chatter, the answers to its acknowledged questions
	// that never reached it.
	missed map[*chatter][]string
}

// checkChatters checks what each chatter saw against the topics: its
// questions in its own session (no other session replaced it), no answer
// twice, none that is not an answer to one of its questions, and the
// answer to each of its acknowledged questions, or reports it missed.
func (l *chatLoad) checkChatters(t *testing.T, ct chatTopics) chatterView {
	t.Helper()
	view := chatterView{missed: map[*chatter][]string{}}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.all {
		mine := fmt.Sprintf("%s-%s-", l.h.Scenario(), c.name)
		for _, p := range c.problems {
			t.Errorf("%s: %s", c.name, p)
		}
		for marker, session := range ct.sessionOf {
			if strings.HasPrefix(marker, mine) && session != c.session {
				t.Errorf("%s: question %s was published in session %s, the socket's is %s", c.name, marker, session, c.session)
			}
		}
		for id, n := range c.got {
			switch marker := ct.answered[id]; {
			case marker == "":
				t.Errorf("%s: answer %s is not in the answer topic", c.name, id)
			case !strings.HasPrefix(marker, mine):
				t.Errorf("%s: got answer %s, to %s, not one of its questions", c.name, id, marker)
			case n > 1:
				t.Errorf("%s: answer %s (to %s) reached it %d times", c.name, id, marker, n)
			}
		}
		for id := range c.acked {
			if c.got[domain.DerivedID(id, "answer")] > 0 {
				view.delivered++
			}
		}
		if m := missing(c); len(m) > 0 {
			view.missed[c] = m
		}
	}
	return view
}
