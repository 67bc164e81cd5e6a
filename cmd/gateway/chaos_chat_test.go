package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/history"
)

// chatLoad is the load of the gateway's fault scenarios: visitors (each
// from an address of its own, with a cookie of its own) chatting on one
// socket each, in one session each. A chatter asks a question, waits for
// its ack or error, reads whatever comes for a while (pace), and asks the
// next. When the server closes its socket, it waits until the rig's
// gateway is replaced and resumes its session after the last turn it saw.
// Every question is recorded in a history under a marker its text carries
// (the gateway chooses the question's id): invoked before it is sent, ok
// at its ack, fail at an error frame (refused: nothing may be published),
// unknown when the socket closed first. Tests wait on its counts to inject
// faults on events.
type chatLoad struct {
	rig  *chatRig
	h    *history.History
	pace time.Duration
	stop chan struct{} // stop asking: read until every acknowledged question was answered
	quit chan struct{} // stop reading
	wg   sync.WaitGroup

	mu      sync.Mutex // guards the counts, the waits and every chatter's state
	all     []*chatter
	acks    int
	answers []time.Time // when each live answer arrived
	waits   []loadWait
}

// chatter is one visitor of a chatLoad; its fields are guarded by the
// load's mu.
type chatter struct {
	name     string
	v        *visitor
	session  string
	asked    int               // questions sent
	acked    map[string]string // question id → marker, of the acknowledged ones
	got      map[string]int    // answer id → times it reached the visitor (live, or in a history frame)
	last     string            // the last turn that reached the visitor: a resume asks for what follows
	closes   []int             // close codes the server sent
	refused  map[string]int    // error codes its questions got
	problems []string
}

type loadWait struct {
	cond func() bool // called with mu held
	ch   chan struct{}
}

// askTimeout bounds the wait for a question's ack or error: past it the
// gateway did not answer a question, which no scenario allows.
const askTimeout = 20 * time.Second

func newChatLoad(rig *chatRig, h *history.History, pace time.Duration) *chatLoad {
	return &chatLoad{rig: rig, h: h, pace: pace, stop: make(chan struct{}), quit: make(chan struct{})}
}

// newChatter adds a visitor dialing from 127.0.0.<host>, not yet connected:
// the test drives it (connect, ask, awaitAnswer) or start runs it.
func (l *chatLoad) newChatter(name string, host int) *chatter {
	c := &chatter{name: name, v: newVisitor(l.rig.t, host), acked: map[string]string{}, got: map[string]int{}, refused: map[string]int{}}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, c)
	return c
}

// start runs n chatters, from addresses firstHost and on.
func (l *chatLoad) start(n, firstHost int) {
	for i := range n {
		c := l.newChatter(fmt.Sprintf("c%02d", i), firstHost+i)
		l.wg.Go(func() { l.run(c) })
	}
}

func (l *chatLoad) run(c *chatter) {
	var s *socket
	var gone <-chan struct{}
	defer func() {
		if s != nil {
			s.close()
		}
	}()
	for {
		if s == nil {
			if s = l.connect(c, gone); s == nil {
				return
			}
		}
		var ok bool
		select {
		case <-l.stop:
			if ok = l.drain(c, s); ok {
				return
			}
		default:
			ok = l.ask(c, s).open && l.idle(c, s, after(l.pace))
		}
		if !ok {
			l.ended(c, s)
			gone, s = s.gone, nil
		}
	}
}

// after returns a channel closed once d has passed.
func after(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

// connect opens c's socket: a new session the first time, then a resume of
// it after the last turn c saw, once gone (the gateway that closed the last
// socket was replaced) is closed. It returns nil if the load quits first or
// the gateway refuses five times.
func (l *chatLoad) connect(c *chatter, gone <-chan struct{}) *socket {
	if gone != nil {
		select {
		case <-gone:
		case <-l.quit:
			return nil
		}
	}
	for attempt := 1; ; attempt++ {
		l.mu.Lock()
		session, last := c.session, c.last
		l.mu.Unlock()
		query := ""
		if session != "" {
			query = "?session_id=" + url.QueryEscape(session)
			if last != "" {
				query += "&after=" + url.QueryEscape(last)
			}
		}
		s, status, err := dialSocket(l.rig, c.v, query)
		if err == nil {
			f, _, _ := s.next(after(10 * time.Second))
			if id, _ := f["session_id"].(string); f["type"] == "session" && id != "" {
				if session != "" && id != session {
					l.problem(c, "resumed session %s, got session %s", session, id)
				}
				l.update(func() { c.session = id })
				return s
			}
			s.close()
			err = fmt.Errorf("first frame %v, want the session", f)
		}
		l.problem(c, "connect (attempt %d, %q): %d %v", attempt, query, status, err)
		if attempt == 5 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// asked is how a question ended.
type asked struct {
	marker string
	id     string // the question's id, when acknowledged
	code   string // the error code, when refused
	open   bool   // the socket is still open
}

// ask sends c's next question on s and waits for its ack or error.
func (l *chatLoad) ask(c *chatter, s *socket) asked {
	l.mu.Lock()
	marker, key := fmt.Sprintf("%s-%s-%04d", l.h.Scenario(), c.name, c.asked), c.session
	c.asked++
	l.mu.Unlock()
	res := asked{marker: marker, open: true}
	op := l.h.Invoke(history.Send{ID: marker, Key: key, Payload: marker})
	if err := s.conn.WriteJSON(frame{"type": "query", "id": marker, "message": questionText(marker)}); err != nil {
		l.h.Unknown(op, "write: "+err.Error())
		res.open = false
		return res
	}
	deadline := after(askTimeout)
	for {
		f, closed, timedOut := s.next(deadline)
		switch {
		case closed:
			l.h.Unknown(op, fmt.Sprintf("socket closed (%d) before an ack", s.closeCode()))
			res.open = false
			return res
		case timedOut:
			l.h.Unknown(op, "no ack or error within "+askTimeout.String())
			l.problem(c, "%s: no ack or error within %s", marker, askTimeout)
			return res
		}
		if f["id"] == marker && f["type"] == "ack" {
			res.id, _ = f["message_id"].(string)
			l.h.OK(op)
			l.update(func() { c.acked[res.id] = marker; l.acks++ })
			return res
		}
		if f["id"] == marker && f["type"] == "error" {
			res.code, _ = f["code"].(string)
			l.h.Fail(op, "error "+res.code)
			l.update(func() { c.refused[res.code]++ })
			return res
		}
		l.handle(c, f)
	}
}

// questionText is a question's text, carrying its marker: the checks find
// each question in the topics by it.
func questionText(marker string) string { return "How do I start kchat? [" + marker + "]" }

// markerOf returns the marker a question's text carries, or "".
func markerOf(text string) string {
	i, j := strings.LastIndex(text, "["), strings.LastIndex(text, "]")
	if i < 0 || j < i {
		return ""
	}
	return text[i+1 : j]
}

// idle reads s until until is closed; false if the socket closed first.
func (l *chatLoad) idle(c *chatter, s *socket, until <-chan struct{}) bool {
	for {
		f, closed, timedOut := s.next(until)
		if closed {
			return false
		}
		if timedOut {
			return true
		}
		l.handle(c, f)
	}
}

// drain reads s until c has the answer to every question of its that was
// acknowledged, or the load quits; false if the socket closed first.
func (l *chatLoad) drain(c *chatter, s *socket) bool {
	for !l.complete(c) {
		f, closed, timedOut := s.next(l.quit)
		if closed {
			return false
		}
		if timedOut {
			return true
		}
		l.handle(c, f)
	}
	return true
}

// awaitAnswer reads s until the answer to question id reached c, and
// returns when; false if it did not come within timeout.
func (l *chatLoad) awaitAnswer(c *chatter, s *socket, id string, timeout time.Duration) (time.Time, bool) {
	deadline := after(timeout)
	want := domain.DerivedID(id, "answer")
	for {
		l.mu.Lock()
		n := c.got[want]
		l.mu.Unlock()
		if n > 0 {
			return time.Now(), true
		}
		f, closed, timedOut := s.next(deadline)
		if closed || timedOut {
			return time.Time{}, false
		}
		l.handle(c, f)
	}
}

// handle takes a frame that is not the ack or error of a question asked:
// an answer, or the history of a resume.
func (l *chatLoad) handle(c *chatter, f frame) {
	now := time.Now()
	switch f["type"] {
	case "answer":
		id, _ := f["message_id"].(string)
		l.update(func() { c.got[id]++; c.last = id; l.answers = append(l.answers, now) })
	case "history":
		turns, _ := f["turns"].([]any)
		l.update(func() {
			for _, x := range turns {
				turn, _ := x.(map[string]any)
				id, _ := turn["message_id"].(string)
				if turn["role"] == "assistant" {
					c.got[id]++
				}
				c.last = id
			}
		})
	case "error":
		l.problem(c, "error frame %v", f)
	}
}

// ended records that the server closed c's socket s.
func (l *chatLoad) ended(c *chatter, s *socket) {
	code := s.closeCode()
	s.close()
	l.update(func() { c.closes = append(c.closes, code) })
}

func (l *chatLoad) problem(c *chatter, format string, args ...any) {
	l.update(func() { c.problems = append(c.problems, fmt.Sprintf(format, args...)) })
}

// complete reports whether c has the answer to every question of its that
// was acknowledged.
func (l *chatLoad) complete(c *chatter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(missing(c)) == 0
}

// missing lists the ids of the answers c waits for (called with mu held).
func missing(c *chatter) []string {
	var ids []string
	for id := range c.acked {
		if a := domain.DerivedID(id, "answer"); c.got[a] == 0 {
			ids = append(ids, a)
		}
	}
	return ids
}

// update changes the load's state under its lock, then closes the waits
// whose condition now holds.
func (l *chatLoad) update(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
	l.waits = slices.DeleteFunc(l.waits, func(w loadWait) bool {
		if w.cond() {
			close(w.ch)
			return true
		}
		return false
	})
}

// when returns a channel closed once cond holds; cond reads the load's
// state (it is called with the lock held).
func (l *chatLoad) when(cond func() bool) <-chan struct{} {
	w := loadWait{cond: cond, ch: make(chan struct{})}
	l.update(func() { l.waits = append(l.waits, w) })
	return w.ch
}

// acked returns a channel closed once n questions in all were acknowledged.
func (l *chatLoad) acked(n int) <-chan struct{} { return l.when(func() bool { return l.acks >= n }) }

// ackCount returns how many questions were acknowledged so far.
func (l *chatLoad) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks
}

// await waits for ch, failing the test after timeout: a guard against a
// load that stalled, never the moment of a fault.
func (l *chatLoad) await(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("no %s within %s (%d acknowledged so far)", what, timeout, l.ackCount())
	}
}

// end stops the questions and waits until every chatter has the answer to
// each of its acknowledged questions, at most drain; then it stops them.
func (l *chatLoad) end(drain time.Duration) {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
	}
	close(l.quit)
	<-done
}

// firstAnswerAfter is how long after at the first live answer arrived, or
// -1 if none did.
func (l *chatLoad) firstAnswerAfter(at time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := time.Duration(-1)
	for _, a := range l.answers {
		if d := a.Sub(at); d > 0 && (first < 0 || d < first) {
			first = d
		}
	}
	return first
}
