package app_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// events is an ordered log shared by the fakes below, so a test can tell
// what happened before what.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// deltaSink is a fake ports.DeltaPublisher. block makes every call wait
// for its ctx; fail makes every call fail.
type deltaSink struct {
	ev    *events
	block bool
	fail  bool

	mu     sync.Mutex
	deltas []domain.Delta
	calls  int
	added  chan struct{} // closed and replaced at each delta
}

func newDeltaSink(ev *events) *deltaSink { return &deltaSink{ev: ev, added: make(chan struct{})} }

func (s *deltaSink) PublishDelta(ctx context.Context, d domain.Delta) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.fail {
		return errors.New("broker says no")
	}
	s.ev.add(fmt.Sprintf("delta %d", d.Seq))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deltas = append(s.deltas, d)
	close(s.added)
	s.added = make(chan struct{})
	return nil
}

func (s *deltaSink) got() []domain.Delta {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deltas)
}

// waitFor waits until the sink holds n deltas.
func (s *deltaSink) waitFor(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		have, added := len(s.deltas), s.added
		s.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-added:
		case <-deadline:
			t.Fatalf("%d deltas within %s, want %d", have, timeout, n)
		}
	}
}

// step is a piece a scripted generator emits, and what it waits for after.
type step struct {
	chunk string
	after func()
}

// scripted is a fake ports.Generator: try i plays tries[i] (the last one
// for any try after), and fails if its fail is set.
type scripted struct {
	tries []script
	mu    sync.Mutex
	n     int
}

type script struct {
	steps []step
	fail  bool
}

func (g *scripted) Generate(ctx context.Context, _ domain.Prompt, onChunk func(string)) (string, error) {
	g.mu.Lock()
	s := g.tries[min(g.n, len(g.tries)-1)]
	g.n++
	g.mu.Unlock()
	var b strings.Builder
	for _, st := range s.steps {
		b.WriteString(st.chunk)
		if onChunk != nil {
			onChunk(st.chunk)
		}
		if st.after != nil {
			st.after()
		}
	}
	if s.fail {
		return "", fmt.Errorf("model went away: %w", domain.ErrUnavailable)
	}
	return b.String(), nil
}

// loggedSessions notes when an answer is recorded.
type loggedSessions struct {
	ports.SessionStore
	ev *events
}

func (s loggedSessions) Append(ctx context.Context, session string, turn domain.Turn) error {
	s.ev.add("record " + turn.Text)
	return s.SessionStore.Append(ctx, session, turn)
}

// streamPrompt is a signed prompt of session s1, asked by alice as q1.
func streamPrompt(t *testing.T, key *domain.AnswerKey) domain.Message {
	t.Helper()
	q := domain.Message{MessageID: "q1", SessionID: "s1", UserID: "alice", Type: domain.TypeQuery, Text: "How do I start kchat?", CreatedAt: time.Now()}
	p := domain.BuildPrompt(q.Text, q.MessageID, nil, []domain.Passage{{Source: "running.md", Text: "Run make run."}})
	return key.Sign(domain.NewPromptMessage(q, p, time.Now()))
}

func streamingAnswer(t *testing.T, g ports.Generator, sink *deltaSink, ev *events) (*app.Answer, *domain.AnswerKey) {
	t.Helper()
	key := mustKey(t, ourSecret)
	return &app.Answer{
		Sessions: loggedSessions{newSessions(), ev}, Generator: g, Key: key,
		Attempts: 1, Deltas: sink, DeltaEvery: time.Hour, DeltaTimeout: 2 * time.Second,
	}, key
}

// texts is the text of each delta.
func texts(ds []domain.Delta) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Text
	}
	return out
}

// The first chunk is written at once, a finished sentence at once, and the
// rest gathered into one delta before Execute returns, before the answer is
// recorded; every delta is signed, seq 0, 1, 2 of one attempt, and they add
// up to the answer.
func TestAnswerStreamsCoalescedSignedDeltas(t *testing.T) {
	ev := &events{}
	sink := newDeltaSink(ev)
	wait := func(n int) func() { return func() { sink.waitFor(t, n, 5*time.Second) } }
	g := &scripted{tries: []script{{steps: []step{
		{chunk: "Run", after: wait(1)},
		{chunk: " make"}, {chunk: " run"}, {chunk: " [1].", after: wait(2)},
		{chunk: " Then"}, {chunk: " open"}, {chunk: " the page"},
	}}}}
	uc, key := streamingAnswer(t, g, sink, ev)
	a, err := uc.Execute(context.Background(), streamPrompt(t, key))
	if err != nil {
		t.Fatal(err)
	}
	if a.Text != "Run make run [1]. Then open the page" {
		t.Fatalf("answer %q", a.Text)
	}
	ds := sink.got()
	if want := []string{"Run", " make run [1].", " Then open the page"}; !slices.Equal(texts(ds), want) {
		t.Fatalf("deltas %q, want %q", texts(ds), want)
	}
	for i, d := range ds {
		if d.Seq != i || d.Attempt != ds[0].Attempt || d.ReplyTo != "q1" || d.SessionID != "s1" || d.UserID != "alice" {
			t.Errorf("delta %d = %+v, want seq %d of attempt %d, q1 of s1 by alice", i, d, i, ds[0].Attempt)
		}
		if err := key.VerifyDelta(d); err != nil {
			t.Errorf("delta %d does not verify: %v", i, err)
		}
		forged := d
		forged.Text = "something else"
		if err := key.VerifyDelta(forged); !errors.Is(err, domain.ErrBadSignature) {
			t.Errorf("delta %d with its text changed verifies: %v", i, err)
		}
	}
	if ds[0].Attempt < time.Now().Add(-time.Minute).UnixNano() {
		t.Errorf("attempt %d is not the try's start time in nanoseconds", ds[0].Attempt)
	}
	if want := []string{"delta 0", "delta 1", "delta 2", "record " + a.Text}; !slices.Equal(ev.all(), want) {
		t.Errorf("events %q, want %q: the last delta before the answer is recorded", ev.all(), want)
	}
}

// A slow model's tail is not held back until a sentence ends: the interval
// writes it; and a fast stream of chunks makes a few deltas, not one each.
func TestAnswerStreamsASlowTailAndCoalescesAFastStream(t *testing.T) {
	ev := &events{}
	sink := newDeltaSink(ev)
	var steps []step
	steps = append(steps,
		step{chunk: "A", after: func() { sink.waitFor(t, 1, 5*time.Second) }},
		// No sentence ends: only the 30 ms interval can write it, while
		// the model is still generating.
		step{chunk: " slow", after: func() { sink.waitFor(t, 2, 5*time.Second) }},
	)
	for range 40 {
		steps = append(steps, step{chunk: " x", after: func() { time.Sleep(3 * time.Millisecond) }})
	}
	g := &scripted{tries: []script{{steps: steps}}}
	uc, key := streamingAnswer(t, g, sink, ev)
	uc.DeltaEvery = 30 * time.Millisecond
	start := time.Now()
	a, err := uc.Execute(context.Background(), streamPrompt(t, key))
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	ds := sink.got()
	if len(ds) < 2 || ds[1].Text != " slow" {
		t.Fatalf("deltas %q, want the slow tail \" slow\" as the second", texts(ds))
	}
	if got := strings.Join(texts(ds), ""); got != a.Text {
		t.Fatalf("deltas add up to %q, the answer is %q", got, a.Text)
	}
	// 40 chunks over elapsed: at most one delta per 30 ms, plus the last.
	fast := len(ds) - 2
	if limit := int(elapsed/(30*time.Millisecond)) + 2; fast > limit || fast >= 40 {
		t.Fatalf("40 chunks in %s made %d deltas, want at most %d", elapsed, fast, limit)
	}
	t.Logf("40 chunks in %s: %d deltas", elapsed, fast)
}

// Each try streams under a new, greater attempt with seq from 0; the
// answer is the last try's text, which its deltas add up to. A new
// process's attempts are greater still.
func TestAnswerStreamsEachTryUnderANewAttempt(t *testing.T) {
	ev := &events{}
	sink := newDeltaSink(ev)
	g := &scripted{tries: []script{
		{steps: []step{{chunk: "Half an", after: func() { sink.waitFor(t, 1, 5*time.Second) }}}, fail: true},
		{steps: []step{{chunk: "Run"}, {chunk: " make run."}}},
	}}
	uc, key := streamingAnswer(t, g, sink, ev)
	uc.Attempts = 2
	a, err := uc.Execute(context.Background(), streamPrompt(t, key))
	if err != nil {
		t.Fatal(err)
	}
	ds := sink.got()
	byAttempt := map[int64][]domain.Delta{}
	var order []int64
	for _, d := range ds {
		if _, ok := byAttempt[d.Attempt]; !ok {
			order = append(order, d.Attempt)
		}
		byAttempt[d.Attempt] = append(byAttempt[d.Attempt], d)
	}
	if len(order) != 2 || order[1] <= order[0] {
		t.Fatalf("attempts %v, want two, the second greater", order)
	}
	for _, at := range order {
		for i, d := range byAttempt[at] {
			if d.Seq != i {
				t.Errorf("attempt %d: delta %d has seq %d", at, i, d.Seq)
			}
		}
	}
	if got := strings.Join(texts(byAttempt[order[1]]), ""); got != a.Text || a.Text != "Run make run." {
		t.Fatalf("last attempt adds up to %q, answer %q", got, a.Text)
	}

	// A restarted process: a new use case, a later start.
	sink2 := newDeltaSink(ev)
	uc2, _ := streamingAnswer(t, &scripted{tries: []script{{steps: []step{{chunk: "Again."}}}}}, sink2, ev)
	uc2.Key = key
	if _, err := uc2.Execute(context.Background(), streamPrompt(t, key)); err != nil {
		t.Fatal(err)
	}
	if got := sink2.got(); len(got) != 1 || got[0].Attempt <= order[1] {
		t.Fatalf("the new process streamed %+v, want one delta with an attempt above %d", got, order[1])
	}
}

// A stream that ends in failure is followed by the failure answer: the
// user sees the half answer replaced by the error, never a silent stop.
func TestAnswerFailedStreamIsFollowedByTheFailureAnswer(t *testing.T) {
	ev := &events{}
	sink := newDeltaSink(ev)
	tries := 0
	g := &scripted{tries: []script{{steps: []step{{chunk: "The answer is", after: func() { tries++; sink.waitFor(t, tries, 5*time.Second) }}, {chunk: " probably"}}, fail: true}}}
	uc, key := streamingAnswer(t, g, sink, ev)
	uc.Attempts = 2
	a, err := uc.Execute(context.Background(), streamPrompt(t, key))
	if err != nil {
		t.Fatal(err)
	}
	reason, failed := a.Failure()
	if !failed || !strings.Contains(reason, "model went away") || a.Text != domain.FailedAnswerText {
		t.Fatalf("answer %q metadata %v, want the failure answer", a.Text, a.Metadata)
	}
	if err := key.Verify(a); err != nil {
		t.Fatalf("the failure answer is not signed: %v", err)
	}
	ds := sink.got()
	if len(ds) < 2 || ds[0].Attempt == ds[len(ds)-1].Attempt {
		t.Fatalf("deltas %+v, want both tries streamed, each under its attempt", ds)
	}
	log := ev.all()
	if last := log[len(log)-1]; last != "record "+domain.FailedAnswerText {
		t.Fatalf("events %q: the failure answer must come after the deltas", log)
	}
}

// Streaming never fails an answer nor holds it beyond DeltaTimeout: a
// publisher that never acknowledges costs at most that, one that fails
// gets no more deltas of the attempt.
func TestAnswerStreamingNeverHoldsTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		block     bool
		wantCalls int
	}{
		{name: "never acknowledges", block: true, wantCalls: 1},
		{name: "fails", wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &events{}
			sink := newDeltaSink(ev)
			sink.block, sink.fail = tc.block, !tc.block
			g := &scripted{tries: []script{{steps: []step{{chunk: "One.", after: func() { time.Sleep(20 * time.Millisecond) }}, {chunk: " Two."}, {chunk: " Three."}}}}}
			uc, key := streamingAnswer(t, g, sink, ev)
			uc.DeltaTimeout = 100 * time.Millisecond
			start := time.Now()
			a, err := uc.Execute(context.Background(), streamPrompt(t, key))
			if err != nil {
				t.Fatal(err)
			}
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("Execute took %s with a publisher that %s, want about DeltaTimeout (100 ms) at most", elapsed, tc.name)
			}
			if _, failed := a.Failure(); failed || a.Text != "One. Two. Three." {
				t.Fatalf("answer %q metadata %v", a.Text, a.Metadata)
			}
			sink.mu.Lock()
			calls := sink.calls
			sink.mu.Unlock()
			if calls != tc.wantCalls {
				t.Errorf("%d publish calls, want %d: a failed attempt stops streaming", calls, tc.wantCalls)
			}
		})
	}
}
