package app

import (
	"strings"
	"time"

	"github.com/kchat/kchat/domain"
)

// tailWait bounds how long a receiver holds a final answer back for the
// last deltas of the stream it shows: the answerer writes them before it
// commits the answer, but they travel on another topic, read by another
// reader, and may reach this process just after the answer. Held so, the
// deltas a client saw add up to the answer, and a stream cut short still
// ends at once with the answer, which replaces it.
const tailWait = 100 * time.Millisecond

// deltaOrder lets through, for one receiver (a socket, a waiting request),
// only the deltas it can show as they are: per reply, seq 0 of an attempt
// greater than any seen starts (or restarts) the reply's stream, then seq
// 1, 2… of that attempt. Anything else — a gap, an older attempt, a stream
// joined after its seq 0 — holds the reply's deltas back until the final
// answer (end), which replaces whatever was shown; a later attempt's seq 0
// may start it again. A receiver so never shows text out of order or of
// two attempts mixed (docs/design.md, "Streaming answers"). Not safe for
// concurrent use: its owner serializes the calls.
type deltaOrder struct {
	streams map[string]replyStream // by the question replied to
}

type replyStream struct {
	attempt int64
	next    int    // the seq expected next
	stopped bool   // nothing more of this attempt
	text    string // what the passed deltas of the attempt add up to
}

// admit reports whether d is the next delta of its reply to pass on.
func (o *deltaOrder) admit(d domain.Delta) bool {
	s, ok := o.streams[d.ReplyTo]
	switch {
	case d.Seq == 0 && (!ok || d.Attempt > s.attempt):
		o.set(d.ReplyTo, replyStream{attempt: d.Attempt, next: 1, text: d.Text})
		return true
	case ok && d.Attempt < s.attempt:
		return false // an older attempt's: its text was replaced
	case ok && d.Attempt == s.attempt && d.Seq < s.next:
		return false // seen already: a duplicate, not a gap
	case ok && d.Attempt == s.attempt && !s.stopped && d.Seq == s.next:
		s.next++
		s.text += d.Text
		o.streams[d.ReplyTo] = s
		return true
	}
	// A gap, or an attempt joined after its start: nothing more of it.
	o.stop(d)
	return false
}

// stop holds back the rest of d's attempt (and older ones): the receiver
// missed part of it, having joined mid-stream or resumed during it.
func (o *deltaOrder) stop(d domain.Delta) {
	if s, ok := o.streams[d.ReplyTo]; ok && s.attempt > d.Attempt {
		return
	}
	o.set(d.ReplyTo, replyStream{attempt: d.Attempt, next: d.Seq + 1, stopped: true})
}

// awaits reports whether the stream shown for the question replyTo has
// more to come before it adds up to the answer text final: it runs, and
// its text is a proper beginning of final.
func (o *deltaOrder) awaits(replyTo, final string) bool {
	s, ok := o.streams[replyTo]
	return ok && !s.stopped && len(s.text) < len(final) && strings.HasPrefix(final, s.text)
}

// end forgets the stream of the question replyTo: its final answer came.
func (o *deltaOrder) end(replyTo string) { delete(o.streams, replyTo) }

func (o *deltaOrder) set(replyTo string, s replyStream) {
	if o.streams == nil {
		o.streams = map[string]replyStream{}
	}
	o.streams[replyTo] = s
}
