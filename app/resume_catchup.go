package app

import (
	"cmp"
	"context"
	"time"

	"github.com/kchat/kchat/domain"
)

// DefaultCatchUpEvery is the default OpenSession.CatchUpEvery.
const DefaultCatchUpEvery = time.Second

// catchUpMax bounds the growing pause between two reads of the history.
const catchUpMax = 10 * time.Second

// catchUp reads the session's history while a resumed connection still
// awaits answers, and passes on those it finds (docs/design.md, "Answer
// routing", Handover). The widened feed delivers an awaited answer live
// only until the grace period ends; one that comes later (a slow or paused
// answerer) is recorded in the history before it is committed, and this
// finds it there. The pause between reads starts at CatchUpEvery and
// doubles up to catchUpMax; it ends when nothing is awaited any more or
// the connection stops (done); a history that cannot be read now is
// read at the next turn.
func (s Session) catchUp(ctx context.Context, after string, r *replay, done <-chan struct{}) {
	// Listen's context may end when it returns (a WebSocket upgrade's
	// request does); the connection's end is done.
	ctx = context.WithoutCancel(ctx)
	every := cmp.Or(s.uc.CatchUpEvery, DefaultCatchUpEvery)
	for {
		select {
		case <-done:
			return
		case <-time.After(every):
		}
		awaited := r.awaited()
		if len(awaited) == 0 {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, catchUpMax)
		_, turns, err := recentAfter(rctx, s.uc.Sessions, s.ID, after, s.uc.HistoryLimit)
		cancel()
		if err == nil {
			for _, t := range turns {
				if q, ok := awaited[t.MessageID]; ok && t.Role == domain.RoleAssistant {
					r.offer(domain.Message{
						MessageID: t.MessageID, SessionID: s.ID, UserID: s.UserID, Type: domain.TypeAnswer,
						Text: t.Text, ReplyTo: q, CreatedAt: t.At, Citations: t.Citations,
					})
				}
			}
		}
		every = min(2*every, catchUpMax)
	}
}

// awaited is what the replay still awaits, by the answer's id: the
// question each answers.
func (r *replay) awaited() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.awaiting))
	for q := range r.awaiting {
		out[domain.DerivedID(q, "answer")] = q
	}
	return out
}
