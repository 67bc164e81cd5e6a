package porttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// SessionHarness is one session store under test, on a store no other test
// uses, with the bounds it was built with.
type SessionHarness struct {
	Store ports.SessionStore
	// MaxTurns is the store's bound of recent turns; at least 200 lets the
	// concurrency case check the exact set of turns written.
	MaxTurns int
	// TTL is the store's time to live of an untouched session.
	TTL time.Duration
	// Advance moves the store's clock forward by d. Nil means the store runs
	// on real time: the suite sleeps instead, so keep TTL short (~1.5 s).
	Advance func(d time.Duration)
}

func (h SessionHarness) wait(d time.Duration) {
	if h.Advance != nil {
		h.Advance(d)
		return
	}
	time.Sleep(d)
}

// RunSessionStore runs the ports.SessionStore contract.
func RunSessionStore(t *testing.T, newStore func(t *testing.T) SessionHarness) {
	newHarness := func(t *testing.T) SessionHarness {
		t.Helper()
		h := newStore(t)
		if h.Store == nil || h.MaxTurns < 1 || h.TTL <= 0 {
			t.Fatalf("harness needs a Store, MaxTurns >= 1 and TTL > 0; got MaxTurns %d, TTL %s", h.MaxTurns, h.TTL)
		}
		return h
	}

	t.Run("open creates the session for the user", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		if owner := mustOpen(t, h.Store, sid, "alice"); owner != "alice" {
			t.Fatalf("owner %q, want alice", owner)
		}
		if got := mustRecent(t, h.Store, sid, 10); len(got) != 0 {
			t.Fatalf("a new session has %d turns, want 0", len(got))
		}
		if err := h.Store.Append(ctx, sid, turn(1, "m1")); err != nil {
			t.Fatalf("append to the opened session: %v", err)
		}
	})

	t.Run("open by the owner again returns the owner and keeps the turns", func(t *testing.T) {
		t.Parallel()
		h, sid := newHarness(t), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		if owner := mustOpen(t, h.Store, sid, "alice"); owner != "alice" {
			t.Fatalf("owner %q, want alice", owner)
		}
		checkIDs(t, mustRecent(t, h.Store, sid, 10), "m1")
	})

	t.Run("open by another user is forbidden and changes nothing", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		if _, err := h.Store.Open(ctx, sid, "mallory"); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("open by another user: %v, want ErrForbidden", err)
		}
		if owner := mustOpen(t, h.Store, sid, "alice"); owner != "alice" {
			t.Fatalf("after a forbidden open the owner is %q, want alice", owner)
		}
		checkIDs(t, mustRecent(t, h.Store, sid, 10), "m1")
	})

	t.Run("concurrent opens by different users leave one owner", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		const users = 8
		owners := make([]string, users)
		errs := make([]error, users)
		var wg sync.WaitGroup
		for i := range users {
			wg.Go(func() { owners[i], errs[i] = h.Store.Open(ctx, sid, fmt.Sprintf("user-%d", i)) })
		}
		wg.Wait()
		winner := ""
		for i, err := range errs {
			switch {
			case err == nil && winner == "":
				winner = owners[i]
			case err == nil:
				t.Fatalf("both %s and %s were told they own the session", winner, owners[i])
			case !errors.Is(err, domain.ErrForbidden):
				t.Fatalf("user-%d: %v, want nil or ErrForbidden", i, err)
			}
		}
		if winner == "" {
			t.Fatal("no user got the session")
		}
		if owner := mustOpen(t, h.Store, sid, winner); owner != winner {
			t.Fatalf("owner %q, want %q", owner, winner)
		}
	})

	t.Run("owner reads without creating, changing or renewing", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		if _, err := h.Store.Owner(ctx, sid); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("owner of a missing session: %v, want ErrNotFound", err)
		}
		// Asking did not squat the id: the first to open it owns it.
		if owner := mustOpen(t, h.Store, sid, "bob"); owner != "bob" {
			t.Fatalf("after Owner asked, open gave owner %q, want bob", owner)
		}
		if owner, err := h.Store.Owner(ctx, sid); err != nil || owner != "bob" {
			t.Fatalf("owner = %q, %v; want bob", owner, err)
		}
		// Owner does not renew: asked often, the session still expires.
		step := h.TTL * 6 / 10
		h.wait(step)
		_, _ = h.Store.Owner(ctx, sid)
		h.wait(step)
		if _, err := h.Store.Owner(ctx, sid); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("owner after the TTL: %v, want ErrNotFound (Owner must not renew)", err)
		}
	})

	t.Run("append then recent returns every field, oldest first", func(t *testing.T) {
		t.Parallel()
		h, sid := newHarness(t), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		q := domain.Turn{Role: domain.RoleUser, MessageID: "q-1", Text: "How do I commit offsets?", At: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
		a := domain.Turn{
			Role: domain.RoleAssistant, MessageID: "a-1", Text: "Mark after processing [1]. ünïcødé ✓",
			Citations: []domain.Citation{
				{N: 1, Source: "consumer.md", Title: "Commits", Score: 0.83, Snippet: "commit marks"},
				{N: 2, Source: "faq.md", Title: "Offsets", Score: 0.5, Snippet: "\"quoted\"\n"},
			},
			At: time.Date(2026, 3, 1, 10, 0, 2, 0, time.FixedZone("CET", 3600)),
		}
		mustAppend(t, h.Store, sid, q)
		mustAppend(t, h.Store, sid, a)
		got := mustRecent(t, h.Store, sid, 10)
		if len(got) != 2 {
			t.Fatalf("got %d turns, want 2", len(got))
		}
		checkTurn(t, got[0], q)
		checkTurn(t, got[1], a)
	})

	t.Run("recent on a missing session is not found", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if _, err := h.Store.Recent(context.Background(), uniqueID("missing"), 10); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("recent: %v, want ErrNotFound", err)
		}
	})

	t.Run("append to a missing session is not found and creates nothing", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("missing")
		if err := h.Store.Append(ctx, sid, turn(1, "m1")); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("append: %v, want ErrNotFound", err)
		}
		if _, err := h.Store.Recent(ctx, sid, 10); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("recent after a failed append: %v, want ErrNotFound", err)
		}
		mustOpen(t, h.Store, sid, "alice")
		if got := mustRecent(t, h.Store, sid, 10); len(got) != 0 {
			t.Fatalf("a new session has %d turns after a failed append, want 0", len(got))
		}
	})

	t.Run("appending the same message id again records it once", func(t *testing.T) {
		t.Parallel()
		h, sid := newHarness(t), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		mustAppend(t, h.Store, sid, turn(2, "m2"))
		mustAppend(t, h.Store, sid, turn(3, "m3"))
		retry := turn(1, "m1")
		retry.Text = "a retry with other text"
		mustAppend(t, h.Store, sid, retry)
		got := mustRecent(t, h.Store, sid, 10)
		checkIDs(t, got, "m1", "m2", "m3")
		if got[0].Text != turn(1, "m1").Text {
			t.Fatalf("the first write wins: text %q", got[0].Text)
		}
	})

	t.Run("a session keeps only the most recent MaxTurns turns", func(t *testing.T) {
		t.Parallel()
		h, sid := newHarness(t), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		n := h.MaxTurns + 5
		var want []string
		for i := range n {
			id := fmt.Sprintf("m%04d", i)
			mustAppend(t, h.Store, sid, turn(i, id))
			if i >= 5 {
				want = append(want, id)
			}
		}
		checkIDs(t, mustRecent(t, h.Store, sid, n+10), want...)
	})

	t.Run("a redelivered turn is ignored after the window moved past it", func(t *testing.T) {
		t.Parallel()
		h, sid := newHarness(t), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		var want []string
		for i := range h.MaxTurns + 1 {
			id := fmt.Sprintf("m%04d", i)
			mustAppend(t, h.Store, sid, turn(i, id))
			if i >= 1 {
				want = append(want, id)
			}
		}
		mustAppend(t, h.Store, sid, turn(0, "m0000"))
		checkIDs(t, mustRecent(t, h.Store, sid, h.MaxTurns), want...)
	})

	t.Run("record opens, returns the history before the turn, and appends it once", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		got, err := h.Store.Record(ctx, sid, "alice", turn(0, "m0"), 10)
		if err != nil || len(got) != 0 {
			t.Fatalf("record in a new session: %d turns, %v; want none, nil", len(got), err)
		}
		if owner := mustOpen(t, h.Store, sid, "alice"); owner != "alice" {
			t.Fatalf("record created the session for %q, want alice", owner)
		}
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		got, err = h.Store.Record(ctx, sid, "alice", turn(2, "m2"), 10)
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, got, "m0", "m1")
		checkTurn(t, got[1], turn(1, "m1"))
		// A redelivery: the history now holds the turn; nothing is added.
		got, err = h.Store.Record(ctx, sid, "alice", turn(2, "m2"), 2)
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, got, "m1", "m2")
		checkIDs(t, mustRecent(t, h.Store, sid, 10), "m0", "m1", "m2")
	})

	t.Run("record in another user's session is forbidden and changes nothing", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		mustAppend(t, h.Store, sid, turn(0, "m0"))
		if _, err := h.Store.Record(ctx, sid, "mallory", turn(1, "m1"), 10); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("record by another user: %v, want ErrForbidden", err)
		}
		checkIDs(t, mustRecent(t, h.Store, sid, 10), "m0")
	})

	t.Run("turn finds a kept turn by message id, and only a kept one", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		if _, err := h.Store.Turn(ctx, sid, "m1"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("turn of a missing session: %v, want ErrNotFound", err)
		}
		mustOpen(t, h.Store, sid, "alice")
		if _, err := h.Store.Turn(ctx, sid, "m1"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("turn of an empty session: %v, want ErrNotFound", err)
		}
		a := domain.Turn{Role: domain.RoleAssistant, MessageID: "a-1", Text: "answer [1]",
			Citations: []domain.Citation{{N: 1, Source: "s.md", Title: "T", Score: 0.5, Snippet: "snip"}}, At: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
		mustAppend(t, h.Store, sid, turn(0, "m0"))
		mustAppend(t, h.Store, sid, a)
		mustAppend(t, h.Store, sid, turn(0, "m0")) // a redelivery: no new turn
		mustAppend(t, h.Store, sid, turn(2, "m2"))
		for _, want := range []domain.Turn{turn(0, "m0"), a, turn(2, "m2")} {
			got, err := h.Store.Turn(ctx, sid, want.MessageID)
			if err != nil {
				t.Fatalf("turn %s: %v", want.MessageID, err)
			}
			checkTurn(t, got, want)
		}
		if _, err := h.Store.Turn(ctx, sid, "never"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("turn never appended: %v, want ErrNotFound", err)
		}
		// Pushed out of the window: gone, though the id is still remembered.
		for i := range h.MaxTurns {
			mustAppend(t, h.Store, sid, turn(i+10, fmt.Sprintf("n%04d", i)))
		}
		if _, err := h.Store.Turn(ctx, sid, "a-1"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("turn trimmed from the window: %v, want ErrNotFound", err)
		}
		last := fmt.Sprintf("n%04d", h.MaxTurns-1)
		if got, err := h.Store.Turn(ctx, sid, last); err != nil || got.MessageID != last {
			t.Fatalf("newest turn: %+v, %v", got, err)
		}
	})

	t.Run("recent with a small limit returns the newest turns, oldest first", func(t *testing.T) {
		t.Parallel()
		h, sid := newHarness(t), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		for i := range 5 {
			mustAppend(t, h.Store, sid, turn(i, fmt.Sprintf("m%d", i)))
		}
		checkIDs(t, mustRecent(t, h.Store, sid, 2), "m3", "m4")
		checkIDs(t, mustRecent(t, h.Store, sid, 1), "m4")
	})

	t.Run("an untouched session expires after its TTL", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		h.wait(h.TTL + h.TTL/10 + 50*time.Millisecond)
		if _, err := h.Store.Recent(ctx, sid, 10); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("recent after the TTL: %v, want ErrNotFound", err)
		}
		if err := h.Store.Append(ctx, sid, turn(2, "m2")); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("append after the TTL: %v, want ErrNotFound", err)
		}
		if owner := mustOpen(t, h.Store, sid, "bob"); owner != "bob" {
			t.Fatalf("open of an expired session by another user: owner %q, want bob", owner)
		}
		if got := mustRecent(t, h.Store, sid, 10); len(got) != 0 {
			t.Fatalf("the new session inherited %d turns of the expired one", len(got))
		}
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		checkIDs(t, mustRecent(t, h.Store, sid, 10), "m1")
	})

	t.Run("every call renews the TTL", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		step := h.TTL * 6 / 10
		mustOpen(t, h.Store, sid, "alice")
		h.wait(step)
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		h.wait(step)
		checkIDs(t, mustRecent(t, h.Store, sid, 10), "m1")
		h.wait(step)
		mustOpen(t, h.Store, sid, "alice")
		h.wait(step)
		checkIDs(t, mustRecent(t, h.Store, sid, 10), "m1")
		h.wait(h.TTL + h.TTL/10 + 50*time.Millisecond)
		if _, err := h.Store.Recent(ctx, sid, 10); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("recent after the TTL: %v, want ErrNotFound", err)
		}
	})

	t.Run("delete removes the session and tolerates a missing one", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		if err := h.Store.Delete(ctx, sid); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := h.Store.Recent(ctx, sid, 10); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("recent after delete: %v, want ErrNotFound", err)
		}
		if _, err := h.Store.Owner(ctx, sid); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("owner after delete: %v, want ErrNotFound", err)
		}
		if err := h.Store.Append(ctx, sid, turn(2, "m2")); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("append after delete: %v, want ErrNotFound", err)
		}
		if err := h.Store.Delete(ctx, sid); err != nil {
			t.Fatalf("delete again: %v", err)
		}
		if err := h.Store.Delete(ctx, uniqueID("never")); err != nil {
			t.Fatalf("delete of a session that never existed: %v", err)
		}
		if owner := mustOpen(t, h.Store, sid, "bob"); owner != "bob" {
			t.Fatalf("open after delete: owner %q, want bob", owner)
		}
		if got := mustRecent(t, h.Store, sid, 10); len(got) != 0 {
			t.Fatalf("the new session inherited %d turns of the deleted one", len(got))
		}
		mustAppend(t, h.Store, sid, turn(1, "m1"))
		checkIDs(t, mustRecent(t, h.Store, sid, 10), "m1")
	})

	t.Run("concurrent writers record each message id once", func(t *testing.T) {
		t.Parallel()
		h, ctx, sid := newHarness(t), context.Background(), uniqueID("s")
		mustOpen(t, h.Store, sid, "alice")
		const writers, each = 8, 25
		id := func(w, i int) string { return fmt.Sprintf("w%d-%02d", w, i) }
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					// Each writer also redelivers its neighbour's turns, racing it.
					for _, tr := range []domain.Turn{turn(i, id(w, i)), turn(i, id((w+1)%writers, i))} {
						if err := h.Store.Append(ctx, sid, tr); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("append: %v", err)
		}
		got := mustRecent(t, h.Store, sid, writers*each+10)
		if want := min(writers*each, h.MaxTurns); len(got) != want {
			t.Fatalf("got %d turns, want %d", len(got), want)
		}
		seen := map[string]bool{}
		last := map[int]int{} // per writer, the last index seen: a writer's own turns stay in order
		for _, tr := range got {
			var w, i int
			if _, err := fmt.Sscanf(tr.MessageID, "w%d-%d", &w, &i); err != nil || w >= writers || i >= each {
				t.Fatalf("unexpected turn %q", tr.MessageID)
			}
			if seen[tr.MessageID] {
				t.Fatalf("turn %s recorded twice", tr.MessageID)
			}
			seen[tr.MessageID] = true
			if prev, ok := last[w]; ok && i < prev {
				t.Fatalf("writer %d's turn %d came after its turn %d", w, i, prev)
			}
			last[w] = i
		}
	})
}

var idCounter struct {
	sync.Mutex
	n int
}

// uniqueID returns an id no other test, run or process uses.
func uniqueID(tag string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	idCounter.Lock()
	defer idCounter.Unlock()
	idCounter.n++
	return fmt.Sprintf("%s-%s-%d", tag, hex.EncodeToString(b[:]), idCounter.n)
}

func turn(i int, messageID string) domain.Turn {
	role := domain.RoleUser
	if i%2 == 1 {
		role = domain.RoleAssistant
	}
	return domain.Turn{
		Role: role, MessageID: messageID, Text: "turn " + messageID,
		At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Second),
	}
}

func mustOpen(t *testing.T, s ports.SessionStore, sid, user string) string {
	t.Helper()
	owner, err := s.Open(context.Background(), sid, user)
	if err != nil {
		t.Fatalf("open %s by %s: %v", sid, user, err)
	}
	return owner
}

func mustAppend(t *testing.T, s ports.SessionStore, sid string, tr domain.Turn) {
	t.Helper()
	if err := s.Append(context.Background(), sid, tr); err != nil {
		t.Fatalf("append %s to %s: %v", tr.MessageID, sid, err)
	}
}

func mustRecent(t *testing.T, s ports.SessionStore, sid string, limit int) []domain.Turn {
	t.Helper()
	got, err := s.Recent(context.Background(), sid, limit)
	if err != nil {
		t.Fatalf("recent %s: %v", sid, err)
	}
	return got
}

func checkIDs(t *testing.T, got []domain.Turn, want ...string) {
	t.Helper()
	ids := make([]string, len(got))
	for i, tr := range got {
		ids[i] = tr.MessageID
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("turns %v, want %v", ids, want)
	}
}

// checkTurn compares every field; At to the second, in any time zone.
func checkTurn(t *testing.T, got, want domain.Turn) {
	t.Helper()
	if got.Role != want.Role || got.MessageID != want.MessageID || got.Text != want.Text {
		t.Fatalf("turn %+v, want %+v", got, want)
	}
	if !got.At.Truncate(time.Second).Equal(want.At.Truncate(time.Second)) {
		t.Fatalf("turn %s at %s, want %s", got.MessageID, got.At, want.At)
	}
	if !slices.Equal(got.Citations, want.Citations) {
		t.Fatalf("turn %s citations %+v, want %+v", got.MessageID, got.Citations, want.Citations)
	}
}
