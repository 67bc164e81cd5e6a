package app

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// OpenSession opens a user's chat session for a live connection (the
// WebSocket): a new session, or one of theirs to resume. Listen then
// follows the session's answers and replays what the connection missed,
// with no gap and no duplicate (docs/design.md, "The WebSocket protocol").
type OpenSession struct {
	Sessions ports.SessionStore
	Answers  *Answers
	// HistoryLimit is the most turns a resume replays.
	HistoryLimit int
	// PendingWithin is how old a question of the history may be and still
	// be waited for on a resume (the feed widens for it); zero means
	// DefaultPendingWithin.
	PendingWithin time.Duration
	// CatchUpEvery is how soon a resumed connection that awaits answers
	// first reads the history for them again, should the widened feed not
	// bring them (the pause doubles after each read); zero means
	// DefaultCatchUpEvery.
	CatchUpEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultPendingWithin is the default OpenSession.PendingWithin: as long
// as an answer is waited for anywhere (KCHAT_ROUTING_GRACE's default).
const DefaultPendingWithin = 2 * time.Minute

// OpenSessionInput names the user and, to resume, the session.
type OpenSessionInput struct {
	UserID string
	// SessionID is the session to resume; empty opens a new one.
	SessionID string
	// Pending are the questions of the session the client still waits
	// for, when resuming (it had their ack, not their answer).
	Pending []string
}

// Session is an open session. Resumed says the client named it.
type Session struct {
	ID      string
	UserID  string
	Resumed bool
	pending []string
	uc      *OpenSession
}

// Execute opens the session. A new one gets an id and is stored on its
// first question (Ask), not now: a connection that asks nothing leaves
// nothing behind. A session to resume must be the user's; one that is not
// stored (no question asked in it yet, or expired) may be resumed too, and
// becomes the user's on its first question. Errors: *domain.ValidationError
// for a malformed session id, domain.ErrForbidden when another user owns
// it, domain.ErrUnavailable when the session store does not answer.
func (uc *OpenSession) Execute(ctx context.Context, in OpenSessionInput) (Session, error) {
	s := Session{ID: in.SessionID, UserID: in.UserID, Resumed: in.SessionID != "", pending: in.Pending, uc: uc}
	if !s.Resumed {
		s.ID = domain.NewMessageID()
		return s, nil
	}
	if err := checkOwner(ctx, uc.Sessions, s.ID, s.UserID); err != nil && !errors.Is(err, domain.ErrNotFound) {
		return Session{}, err
	}
	return s, nil
}

// Listener receives what a session sends one connection. Both functions
// run on goroutines of the session's (the feed's, or Listen's caller): they
// must not block.
type Listener struct {
	// History gets, when resuming, the turns after the one the client last
	// saw, before any live answer; err says they could not be read (live
	// answers follow anyway). err is domain.ErrNotFound, with no turns, when
	// the store holds no such session: nothing was asked in it yet, or what
	// was is gone (expired, or an in-memory store restarted), which only the
	// client can tell apart.
	History func(turns []domain.Turn, err error)
	// Answer gets each live answer of the session, once.
	Answer func(domain.Message)
	// Question, when not nil, gets each question asked in the session from
	// now on through this process (Ask), by any connection or request of
	// the session's user, this one's included, once: a socket shows the
	// questions asked on the session's other sockets too.
	Question func(domain.Message)
	// Ended, when not nil, hears that the session was deleted: the
	// connection should close (no answer follows).
	Ended func()
	// Delta, when not nil, gets the deltas of the session's answers being
	// generated (docs/design.md, "Streaming answers"), only in order: per
	// answer, seq 0, 1, 2… of one attempt, a greater attempt's seq 0
	// starting it again; never one of an answer already sent (or in the
	// history). A connection that missed part of an attempt (it joined
	// mid-stream, resumed during it, or a delta was lost) gets no more of
	// it: nothing until the final answer.
	Delta func(domain.Delta)
}

// Listen subscribes l to the session's answers first and then, when
// resuming, reads the turns after the one with message id after: an answer
// committed meanwhile is either in those turns or arrives live, never
// neither. Live answers that arrive while the history is read wait until it
// is handed over, and those it already holds are dropped. stop ends the
// subscription.
func (s Session) Listen(ctx context.Context, after string, l Listener) (stop func()) {
	r := &replay{user: s.UserID, answer: l.Answer, question: l.Question, delta: l.Delta, replaying: s.Resumed}
	sub := &answerSub{fn: r.offer, ended: l.Ended}
	if l.Question != nil {
		sub.question = r.offer
	}
	if l.Delta != nil {
		sub.delta = r.offerDelta
	}
	stop = s.uc.Answers.subscribe(s.ID, sub)
	if s.Resumed {
		recent, turns, err := recentAfter(ctx, s.uc.Sessions, s.ID, after, s.uc.HistoryLimit)
		if pending := s.pendingIn(recent); len(pending) > 0 {
			// Their answers may be routed to another gateway (the one
			// they were asked through): read every answer from now, then
			// the history again, so each is in one or the other.
			if release, werr := s.uc.Answers.Feed.Widen(ctx); werr == nil {
				r.await(pending, release)
				recent, turns, err = recentAfter(ctx, s.uc.Sessions, s.ID, after, s.uc.HistoryLimit)
				r.answeredIn(recent)
				done := make(chan struct{})
				var once sync.Once
				unsubscribe := stop
				stop = func() { once.Do(func() { close(done); unsubscribe(); r.stopAwaiting() }) }
				defer func() { go s.catchUp(ctx, after, r, done) }()
			}
		}
		if errors.Is(err, domain.ErrNotFound) {
			turns, err = nil, domain.ErrNotFound // nothing to replay; the client knows whether it lost anything
		}
		r.handOver(turns, err, l.History)
	}
	return stop
}

// replay orders one connection's answers (and questions) around its
// history, and lets through only those of its user: a session id deleted and claimed again
// by someone else must not reach the first owner's connection.
type replay struct {
	user      string
	answer    func(domain.Message)
	question  func(domain.Message)
	delta     func(domain.Delta)
	mu        sync.Mutex
	order     deltaOrder             // of the deltas passed on
	replaying bool                   // the history is being read: hold live answers
	held      []domain.Message       // live answers that came during the replay
	seen      map[string]bool        // answers sent (or in the history); nil until the first
	tails     map[string]*heldAnswer // answers waiting for their stream's last deltas, by question
	// awaiting are the questions a resume waits for with the feed widened
	// (by id); release ends the widening once none is left.
	awaiting map[string]bool
	release  func()
}

// heldAnswer is a final answer held back, at most tailWait, for the last
// deltas of the stream the connection shows.
type heldAnswer struct {
	m     domain.Message
	timer *time.Timer
}

func (r *replay) offer(m domain.Message) {
	if m.UserID != r.user {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[m.MessageID] {
		return
	}
	r.markLocked(m.MessageID)
	if m.Type == domain.TypeAnswer {
		r.answeredLocked(m.ReplyTo)
	}
	if r.replaying {
		r.held = append(r.held, m)
		return
	}
	r.deliverLocked(m)
}

// offerDelta passes d on if it continues, in order, an answer the
// connection has not had yet. During the replay none is: the connection
// resumed during the stream, and waits for the final answer.
func (r *replay) offerDelta(d domain.Delta) {
	if d.UserID != r.user {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tail := r.tails[d.ReplyTo]
	switch {
	case tail == nil && r.seen[d.AnswerID()]:
		return // the final answer was sent, or is in the history
	case r.replaying:
		r.order.stop(d)
	case r.order.admit(d):
		r.delta(d)
		if tail != nil && !r.order.awaits(d.ReplyTo, tail.m.Text) {
			tail.timer.Stop()
			r.finishLocked(tail.m)
		}
	}
}

// deliverLocked hands m to the listener: questions and answers share one
// order, so a socket sees a question before its answer. r.mu must be held.
func (r *replay) deliverLocked(m domain.Message) {
	if m.Type == domain.TypeQuery {
		r.question(m)
		return
	}
	if r.order.awaits(m.ReplyTo, m.Text) {
		r.holdLocked(m)
		return
	}
	r.finishLocked(m)
}

// finishLocked sends the answer m, which replaces its deltas. r.mu must be
// held.
func (r *replay) finishLocked(m domain.Message) {
	delete(r.tails, m.ReplyTo)
	r.order.end(m.ReplyTo)
	r.answer(m)
}

// holdLocked holds the answer m back until the deltas shown add up to it,
// or tailWait passed. r.mu must be held.
func (r *replay) holdLocked(m domain.Message) {
	if r.tails == nil {
		r.tails = map[string]*heldAnswer{}
	}
	h := &heldAnswer{m: m}
	h.timer = time.AfterFunc(tailWait, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.tails[m.ReplyTo] == h {
			r.finishLocked(m)
		}
	})
	r.tails[m.ReplyTo] = h
}

// pendingIn is what a resume waits for: the questions the client says it
// waits for, and those of the recent history, asked within PendingWithin,
// that it holds no answer to; less those it does.
func (s Session) pendingIn(recent []domain.Turn) []string {
	answered := map[string]bool{}
	for _, t := range recent {
		if t.Role == domain.RoleAssistant {
			answered[t.MessageID] = true
		}
	}
	since := now(s.uc.Now).Add(-cmp.Or(s.uc.PendingWithin, DefaultPendingWithin))
	var pending []string
	seen := map[string]bool{}
	add := func(q string) {
		if q != "" && !seen[q] && !answered[domain.DerivedID(q, "answer")] {
			seen[q] = true
			pending = append(pending, q)
		}
	}
	for _, q := range s.pending {
		add(q)
	}
	for _, t := range recent {
		if t.Role == domain.RoleUser && t.At.After(since) {
			add(t.MessageID)
		}
	}
	return pending
}

// await has the replay release the feed's widening once an answer to each
// of questions passed (or stopAwaiting).
func (r *replay) await(questions []string, release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.awaiting = make(map[string]bool, len(questions))
	for _, q := range questions {
		r.awaiting[q] = true
	}
	r.release = release
}

// answeredIn drops from what the replay awaits the questions recent
// answers.
func (r *replay) answeredIn(recent []domain.Turn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range recent {
		if t.Role == domain.RoleAssistant {
			for q := range r.awaiting {
				if domain.DerivedID(q, "answer") == t.MessageID {
					delete(r.awaiting, q)
				}
			}
		}
	}
	r.releaseIfDoneLocked()
}

// answeredLocked notes that the question q has its answer. r.mu must be
// held.
func (r *replay) answeredLocked(q string) {
	if r.awaiting[q] {
		delete(r.awaiting, q)
		r.releaseIfDoneLocked()
	}
}

func (r *replay) releaseIfDoneLocked() {
	if len(r.awaiting) == 0 && r.release != nil {
		r.release()
		r.release = nil
	}
}

// stopAwaiting releases the widening when the connection ends first.
func (r *replay) stopAwaiting() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.awaiting = nil
	r.releaseIfDoneLocked()
}

// handOver passes the history on, then the live answers held meanwhile
// that it does not hold.
func (r *replay) handOver(turns []domain.Turn, err error, history func([]domain.Turn, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	inHistory := make(map[string]bool, len(turns))
	for _, t := range turns {
		inHistory[t.MessageID] = true
		r.markLocked(t.MessageID)
	}
	history(turns, err)
	for _, m := range r.held {
		if !inHistory[m.MessageID] {
			r.deliverLocked(m)
		}
	}
	r.held, r.replaying = nil, false
}

// markLocked records an answer id as sent; most connections never get
// one, so the map is made on the first. r.mu must be held.
func (r *replay) markLocked(id string) {
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[id] = true
}
