package ws

import (
	"bufio"
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
)

// closeRequest asks the writer to close the socket once the frames queued
// before it are written.
type closeRequest struct {
	code   int
	reason string
}

// pingRequest asks the writer for a ping control frame.
type pingRequest struct{}

// conn is one socket's transport. Its reader runs in a goroutine of its
// own for the life of the socket (protocol.go); a writer goroutine runs
// only while frames wait in queue (it is started by enqueue and exits when
// the queue is empty), and pings come from a timer, so an idle socket costs
// one parked goroutine.
type conn struct {
	h       *Handler
	ws      *websocket.Conn
	br      *bufio.Reader   // ws reads through it (see awaitReadable)
	raw     syscall.RawConn // the socket's descriptor, to wait on it
	user    string
	session string
	limiter *rate.Limiter // this connection's own query rate
	strikes int           // reader only
	stop    func()        // ends the session's subscription; set before serve

	askedMu sync.Mutex
	asked   map[string]bool  // ids of the questions being asked on this socket: acked, not echoed
	early   map[string][]any // frames of their answers that came before the ack, by question

	mu      sync.Mutex
	queue   []any // frames for the writer, oldest first, at most cfg.SendQueue
	pinging bool  // a ping is due, ahead of the queue
	writing bool  // a writer goroutine is running
	pinger  *time.Timer
	done    chan struct{} // closed with the socket
	closed  bool
}

// enqueue queues a frame; a client whose queue is full is too slow and is
// dropped, so it never holds up anyone else.
func (c *conn) enqueue(frame any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if len(c.queue) >= c.h.cfg.SendQueue {
		c.h.log.Warn("dropping a slow websocket client", "user", c.user, "session", c.session)
		c.closeLocked(websocket.ClosePolicyViolation, "too slow")
		return
	}
	c.queue = append(c.queue, frame)
	c.wakeWriterLocked()
}

// wakeWriterLocked starts the writer unless it runs already (it then sees
// the new work before it exits). c.mu must be held.
func (c *conn) wakeWriterLocked() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// startPings pings the client every interval until the socket closes.
// The timer is set under c.mu, which its callback takes first.
func (c *conn) startPings() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinger = time.AfterFunc(c.h.cfg.PingInterval, c.pingDue)
}

// pingDue has the writer send a ping, and re-arms the timer.
func (c *conn) pingDue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.pinging = true
	c.wakeWriterLocked()
	c.pinger.Reset(c.h.cfg.PingInterval)
}

func (c *conn) closeWith(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, reason)
}

func (c *conn) closeLocked(code int, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	close(c.done)
	if c.pinger != nil {
		c.pinger.Stop()
	}
	c.queue = nil // never written now
	msg := websocket.FormatCloseMessage(code, reason)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = c.ws.Close()
}

// writeLoop writes what is due, in order, until nothing is, then exits.
func (c *conn) writeLoop() {
	for {
		frame, ok := c.next()
		if !ok || !c.write(frame) {
			return
		}
	}
}

// next takes the next thing to write: a due ping, then the oldest frame.
// With nothing left, or the socket closed, it clears c.writing (under the
// lock enqueue takes, so no frame is left behind) and returns false.
func (c *conn) next() (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
	case c.pinging:
		c.pinging = false
		return pingRequest{}, true
	case len(c.queue) > 0:
		frame := c.queue[0]
		c.queue[0] = nil
		if c.queue = c.queue[1:]; len(c.queue) == 0 {
			c.queue = nil // an idle socket holds no queue
		}
		return frame, true
	}
	c.writing = false
	return nil, false
}

// write writes one frame within the write deadline; false when the socket
// is closed (by a close request, or because the write failed).
func (c *conn) write(frame any) bool {
	switch f := frame.(type) {
	case closeRequest:
		c.closeWith(f.code, f.reason)
		return false
	case pingRequest:
		if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
			c.closeWith(websocket.CloseGoingAway, "ping failed")
			return false
		}
	default:
		span := c.writeSpan(frame)
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
		err := c.ws.WriteJSON(frame)
		if span != nil {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
		if err != nil {
			c.closeWith(websocket.CloseGoingAway, "write failed")
			return false
		}
		c.h.metrics.sent.WithLabelValues(sentType(frame)).Inc()
		switch f := frame.(type) {
		case answerFrame:
			c.h.metrics.Delivered.Inc()
			c.h.hops.Delivered(f.trace)
		case answerDeltaFrame:
			if f.Seq == 0 {
				c.h.hops.FirstDelta(f.trace)
			}
		}
	}
	return true
}

// writeSpan starts the span of an answer frame's write, a child of the
// gateway's delivery span the answer carries; nil for other frames, or
// with tracing off.
func (c *conn) writeSpan(frame any) trace.Span {
	f, ok := frame.(answerFrame)
	if !ok || f.trace.Parent == "" || !c.h.tracing.Enabled() {
		return nil
	}
	ctx := c.h.tracing.WithParent(context.Background(), f.trace.Parent)
	_, span := c.h.tracer.Start(ctx, "ws write answer", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("kchat.session_id", c.session), attribute.String("kchat.correlation_id", f.ReplyTo)))
	return span
}
