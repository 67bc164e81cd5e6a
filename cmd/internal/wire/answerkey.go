package wire

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// AnswerKeyVar is the variable of the key the answerer signs with and the
// gateway verifies with (docs/security.md, "Answers").
const AnswerKeyVar = "KCHAT_ANSWER_KEY"

// AnswerKey returns the answer key of secret, or an error naming the
// variable and how to make one. The error never contains the secret.
func AnswerKey(secret string) (*domain.AnswerKey, error) {
	if secret == "" {
		return nil, fmt.Errorf("%s is required: the answerer signs answers with it and the gateways check them, so every one of them needs the same key; make one with `openssl rand -hex 32`", AnswerKeyVar)
	}
	key, err := domain.NewAnswerKey([]byte(secret))
	if err != nil {
		return nil, fmt.Errorf("%s: %w; make one with `openssl rand -hex 32`", AnswerKeyVar, err)
	}
	return key, nil
}

// RandomKey returns a fresh random secret (64 hex digits): the all-in-one's
// key when none is set, shared by its services and lost with the process.
func RandomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b)
}

// Why the gateway refuses an answer: the reason label of
// kchat_gateway_answers_rejected_total.
const (
	rejectUnsigned     = "unsigned"
	rejectBadSignature = "bad_signature"
	rejectKeyMismatch  = "key_mismatch"
	rejectNotAsked     = "not_asked"
	rejectUnavailable  = "store_unavailable"
)

// newAnswers returns the constructor of the gateway's answer router: it
// checks every answer and every delta for this process's sockets and
// requests with the key of secret, and counts and logs those it refuses.
func newAnswers(secret string) func(ports.AnswerFeed, ports.DeltaFeed, ports.SessionStore, prometheus.Registerer, *slog.Logger) (*app.Answers, error) {
	return func(f ports.AnswerFeed, df ports.DeltaFeed, s ports.SessionStore, reg prometheus.Registerer, log *slog.Logger) (*app.Answers, error) {
		key, err := AnswerKey(secret)
		if err != nil {
			return nil, err
		}
		rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "gateway", Name: "answers_rejected_total",
			Help: "Answers for this gateway's sockets or requests that it refused to deliver, by reason.",
		}, []string{"reason"})
		for _, r := range []string{rejectUnsigned, rejectBadSignature, rejectKeyMismatch, rejectNotAsked, rejectUnavailable} {
			rejected.WithLabelValues(r)
		}
		if err := reg.Register(rejected); err != nil {
			return nil, err
		}
		deltasRejected, err := deltaRejections(reg)
		if err != nil {
			return nil, err
		}
		log = log.With("component", "answers")
		var limit logLimit
		return &app.Answers{Feed: f, DeltaFeed: df, Key: key, Sessions: s, Concurrency: answerCheckers, DeltaRejected: func(d domain.Delta, err error) {
			reason := rejectReason(err)
			deltasRejected.WithLabelValues(reason).Inc()
			if ok, skipped := limit.allow("delta "+reason, time.Now()); ok {
				log.Warn("delta refused: not signed by the answerer for the session and user it names; dropped",
					"session_id", d.SessionID, "reply_to", d.ReplyTo, "attempt", d.Attempt, "seq", d.Seq, "reason", reason, "not_logged_since", skipped)
			}
		}, Rejected: func(m domain.Message, err error) {
			reason := rejectReason(err)
			rejected.WithLabelValues(reason).Inc()
			ok, skipped := limit.allow(reason, time.Now())
			if !ok {
				return // a flood of forgeries must not flood the log too
			}
			attrs := []any{"message_id", m.MessageID, "session_id", m.SessionID, "reply_to", m.ReplyTo, "reason", reason, "not_logged_since", skipped}
			var mismatch *domain.KeyMismatchError
			switch {
			case errors.As(err, &mismatch):
				log.Error(fmt.Sprintf("answer signed with another %s (key id %s, ours %s): every process must share the key; answer dropped",
					AnswerKeyVar, mismatch.Theirs, mismatch.Ours), attrs...)
			case reason == rejectUnavailable:
				log.Warn("answer dropped: the session store did not answer in time to check it (it stays in the session's history)", append(attrs, "err", err)...)
			default:
				log.Warn("answer refused: not the answerer's answer to a question of its session", attrs...)
			}
		}}, nil
	}
}

// deltaRejections registers kchat_gateway_deltas_rejected_total: the
// deltas refused, by reason (those of VerifyDelta).
func deltaRejections(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kchat", Subsystem: "gateway", Name: "deltas_rejected_total",
		Help: "Answer deltas for this gateway's sockets or requests that it refused to forward (not the answerer's signature), by reason.",
	}, []string{"reason"})
	for _, r := range []string{rejectUnsigned, rejectBadSignature, rejectKeyMismatch} {
		c.WithLabelValues(r)
	}
	return c, reg.Register(c)
}

// logLimit lets one log line a second through per reason, and counts
// those it holds back.
// answerCheckers is how many answers a gateway checks against the
// session store at once (app.Answers.Concurrency): a burst of answers
// waited in line behind two Redis round trips each (docs/performance.md,
// "A real peer: Centrifugo").
const answerCheckers = 32

type logLimit struct {
	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
}

func (l *logLimit) allow(reason string, now time.Time) (ok bool, skipped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.skipped = map[string]time.Time{}, map[string]int{}
	}
	if now.Sub(l.last[reason]) < time.Second {
		l.skipped[reason]++
		return false, 0
	}
	skipped, l.last[reason], l.skipped[reason] = l.skipped[reason], now, 0
	return true, skipped
}

func rejectReason(err error) string {
	switch {
	case errors.As(err, new(*domain.KeyMismatchError)):
		return rejectKeyMismatch
	case errors.Is(err, domain.ErrUnsigned):
		return rejectUnsigned
	case errors.Is(err, domain.ErrBadSignature):
		return rejectBadSignature
	case errors.Is(err, app.ErrNotAsked):
		return rejectNotAsked
	default:
		return rejectUnavailable
	}
}
