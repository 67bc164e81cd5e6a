package app

import (
	"context"
	"time"

	"github.com/kchat/kchat/domain"
)

// StreamChat asks a question and streams its answer as it is generated,
// for clients that hold no connection open but read a response as it
// comes (POST /chat with Accept: text/event-stream): the answer's deltas
// in order, then the answer (docs/design.md, "Streaming answers").
type StreamChat struct {
	Ask     *Ask
	Answers *Answers
	// Timeout bounds the wait for the answer.
	Timeout time.Duration
}

// Execute publishes the question and returns the stream of its answer;
// the caller reads it with Next and must Close it. Errors: those of Ask
// (then nothing was published).
func (uc *StreamChat) Execute(ctx context.Context, in ChatInput) (*ChatStream, error) {
	return startChat(ctx, uc.Ask, uc.Answers, uc.Timeout, in, true)
}

// ChatStream is a question published and the wait for its answer.
type ChatStream struct {
	SessionID string
	Query     domain.Message

	waiter  *replyWaiter
	done    func()
	timeout time.Duration
	timer   *time.Timer
	order   deltaOrder
	final   *domain.Message // the answer, held for its stream's last deltas
	tail    <-chan time.Time
}

// ChatEvent is one step of a ChatStream: a delta of the answer, or (Final)
// the answer itself.
type ChatEvent struct {
	Delta  domain.Delta
	Answer domain.Message
	Final  bool
}

// Next waits for the next event: a delta that continues the answer's text
// in order (of one attempt; a greater attempt's seq 0 starts the text
// again), or the final answer, after which the stream is over. Deltas
// that came out of order are held back: the final answer replaces them.
// Errors: *AnswerTimeoutError when the answer did not come within the
// use case's Timeout of the question, or ctx ended.
func (s *ChatStream) Next(ctx context.Context) (ChatEvent, error) {
	for {
		if s.final != nil && !s.order.awaits(s.final.ReplyTo, s.final.Text) {
			return s.end(), nil
		}
		// Deltas already here first: they were written before the answer.
		select {
		case d := <-s.waiter.deltas:
			if s.order.admit(d) {
				return ChatEvent{Delta: d}, nil
			}
			continue
		default:
		}
		select {
		case a := <-s.waiter.answer:
			if s.order.awaits(a.ReplyTo, a.Text) {
				// Its last deltas are on their way: wait for them, a while.
				s.final, s.tail = &a, time.After(tailWait)
				continue
			}
			s.final = &a
			return s.end(), nil
		case <-s.tail: // nil until an answer is held
			return s.end(), nil
		case d := <-s.waiter.deltas: // nil without deltas: never ready
			if s.order.admit(d) {
				return ChatEvent{Delta: d}, nil
			}
		case <-s.timer.C:
			if s.final != nil {
				return s.end(), nil
			}
			return ChatEvent{}, &AnswerTimeoutError{QueryID: s.Query.MessageID, Timeout: s.timeout}
		case <-ctx.Done():
			return ChatEvent{}, &AnswerTimeoutError{QueryID: s.Query.MessageID}
		}
	}
}

// end returns the held final answer, which ends the stream.
func (s *ChatStream) end() ChatEvent {
	a := *s.final
	s.order.end(a.ReplyTo)
	s.final, s.tail = nil, nil
	return ChatEvent{Answer: a, Final: true}
}

// Close stops waiting for the answer.
func (s *ChatStream) Close() {
	s.timer.Stop()
	s.done()
}
