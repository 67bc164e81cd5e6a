package app

import (
	"context"
	"slices"
	"sync"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Answers routes the pipeline's answers to whoever waits for them in this
// process: the live connections of a session (Subscribe, through
// OpenSession) and the requests waiting for the answer to one question
// (Chat). It is the one place answers are routed, by session and by the
// query they reply to. Run must be running for answers to arrive. The
// zero value is ready to use once Feed is set.
type Answers struct {
	Feed ports.AnswerFeed

	mu       sync.Mutex
	sessions map[string][]*answerSub          // usually one per session
	replies  map[string]chan<- domain.Message // by query id
}

type answerSub struct{ fn func(domain.Message) }

// Run routes answers from the feed until ctx ends.
func (a *Answers) Run(ctx context.Context) error {
	if err := a.Feed.Subscribe(ctx, a.route); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (a *Answers) route(m domain.Message) {
	a.mu.Lock()
	subs := slices.Clone(a.sessions[m.SessionID])
	reply := a.replies[m.ReplyTo]
	a.mu.Unlock()
	for _, s := range subs {
		s.fn(m)
	}
	if reply != nil {
		select {
		case reply <- m:
		default: // the waiter has its answer already
		}
	}
}

// Subscribe calls fn with every answer of sessionID that arrives from now
// on, until unsubscribe is called. fn runs on the feed's goroutine: it
// must not block.
func (a *Answers) Subscribe(sessionID string, fn func(domain.Message)) (unsubscribe func()) {
	s := &answerSub{fn: fn}
	a.mu.Lock()
	if a.sessions == nil {
		a.sessions = map[string][]*answerSub{}
	}
	a.sessions[sessionID] = append(a.sessions[sessionID], s)
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if subs := slices.DeleteFunc(a.sessions[sessionID], func(o *answerSub) bool { return o == s }); len(subs) > 0 {
				a.sessions[sessionID] = subs
			} else {
				delete(a.sessions, sessionID)
			}
		})
	}
}

// expect returns a channel that receives the answer to query queryID, and
// a function to stop expecting it. Call it before the query is published,
// so the answer cannot slip past.
func (a *Answers) expect(queryID string) (<-chan domain.Message, func()) {
	ch := make(chan domain.Message, 1)
	a.mu.Lock()
	if a.replies == nil {
		a.replies = map[string]chan<- domain.Message{}
	}
	a.replies[queryID] = ch
	a.mu.Unlock()
	return ch, func() {
		a.mu.Lock()
		delete(a.replies, queryID)
		a.mu.Unlock()
	}
}
