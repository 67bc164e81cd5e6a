package app

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// ErrNotAsked means an answer replies to no question of its session: the
// question is not recorded there as a user turn, or the session is not
// its user's.
var ErrNotAsked = errors.New("answers no question of its session")

// verifyBudget bounds how long one answer may wait for the session store
// (its routing goroutine waits with it); past it the answer is dropped,
// never delivered unchecked. It stays in the session's history, where the
// generate stage recorded it before publishing it.
const verifyBudget = time.Second

// Answers routes the pipeline's answers to whoever waits for them in this
// process: the live connections of a session (Subscribe, through
// OpenSession) and the requests waiting for the answer to one question
// (Chat). It is the one place answers are routed, by session and by the
// query they reply to, and the one place they are trusted: with a Key, an
// answer reaches a connection or a request only if the answerer signed it
// and it replies to a question its session records, asked by the
// session's owner (docs/security.md, "Answers"). Run must be running for
// answers to arrive.
//
// With a DeltaFeed it routes the answers' deltas the same way, by session
// and by reply (docs/design.md, "Streaming answers"): a delta gets
// through only with the answerer's signature over the session and user it
// names, and each receiver orders them on its own (deltaOrder).
type Answers struct {
	Feed ports.AnswerFeed
	// DeltaFeed, when set, brings the deltas of answers being generated.
	DeltaFeed ports.DeltaFeed
	// Key verifies answers (KCHAT_ANSWER_KEY) and Sessions holds the
	// questions they reply to. Without a Key every answer is delivered
	// unchecked: only tests of the inbound adapters, which drive a feed by
	// hand, leave it out; the gateway's wiring always sets it.
	Key      *domain.AnswerKey
	Sessions ports.SessionStore
	// Rejected, when set, hears of every answer refused, with why: the
	// error of domain.AnswerKey.Verify, ErrNotAsked, or one wrapping
	// domain.ErrUnavailable when the session store did not answer in
	// time. It runs on the goroutine that checked the answer: with
	// Concurrency, several at once.
	Rejected func(m domain.Message, err error)
	// Concurrency is how many answers are checked at once: each check is
	// a session-store round trip or two, and one at a time a burst of
	// answers waits in line behind them. An answer goes to one of
	// Concurrency goroutines chosen by its session, so a session's
	// answers are checked and delivered in the order the feed read them.
	// 0 or 1: one at a time, on the feed's goroutine (the tests of the
	// inbound adapters, which drive a feed by hand and look right after).
	Concurrency int
	// DeltaRejected, when set, hears of every delta refused for a socket
	// or request of this process, with the error of
	// domain.AnswerKey.VerifyDelta. It runs on the delta feed's goroutine.
	DeltaRejected func(d domain.Delta, err error)

	mu       sync.Mutex
	sessions map[string][]*answerSub // usually one per session
	replies  map[replyKey]*replyWaiter
}

// replyWaiter is a request waiting for the answer to one question: the
// answer, and the deltas when it asked for them.
type replyWaiter struct {
	user   string
	answer chan domain.Message // buffered: one
	deltas chan domain.Delta   // nil, or buffered; a delta that does not fit is dropped (a gap)
}

type answerSub struct {
	fn       func(domain.Message)
	delta    func(domain.Delta)   // nil, or told of the session's deltas
	question func(domain.Message) // nil, or told of questions asked in the session
	ended    func()               // nil, or told when the session is deleted
}

// replyKey is what a waiting request expects: the answer to one question
// of one session. The session is part of it: a question id is the
// client's to choose, so another session may reuse it.
type replyKey struct{ session, query string }

// Run routes answers from the feed until ctx ends.
func (a *Answers) Run(ctx context.Context) error {
	if a.Key != nil && a.Sessions == nil {
		return errors.New("answers: a key without a session store cannot check answers")
	}
	deliver := func(m domain.Message) { a.route(ctx, m) }
	if a.Concurrency > 1 {
		deliver = a.routeConcurrently(ctx, a.Concurrency)
	}
	if err := a.Feed.Subscribe(ctx, deliver); err != nil {
		return err
	}
	if a.DeltaFeed != nil {
		if err := a.DeltaFeed.Subscribe(ctx, a.routeDelta); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// routeDelta hands d to the session's subscriptions that take deltas and
// to the request waiting for its answer, if the answerer signed it.
// Without a Key (tests of the inbound adapters) it is not checked.
func (a *Answers) routeDelta(d domain.Delta) {
	a.mu.Lock()
	var subs []*answerSub
	for _, s := range a.sessions[d.SessionID] {
		if s.delta != nil {
			subs = append(subs, s)
		}
	}
	w := a.replies[replyKey{d.SessionID, d.ReplyTo}]
	a.mu.Unlock()
	if w != nil && (w.deltas == nil || w.user != d.UserID) {
		w = nil
	}
	if len(subs) == 0 && w == nil {
		return // another replica's, most likely
	}
	if a.Key != nil {
		if err := a.Key.VerifyDelta(d); err != nil {
			if a.DeltaRejected != nil {
				a.DeltaRejected(d, err)
			}
			return
		}
	}
	for _, s := range subs {
		s.delta(d)
	}
	if w != nil {
		select {
		case w.deltas <- d:
		default: // the waiter is behind: it sees a gap and waits for the answer
		}
	}
}

// routeConcurrently starts n routing goroutines, each with a queue, until
// ctx ends, and returns what hands an answer to the one of its session.
// A full queue holds the feed back: answers are never dropped for speed.
func (a *Answers) routeConcurrently(ctx context.Context, n int) func(domain.Message) {
	queues := make([]chan domain.Message, n)
	for i := range queues {
		q := make(chan domain.Message, 64)
		queues[i] = q
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-q:
					a.route(ctx, m)
				}
			}
		}()
	}
	return func(m domain.Message) {
		h := fnv.New32a()
		_, _ = h.Write([]byte(m.SessionID))
		select {
		case queues[h.Sum32()%uint32(n)] <- m:
		case <-ctx.Done():
		}
	}
}

func (a *Answers) route(ctx context.Context, m domain.Message) {
	a.mu.Lock()
	subs := slices.Clone(a.sessions[m.SessionID])
	var reply chan<- domain.Message
	if w := a.replies[replyKey{m.SessionID, m.ReplyTo}]; w != nil {
		reply = w.answer
	}
	a.mu.Unlock()
	if len(subs) == 0 && reply == nil {
		return // another replica's, most likely: not worth a look-up
	}
	if err := a.check(ctx, m); err != nil {
		if a.Rejected != nil {
			a.Rejected(m, err)
		}
		return
	}
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

// check reports why m must not be delivered, or nil.
func (a *Answers) check(ctx context.Context, m domain.Message) error {
	if a.Key == nil {
		return nil
	}
	if err := a.Key.Verify(m); err != nil {
		return err
	}
	if m.ReplyTo == "" {
		return ErrNotAsked
	}
	ctx, cancel := context.WithTimeout(ctx, verifyBudget)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := a.asked(ctx, m)
		if err == nil || !errors.Is(err, domain.ErrUnavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// asked checks the question m replies to is a user turn of m's session,
// and that the session is m's user's.
func (a *Answers) asked(ctx context.Context, m domain.Message) error {
	q, err := a.Sessions.Turn(ctx, m.SessionID, m.ReplyTo)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return ErrNotAsked
	case ctx.Err() != nil:
		return fmt.Errorf("question %s: %w", m.ReplyTo, domain.ErrUnavailable)
	case err != nil:
		return fmt.Errorf("question %s: %w", m.ReplyTo, err)
	case q.Role != domain.RoleUser:
		return ErrNotAsked
	}
	owner, err := a.Sessions.Owner(ctx, m.SessionID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return ErrNotAsked
	case ctx.Err() != nil:
		return fmt.Errorf("owner of %s: %w", m.SessionID, domain.ErrUnavailable)
	case err != nil:
		return fmt.Errorf("owner of %s: %w", m.SessionID, err)
	case owner != m.UserID:
		return ErrNotAsked
	}
	return nil
}

// Subscribe calls fn with every answer of sessionID that arrives from now
// on, until unsubscribe is called or the session is deleted here (then
// ended, when not nil, is called once and fn no more). fn runs on the
// routing goroutine of the session (see Concurrency), one answer at a
// time: it must not block.
func (a *Answers) Subscribe(sessionID string, fn func(domain.Message), ended func()) (unsubscribe func()) {
	return a.subscribe(sessionID, &answerSub{fn: fn, ended: ended})
}

func (a *Answers) subscribe(sessionID string, s *answerSub) (unsubscribe func()) {
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

// announce tells the session's subscriptions in this process that q was
// asked (Ask), so that every socket of the session shows the question,
// not only the one it was asked on. Questions are not routed through
// Kafka: a socket on another gateway replica learns of q from the history
// (docs/design.md, "The WebSocket protocol"). It runs on the asker's
// goroutine; subscribers must not block.
func (a *Answers) announce(q domain.Message) {
	a.mu.Lock()
	subs := slices.Clone(a.sessions[q.SessionID])
	a.mu.Unlock()
	for _, s := range subs {
		if s.question != nil {
			s.question(q)
		}
	}
}

// deltaBuffer is how many deltas a waiting request may fall behind by
// before one is dropped (and its stream stops until the answer).
const deltaBuffer = 64

// expect returns a waiter that receives the answer to query queryID of
// session sessionID (and, with deltas, the deltas of userID's answer), and
// a function to stop expecting it. Call it before the query is published,
// so the answer cannot slip past.
func (a *Answers) expect(sessionID, queryID, userID string, deltas bool) (*replyWaiter, func()) {
	w := &replyWaiter{user: userID, answer: make(chan domain.Message, 1)}
	if deltas {
		w.deltas = make(chan domain.Delta, deltaBuffer)
	}
	k := replyKey{sessionID, queryID}
	a.mu.Lock()
	if a.replies == nil {
		a.replies = map[replyKey]*replyWaiter{}
	}
	a.replies[k] = w
	a.mu.Unlock()
	return w, func() {
		a.mu.Lock()
		delete(a.replies, k)
		a.mu.Unlock()
	}
}

// end drops every subscription of sessionID, telling each it ended: the
// session was deleted, and its connections on this process must not stay
// bound to an id someone else may claim next. (Connections on other
// gateways hear only their user's answers; see OpenSession.)
func (a *Answers) end(sessionID string) {
	a.mu.Lock()
	subs := a.sessions[sessionID]
	delete(a.sessions, sessionID)
	a.mu.Unlock()
	for _, s := range subs {
		if s.ended != nil {
			s.ended()
		}
	}
}
