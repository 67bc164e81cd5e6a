package ws

import (
	"context"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// The chat protocol on one socket (docs/design.md, "The WebSocket
// protocol"): the greeting, the client's frames, and the answers of the
// session.

// greet sends the session frame and starts listening to the session: when
// resuming, the history the client missed comes next, then live answers.
func (c *conn) greet(ctx context.Context, sess app.Session, after string) {
	c.enqueue(sessionFrame{Type: "session", SessionID: sess.ID, UserID: sess.UserID})
	c.stop = sess.Listen(ctx, after, app.Listener{
		History: c.sendHistory, Answer: c.sendAnswer, Question: c.sendQuestion, Ended: c.sessionEnded, Delta: c.sendDelta,
	})
}

func (c *conn) sendHistory(turns []domain.Turn, err error) {
	if errors.Is(err, domain.ErrNotFound) {
		c.enqueue(historyFrame{Type: "history", Turns: []wire.Turn{}, Unknown: true})
		return
	}
	if err != nil {
		c.enqueue(errorFrame{Type: "error", Code: codeUnavailable, Message: "could not load the session history; retry later"})
		return
	}
	c.enqueue(historyOf(turns))
}

func (c *conn) sendAnswer(m domain.Message) { c.enqueueAfterAck(m.ReplyTo, answerOf(m)) }

// sendDelta forwards a delta the session's listener let through: in
// order, of one attempt (app.Listener.Delta).
func (c *conn) sendDelta(d domain.Delta) { c.enqueueAfterAck(d.ReplyTo, answerDeltaOf(d)) }

// enqueueAfterAck queues a frame of the answer to question q, after q's
// ack when q is being asked on this socket: the answerer may be quicker
// than the query's publish returns, and a client learns the question's
// message_id, which the answer's reply_to names, from the ack.
func (c *conn) enqueueAfterAck(q string, frame any) {
	c.askedMu.Lock()
	if c.asked[q] {
		if c.early == nil {
			c.early = map[string][]any{}
		}
		c.early[q] = append(c.early[q], frame)
		c.askedMu.Unlock()
		return
	}
	c.askedMu.Unlock()
	c.enqueue(frame) // q's ack, if any, is queued before q leaves asked
}

// asking marks id as being asked on this socket; answered ends it with
// reply (the ack, or an error frame) and the frames of its answer that
// came meanwhile, in that order.
func (c *conn) asking(id string) {
	c.askedMu.Lock()
	defer c.askedMu.Unlock()
	if c.asked == nil {
		c.asked = map[string]bool{}
	}
	c.asked[id] = true
}

func (c *conn) answered(id string, reply any) {
	c.askedMu.Lock()
	defer c.askedMu.Unlock()
	c.enqueue(reply)
	for _, f := range c.early[id] {
		c.enqueue(f)
	}
	delete(c.early, id)
	delete(c.asked, id)
}

// sendQuestion shows the socket a question asked in its session elsewhere;
// its own questions get an ack instead.
func (c *conn) sendQuestion(m domain.Message) {
	c.askedMu.Lock()
	mine := c.asked[m.MessageID]
	c.askedMu.Unlock()
	if !mine {
		c.enqueue(questionFrame{Type: "question", MessageID: m.MessageID, Message: m.Text})
	}
}

// sessionEnded closes the socket of a deleted session, after what is
// queued: it must not stay bound to an id someone else may claim next.
func (c *conn) sessionEnded() {
	c.enqueue(closeRequest{code: websocket.CloseNormalClosure, reason: "session deleted"})
}

// serve reads the socket until it closes, then releases the connection.
func (c *conn) serve(ctx context.Context) {
	defer c.h.leave(c.user)
	defer c.h.unregister(c)
	defer c.stop()
	c.readLoop(ctx)
}

func (c *conn) readLoop(ctx context.Context) {
	c.ws.SetReadLimit(c.h.cfg.MaxFrame)
	deadline := func() { _ = c.ws.SetReadDeadline(time.Now().Add(2 * c.h.cfg.PingInterval)) }
	deadline()
	c.ws.SetPongHandler(func(string) error { deadline(); return nil })
	for {
		if err := awaitReadable(c.br, c.raw); err != nil {
			return // closed or timed out
		}
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return // closed, too large (gorilla answers 1009), or timed out
		}
		deadline()
		if !utf8.Valid(data) {
			c.h.metrics.received.WithLabelValues("invalid").Inc()
			// RFC 6455 §8.1: a text frame is UTF-8, or the endpoint fails
			// the connection with 1007. After what is queued, so the
			// client sees what came before.
			c.enqueue(closeRequest{code: websocket.CloseInvalidFramePayloadData, reason: "text frames must be valid UTF-8"})
			<-c.done
			return
		}
		var f clientFrame
		if !jsontext.Value(data).IsValid() || json.Unmarshal(data, &f) != nil {
			// Strict JSON: a repeated member ("type" twice) is refused,
			// not resolved one way here and another elsewhere.
			c.h.metrics.received.WithLabelValues("invalid").Inc()
			c.enqueue(errorFrame{Type: "error", Code: codeBadRequest, Message: "frames are JSON objects with a type, each member once"})
			continue
		}
		c.h.metrics.received.WithLabelValues(receivedType(f.Type)).Inc()
		switch f.Type {
		case "ping":
			c.enqueue(map[string]string{"type": "pong"})
		case "query":
			if !c.tracedQuery(ctx, f) {
				return
			}
		default:
			c.enqueue(errorFrame{Type: "error", ID: f.ID, Code: codeBadRequest, Message: `type must be "query" or "ping"`})
		}
	}
}

// tracedQuery is query in a span of its own: the root of the question's
// trace, linked to the socket's (the upgrade request's) span.
func (c *conn) tracedQuery(ctx context.Context, f clientFrame) bool {
	if !c.h.tracing.Enabled() {
		return c.query(ctx, f)
	}
	ctx, span := c.h.tracer.Start(ctx, "ws receive query", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithLinks(trace.LinkFromContext(ctx)), trace.WithAttributes(attribute.String("kchat.session_id", c.session)))
	defer span.End()
	return c.query(ctx, f)
}

// query asks the question of frame f. The connection's own rate and the
// user's (app.Ask) are both limits: too many rate-limited frames in a row
// close the socket with 1008, and query then returns false.
func (c *conn) query(ctx context.Context, f clientFrame) bool {
	var q domain.Message
	err := domain.ErrRateLimited
	id := ""
	if c.limiter.Allow() {
		// The id is chosen here so that the announcement of the question
		// (made to every socket of the session while Execute runs) skips
		// this one, and its answer waits for the ack.
		id = domain.NewMessageID()
		c.asking(id)
		q, err = c.h.ask.Execute(ctx, app.AskInput{UserID: c.user, SessionID: c.session, Text: f.Message, MessageID: id})
	}
	if !errors.Is(err, domain.ErrRateLimited) {
		c.strikes = 0
	} else if c.strikes++; c.strikes >= c.h.cfg.MaxStrikes {
		// After the frames already queued, so the client sees why.
		c.enqueue(closeRequest{code: websocket.ClosePolicyViolation, reason: "rate limit exceeded"})
		<-c.done
		return false
	}
	if err != nil {
		c.answered(id, errorFrame{Type: "error", ID: f.ID, Code: errorCode(err, f.Message), Message: errorText(err)})
		return true
	}
	c.h.metrics.Asked.Inc()
	c.answered(id, ackFrame{Type: "ack", ID: f.ID, MessageID: q.MessageID})
	return true
}

// errorCode maps a use case's error to the protocol's error code: the one
// place the WebSocket adapter does.
func errorCode(err error, text string) string {
	var verr *domain.ValidationError
	switch {
	case errors.Is(err, domain.ErrRateLimited):
		return codeRateLimited
	case errors.As(err, &verr) && len(text) > domain.MaxMessageBytes:
		return codeTooLarge
	case errors.As(err, &verr):
		return codeBadRequest
	case errors.Is(err, domain.ErrForbidden):
		return codeForbidden
	default:
		return codeUnavailable
	}
}

func errorText(err error) string {
	var verr *domain.ValidationError
	switch {
	case errors.Is(err, domain.ErrRateLimited):
		return "too many queries; slow down"
	case errors.As(err, &verr):
		return verr.Error()
	case errors.Is(err, domain.ErrForbidden):
		return "the session belongs to another user"
	default:
		return "the service is unavailable; retry in a moment"
	}
}
