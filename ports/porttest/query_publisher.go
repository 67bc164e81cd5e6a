package porttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// QueryPublisherHarness is one query publisher under test, in front of a
// store no other test uses, with a way to read that store behind its back.
type QueryPublisherHarness struct {
	Publisher ports.QueryPublisher
	// Read returns the messages stored on typ's topic, waiting until at
	// least want are there (or failing the test), in offset order within
	// each partition. With want 0 it returns what is there after a moment.
	Read func(t *testing.T, typ domain.MessageType, want int) []Stored
	// Down returns a publisher of the same kind whose store does not
	// answer; nil when the harness cannot take the store down.
	Down func(t *testing.T) ports.QueryPublisher
}

// RunQueryPublisher runs the ports.QueryPublisher contract.
func RunQueryPublisher(t *testing.T, newHarness func(t *testing.T) QueryPublisherHarness) {
	t.Run("a published query is stored with its id, session, user and text, keyed by session", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		q := sample(domain.TypeQuery, "sess-stored", 0)
		q.Text = "How do I run kchat? ünïcødé ✓ \"quoted\"\n<b>&</b>"
		if err := h.Publisher.PublishQuery(context.Background(), q); err != nil {
			t.Fatalf("PublishQuery = %v", err)
		}
		got := h.Read(t, domain.TypeQuery, 1)
		if len(got) != 1 {
			t.Fatalf("the query topic holds %d messages, want 1", len(got))
		}
		s := got[0]
		if s.Key != q.SessionID {
			t.Errorf("key = %q, want the session id %q", s.Key, q.SessionID)
		}
		m := s.Message
		if m.MessageID != q.MessageID || m.SessionID != q.SessionID || m.UserID != q.UserID || m.Type != domain.TypeQuery || m.Text != q.Text {
			t.Fatalf("stored %+v, want the id, session, user, type and text of %+v", m, q)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("the stored query is not valid: %v", err)
		}
	})

	t.Run("a session's queries are stored in the order they were published", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const n = 10
		want := make([]string, n)
		for i := range n {
			q := sample(domain.TypeQuery, "sess-ordered", i)
			want[i] = q.MessageID
			if err := h.Publisher.PublishQuery(context.Background(), q); err != nil {
				t.Fatalf("PublishQuery #%d = %v", i, err)
			}
		}
		got := h.Read(t, domain.TypeQuery, n)
		if len(got) != n {
			t.Fatalf("the query topic holds %d messages, want %d", len(got), n)
		}
		for i, s := range got {
			if s.Position.Partition != got[0].Position.Partition {
				t.Fatalf("the session's queries span partitions %d and %d", got[0].Position.Partition, s.Position.Partition)
			}
			if s.Message.MessageID != want[i] {
				t.Fatalf("stored #%d is %s (%q), want %s: published in order, each after the last was stored", i, s.Message.MessageID, s.Message.Text, want[i])
			}
		}
	})

	t.Run("a message that is not a query is refused and stored nowhere", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		for _, typ := range []domain.MessageType{domain.TypePrompt, domain.TypeAnswer} {
			if err := h.Publisher.PublishQuery(context.Background(), sample(typ, "sess-refused", 0)); err == nil {
				t.Errorf("PublishQuery(%s) succeeded, want it refused", typ)
			}
		}
		marker := sample(domain.TypeQuery, "sess-refused", 1)
		if err := h.Publisher.PublishQuery(context.Background(), marker); err != nil {
			t.Fatalf("PublishQuery = %v", err)
		}
		if got := h.Read(t, domain.TypeQuery, 1); len(got) != 1 || got[0].Message.MessageID != marker.MessageID {
			t.Fatalf("the query topic holds %v, want only the query %s", storedIDs(got), marker.MessageID)
		}
		for _, typ := range []domain.MessageType{domain.TypePrompt, domain.TypeAnswer} {
			if got := h.Read(t, typ, 0); len(got) != 0 {
				t.Fatalf("the %s topic holds %v, want nothing", typ, storedIDs(got))
			}
		}
	})

	t.Run("concurrent publishes all land, each once", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const writers, each = 8, 15
		want := map[string]bool{}
		qs := make([][]domain.Message, writers)
		for w := range writers {
			for i := range each {
				q := sample(domain.TypeQuery, fmt.Sprintf("sess-w%d", w), i)
				qs[w] = append(qs[w], q)
				want[q.MessageID] = true
			}
		}
		errs := make(chan error, writers*each)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for _, q := range qs[w] {
					if err := h.Publisher.PublishQuery(context.Background(), q); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("PublishQuery = %v", err)
		}
		got := h.Read(t, domain.TypeQuery, writers*each)
		seen := map[string]bool{}
		for _, s := range got {
			id := s.Message.MessageID
			switch {
			case seen[id]:
				t.Fatalf("query %s stored twice", id)
			case !want[id]:
				t.Fatalf("query %s stored, but never published", id)
			}
			seen[id] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("stored %d distinct queries, want %d", len(seen), len(want))
		}
	})

	t.Run("a store that does not answer is unavailable", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if h.Down == nil {
			t.Skip("the harness cannot take this store down")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := h.Down(t).PublishQuery(ctx, sample(domain.TypeQuery, "sess-down", 0))
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("PublishQuery to a store that does not answer = %v, want domain.ErrUnavailable", err)
		}
		if ctx.Err() != nil {
			t.Fatal("PublishQuery took the caller's whole 30s: its own bound did not apply")
		}
	})
}

func storedIDs(got []Stored) []string {
	ids := make([]string, len(got))
	for i, s := range got {
		ids[i] = s.Message.MessageID
	}
	return ids
}
