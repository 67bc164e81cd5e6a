package app

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Defaults of the generate stage's streaming (docs/design.md, "Streaming
// answers").
const (
	// DefaultDeltaEvery is the longest a piece of text waits for the next
	// delta once the first is out, unless a sentence ends first.
	DefaultDeltaEvery = 50 * time.Millisecond
	// DefaultDeltaTimeout bounds the wait for one delta's acknowledgement
	// and, once the text is complete, for the last deltas: what streaming
	// may add to an answer's time.
	DefaultDeltaTimeout = time.Second
)

// attemptClock names generation attempts: each its start time in
// nanoseconds, strictly greater than the one before in this process; a
// restarted process starts later, so its attempts are greater too.
type attemptClock struct{ last atomic.Int64 }

func (c *attemptClock) next(now time.Time) int64 {
	for {
		last, n := c.last.Load(), now.UnixNano()
		if n <= last {
			n = last + 1
		}
		if c.last.CompareAndSwap(last, n) {
			return n
		}
	}
}

// deltaStream streams one attempt's text: it gathers the generator's
// chunks and a goroutine of its own writes them as signed deltas (seq 0,
// 1, 2…), the first at once, then whenever a sentence ends or every
// interval, one at a time, what came meanwhile in one delta. The generator
// never waits for it. After a delta fails it writes no more: readers stop
// at the gap anyway and wait for the final answer.
type deltaStream struct {
	pub     ports.DeltaPublisher
	key     *domain.AnswerKey
	head    domain.Delta // reply_to, session, user, attempt
	every   time.Duration
	timeout time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // a flush is due; capacity 1
	done   chan struct{} // the writer returned

	mu      sync.Mutex
	pending strings.Builder
	started bool        // the first chunk came
	closing bool        // no more chunks: write what is left and return
	stopped bool        // writing failed or was cancelled
	last    time.Time   // when the last delta was taken
	timer   *time.Timer // the interval's flush, while armed
}

func startDeltaStream(ctx context.Context, pub ports.DeltaPublisher, key *domain.AnswerKey, head domain.Delta, every, timeout time.Duration) *deltaStream {
	s := &deltaStream{
		pub: pub, key: key, head: head, every: every, timeout: timeout,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	go s.write()
	return s
}

// chunk adds text; it never blocks on Kafka.
func (s *deltaStream) chunk(text string) {
	if text == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.closing {
		return
	}
	s.pending.WriteString(text)
	switch {
	case !s.started:
		s.started, s.last = true, time.Now()
		s.poke()
	case endsSentence(s.pending.String()):
		s.poke()
	case s.timer == nil:
		s.timer = time.AfterFunc(max(0, s.every-time.Since(s.last)), s.poke)
	}
}

func (s *deltaStream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// write is the writer goroutine: it takes what is pending whenever poked
// and writes it as the next delta.
func (s *deltaStream) write() {
	defer close(s.done)
	for seq := 0; ; {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		text, closing := s.pending.String(), s.closing
		s.pending.Reset()
		s.last = time.Now()
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		s.mu.Unlock()
		if text != "" {
			d := s.head
			d.Seq, d.Text = seq, text
			ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
			err := s.pub.PublishDelta(ctx, s.key.SignDelta(d))
			cancel()
			if err != nil {
				s.mu.Lock()
				s.stopped = true
				s.mu.Unlock()
				return
			}
			seq++
		}
		if closing {
			return
		}
	}
}

// finish writes what is left and waits for it, at most the timeout; past
// it the writing is given up.
func (s *deltaStream) finish() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.poke()
	select {
	case <-s.done:
	case <-time.After(s.timeout):
	}
	s.abort()
}

// abort stops the writing, what is pending unwritten, and waits for the
// writer (PublishDelta returns when its ctx ends).
func (s *deltaStream) abort() {
	s.mu.Lock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
	s.cancel()
	<-s.done
}

// endsSentence reports whether text ends a sentence (or a line), maybe
// followed by citation markers ("… run. [1]"): the natural point to show
// what came so far.
func endsSentence(text string) bool {
	t := strings.TrimRightFunc(text, unicode.IsSpace)
	if len(t) < len(text) && strings.ContainsRune(text[len(t):], '\n') {
		return true
	}
	for strings.HasSuffix(t, "]") {
		open := strings.LastIndexByte(t, '[')
		if open < 0 || strings.Trim(t[open+1:len(t)-1], "0123456789") != "" || open+2 == len(t) {
			break
		}
		t = strings.TrimRightFunc(t[:open], unicode.IsSpace)
	}
	if t == "" {
		return false
	}
	switch t[len(t)-1] {
	case '.', '!', '?':
		return true
	}
	return strings.HasSuffix(t, "…")
}
