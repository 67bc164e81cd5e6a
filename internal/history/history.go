// Package history records what a load generator did to kchat during a
// fault scenario and checks it against what Kafka holds afterwards, in the
// manner of Jepsen's queue checkers: every operation is invoked, then ends
// ok, failed or unknown; after the run every topic is read to the end
// offsets measured then, and Check reports what was lost, unexpected,
// duplicated or reordered (CheckConsumer does the same for what a consumer
// was handed). A test kit: no binary imports it.
package history

import (
	"sync"
	"time"
)

// Outcome is how an operation ended.
type Outcome int

const (
	// Pending: invoked and never completed (the run ended first). Judged
	// as Unknown.
	Pending Outcome = iota
	// OK: acknowledged; the message must be in the topic.
	OK
	// Fail: refused for certain (a 4xx); the message must not be there.
	Fail
	// Unknown: it may or may not have been written (a 503, a timeout, a
	// connection error); either is allowed.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Fail:
		return "fail"
	case Unknown:
		return "unknown"
	default:
		return "pending"
	}
}

// HTTPOutcome judges an HTTP request: a transport error (timeout, refused
// or cut connection) is Unknown, 2xx OK, 4xx Fail, and anything else
// (a 503 from a produce past its delivery timeout, any 5xx) Unknown: the
// server may have written the message before it answered.
func HTTPOutcome(status int, err error) Outcome {
	switch {
	case err != nil:
		return Unknown
	case status >= 200 && status < 300:
		return OK
	case status >= 400 && status < 500:
		return Fail
	default:
		return Unknown
	}
}

// Send is what an operation sends.
type Send struct {
	ID      string // the message id, which identifies it in the topics
	Key     string // the record key (the session id): order is checked per key
	Payload string // a marker of the content, for reports
}

// Position is where a record is (or was acknowledged to be).
type Position struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Op is one operation of a history.
type Op struct {
	Send
	Outcome Outcome
	// At is where an OK operation landed, when the acknowledgement said so
	// (Placed).
	At     Position
	Placed bool
	Reason string // why it failed or is unknown (a status, an error)
	// Invoked and Completed order the events of the history: an operation
	// whose Completed is below another's Invoked was acknowledged before the
	// other was sent. Completed is 0 while pending.
	Invoked, Completed     int64
	InvokedAt, CompletedAt time.Time
}

// Handle names an invoked operation to complete it.
type Handle int

// History is the record of a scenario's operations. It is safe for
// concurrent use: every client of a load generator records into the same
// history, each call costing one short lock.
type History struct {
	scenario string
	mu       sync.Mutex
	clock    int64
	ops      []Op
}

// New returns an empty history of the named scenario.
func New(scenario string) *History {
	return &History{scenario: scenario}
}

// Scenario is the name New was given.
func (h *History) Scenario() string { return h.scenario }

// Invoke records that s is about to be sent and returns its handle. Call
// it before sending, so that the order of events is true.
func (h *History) Invoke(s Send) Handle {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	h.ops = append(h.ops, Op{Send: s, Invoked: h.clock, InvokedAt: now})
	return Handle(len(h.ops) - 1)
}

// OK records that op was acknowledged, without a position.
func (h *History) OK(op Handle) { h.complete(op, OK, nil, "") }

// OKAt records that op was acknowledged at pos.
func (h *History) OKAt(op Handle, pos Position) { h.complete(op, OK, &pos, "") }

// Fail records that op was refused for certain.
func (h *History) Fail(op Handle, reason string) { h.complete(op, Fail, nil, reason) }

// Unknown records that op ended without telling whether it was written.
func (h *History) Unknown(op Handle, reason string) { h.complete(op, Unknown, nil, reason) }

// Complete records that op ended with o (for instance HTTPOutcome's
// verdict).
func (h *History) Complete(op Handle, o Outcome, reason string) { h.complete(op, o, nil, reason) }

func (h *History) complete(op Handle, o Outcome, pos *Position, reason string) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	p := &h.ops[op]
	if p.Completed != 0 {
		panic("history: operation " + p.ID + " completed twice")
	}
	p.Outcome, p.Reason, p.Completed, p.CompletedAt = o, reason, h.clock, now
	if pos != nil {
		p.At, p.Placed = *pos, true
	}
}

// Ops returns a copy of the operations, in the order they were invoked.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}
