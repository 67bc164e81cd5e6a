package porttest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// AnswerFeedHarness is one running answer feed under test, on a store no
// other test uses, with a way to commit messages to that store as the
// pipeline does.
type AnswerFeedHarness struct {
	// Feed is running until the test ends.
	Feed ports.AnswerFeed
	// Commit stores msgs on the topics of their types, in order, and
	// returns once they are committed.
	Commit func(t *testing.T, msgs ...domain.Message)
	// Start starts another feed on the same store, running until the test
	// ends: a gateway replica that comes up later.
	Start func(t *testing.T) ports.AnswerFeed
	// Reach is how long before it started a feed may still deliver an
	// answer committed then (the Kafka feed starts at a timestamp a second
	// back); the suite waits it out before checking that a new feed does
	// not replay older answers.
	Reach time.Duration
}

// feedWait bounds how long the suite waits for an answer to arrive.
const feedWait = 20 * time.Second

// RunAnswerFeed runs the ports.AnswerFeed contract.
func RunAnswerFeed(t *testing.T, newFeed func(t *testing.T) AnswerFeedHarness) {
	newHarness := func(t *testing.T) AnswerFeedHarness {
		t.Helper()
		h := newFeed(t)
		settle(t, h.Feed, h.Commit)
		return h
	}

	t.Run("an answer committed as a feed starts reaches its subscriber", func(t *testing.T) {
		t.Parallel()
		// A feed finding where to start reading is at its weakest: fresh
		// feeds on quiet stores, subscribed at once and sent an answer
		// right away, while they are finding it.
		for i := range 5 {
			t.Run(fmt.Sprintf("feed %d", i), func(t *testing.T) {
				t.Parallel()
				h := newFeed(t)
				got := subscribe(t, h.Feed)
				answer := sample(domain.TypeAnswer, "sess-start", i)
				h.Commit(t, answer)
				checkPerSession(t, got.await(t, 1), []domain.Message{answer})
			})
		}
	})

	t.Run("every answer committed after subscribing arrives once, in order per session", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		got := subscribe(t, h.Feed)
		const sessions, each = 5, 12
		var want []domain.Message
		for i := range each {
			for s := range sessions { // interleaved, as sessions answer at once
				want = append(want, sample(domain.TypeAnswer, fmt.Sprintf("sess-%d", s), i))
			}
		}
		h.Commit(t, want...)
		msgs := got.await(t, len(want))
		checkPerSession(t, msgs, want)
		byID := map[string]domain.Message{}
		for _, m := range msgs {
			byID[m.MessageID] = m
		}
		assertSameMessage(t, byID[want[0].MessageID], want[0])
	})

	t.Run("several subscribers each get every answer", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		subs := make([]*received, 3)
		for i := range subs {
			subs[i] = subscribe(t, h.Feed)
		}
		var want []domain.Message
		for i := range 20 {
			want = append(want, sample(domain.TypeAnswer, fmt.Sprintf("sess-%d", i%3), i))
		}
		h.Commit(t, want...)
		for i, sub := range subs {
			t.Run(fmt.Sprintf("subscriber %d", i), func(t *testing.T) {
				checkPerSession(t, sub.await(t, len(want)), want)
			})
		}
	})

	t.Run("only answers arrive", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		got := subscribe(t, h.Feed)
		answer := sample(domain.TypeAnswer, "sess-types", 2)
		h.Commit(t, sample(domain.TypeQuery, "sess-types", 0), sample(domain.TypePrompt, "sess-types", 1), answer)
		checkPerSession(t, got.await(t, 1), []domain.Message{answer})
	})

	t.Run("a subscriber gets nothing committed before it subscribed", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		early := subscribe(t, h.Feed)
		before := sample(domain.TypeAnswer, "sess-late", 0)
		h.Commit(t, before)
		early.await(t, 1) // the feed has handed it out: it is past
		late := subscribe(t, h.Feed)
		after := sample(domain.TypeAnswer, "sess-late", 1)
		h.Commit(t, after)
		// One session, one order: had the late subscriber been handed the
		// earlier answer, it would have come first.
		checkPerSession(t, late.await(t, 1), []domain.Message{after})
	})

	t.Run("a feed started later does not replay older answers", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		var old []domain.Message
		for i := range 5 {
			old = append(old, sample(domain.TypeAnswer, "sess-replay", i))
		}
		h.Commit(t, old...)
		time.Sleep(h.Reach + 500*time.Millisecond)
		later := h.Start(t)
		settle(t, later, h.Commit)
		got := subscribe(t, later)
		after := sample(domain.TypeAnswer, "sess-replay", 5)
		h.Commit(t, after)
		checkPerSession(t, got.await(t, 1), []domain.Message{after})
	})

	t.Run("fn is not called once the subscription's ctx ended", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		witness := subscribe(t, h.Feed)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var (
			mu        sync.Mutex
			cancelled bool
			late      []string
		)
		// fn ends its own subscription at the first answer, inside the
		// window where the rest of the batch is being handed out.
		if err := h.Feed.Subscribe(ctx, func(m domain.Message) {
			mu.Lock()
			defer mu.Unlock()
			if cancelled {
				late = append(late, m.MessageID)
				return
			}
			cancelled = true
			cancel()
		}); err != nil {
			t.Fatalf("Subscribe = %v", err)
		}
		var want []domain.Message
		for i := range 10 {
			want = append(want, sample(domain.TypeAnswer, "sess-cancel", i))
		}
		h.Commit(t, want...)
		witness.await(t, len(want))
		// And answers committed well after the end do not arrive either.
		after := sample(domain.TypeAnswer, "sess-cancel", 10)
		h.Commit(t, after)
		witness.await(t, len(want)+1)
		mu.Lock()
		defer mu.Unlock()
		if !cancelled {
			t.Fatal("fn never got an answer")
		}
		if len(late) > 0 {
			t.Fatalf("fn got %d answers after its ctx ended: %v", len(late), late)
		}
	})

	t.Run("subscribers coming and going do not disturb the others", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		witness := subscribe(t, h.Feed)
		var want []domain.Message
		for i := range 60 {
			want = append(want, sample(domain.TypeAnswer, fmt.Sprintf("sess-%d", i%4), i))
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithCancel(context.Background())
					if err := h.Feed.Subscribe(ctx, func(domain.Message) {}); err != nil {
						t.Errorf("Subscribe = %v", err)
					}
					time.Sleep(time.Millisecond)
					cancel()
				}
			})
		}
		for i := 0; i < len(want); i += 10 {
			h.Commit(t, want[i:i+10]...)
		}
		checkPerSession(t, witness.await(t, len(want)), want)
		close(stop)
		wg.Wait()
	})
}

// settle waits until feed has delivered an answer, committing another
// while none comes, so that a case starts with the feed under way: a feed
// that loses what is committed as it starts fails its own case above, not
// every case. The answers it commits are of a session no case uses.
func settle(t *testing.T, feed ports.AnswerFeed, commit func(t *testing.T, msgs ...domain.Message)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	arrived := make(chan struct{}, 1)
	if err := feed.Subscribe(ctx, func(domain.Message) {
		select {
		case arrived <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	deadline := time.After(feedWait)
	for i := 0; ; i++ {
		commit(t, sample(domain.TypeAnswer, "sess-settle", i))
		select {
		case <-arrived:
			return
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatalf("the feed delivered none of %d answers within %s", i+1, feedWait)
		}
	}
}

// received collects what a subscription got.
type received struct {
	mu   sync.Mutex
	msgs []domain.Message
}

// subscribe subscribes until the test ends and collects.
func subscribe(t *testing.T, f ports.AnswerFeed) *received {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &received{}
	if err := f.Subscribe(ctx, func(m domain.Message) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.msgs = append(r.msgs, m)
	}); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	return r
}

// await waits until n messages arrived (failing the test if they do not),
// then a moment longer for any extra, and returns all of them.
func (r *received) await(t *testing.T, n int) []domain.Message {
	t.Helper()
	deadline := time.Now().Add(feedWait)
	for {
		r.mu.Lock()
		got := len(r.msgs)
		r.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d answers arrived within %s, want %d", got, feedWait, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// checkPerSession checks that got holds exactly want, each once, and that
// each session's answers came in the order of want.
func checkPerSession(t *testing.T, got, want []domain.Message) {
	t.Helper()
	order := func(msgs []domain.Message) map[string][]string {
		out := map[string][]string{}
		for _, m := range msgs {
			out[m.SessionID] = append(out[m.SessionID], m.MessageID)
		}
		return out
	}
	gotBy, wantBy := order(got), order(want)
	for s, ids := range gotBy {
		if !slices.Equal(ids, wantBy[s]) {
			t.Fatalf("session %s got answers %v, want %v (each once, in commit order)", s, ids, wantBy[s])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d answers, want %d", len(got), len(want))
	}
}
