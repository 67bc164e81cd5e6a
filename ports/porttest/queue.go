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

// QueueHarness is one message queue under test, on a store no other test
// uses, with ways to write to that store behind the queue's back.
type QueueHarness struct {
	// Queue is a consumer-group member of a fresh group.
	Queue ports.MessageQueue
	// Publish stores messages on the topic of their type.
	Publish func(t *testing.T, msgs ...domain.Message)
	// Restart closes the current queue (as a graceful shutdown would) and
	// returns a new member of the same group on the same store.
	Restart func(t *testing.T) ports.MessageQueue
	// PublishRaw stores bytes that are not an envelope on typ's topic; nil
	// when the store cannot hold them.
	PublishRaw func(t *testing.T, typ domain.MessageType, key string, raw []byte)
	// Trim deletes typ's records below offset in every partition, as
	// retention does; nil when the store cannot.
	Trim func(t *testing.T, typ domain.MessageType, offset int64)
	// OtherGroup returns a member of another consumer group on the same
	// store, sharing the receipt key.
	OtherGroup func(t *testing.T) ports.MessageQueue
	// Peer returns another member of the queue's group (another replica),
	// joined and with the group settled; nil when a group has one member.
	Peer func(t *testing.T) ports.MessageQueue
}

// RunQueue runs the ports.MessageQueue contract.
func RunQueue(t *testing.T, newHarness func(t *testing.T) QueueHarness) {
	t.Run("concurrent callers get every message once, in order per partition", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const n = 300
		h.Publish(t, messages(domain.TypeQuery, n, 7)...)
		checkOnceInOrder(t, drain(t, h.Queue, domain.TypeQuery, n, 8), n)
	})

	t.Run("a message published while waiting ends the wait", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		warm(t, h.Queue, domain.TypeAnswer)
		go func() {
			time.Sleep(300 * time.Millisecond)
			h.Publish(t, messages(domain.TypeAnswer, 1, 1)...)
		}()
		start := time.Now()
		b := next(t, h.Queue, domain.TypeAnswer, 10, 10*time.Second)
		if len(b.Deliveries) != 1 {
			t.Fatalf("got %d messages, want 1", len(b.Deliveries))
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("the wait ended %s after it began; the message came after 300 ms", took)
		}
	})

	t.Run("an empty topic returns nothing after the wait", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		warm(t, h.Queue, domain.TypePrompt)
		start := time.Now()
		b := next(t, h.Queue, domain.TypePrompt, 10, 400*time.Millisecond)
		if len(b.Deliveries) != 0 {
			t.Fatalf("got %d messages from an empty topic", len(b.Deliveries))
		}
		if took := time.Since(start); took < 400*time.Millisecond || took > 3*time.Second {
			t.Fatalf("waited %s, want about 400ms", took)
		}
	})

	t.Run("leases hide a message until they expire; acknowledged ones never return", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Publish(t, messages(domain.TypeQuery, 2, 1)...)
		ctx := context.Background()
		first, err := h.Queue.Next(ctx, ports.NextRequest{Type: domain.TypeQuery, Limit: 1, Wait: 10 * time.Second, Lease: 700 * time.Millisecond})
		if err != nil || len(first.Deliveries) != 1 {
			t.Fatalf("Next = %d, %v", len(first.Deliveries), err)
		}
		second := next(t, h.Queue, domain.TypeQuery, 10, 10*time.Second)
		if len(second.Deliveries) != 1 || second.Deliveries[0].Offset == first.Deliveries[0].Offset {
			t.Fatalf("while leased, got %v; want only the other message", offsets(second.Deliveries))
		}
		if err := h.Queue.Ack(ctx, []string{second.Deliveries[0].Receipt}); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		again := next(t, h.Queue, domain.TypeQuery, 10, 10*time.Second)
		if len(again.Deliveries) != 1 || again.Deliveries[0].Message.MessageID != first.Deliveries[0].Message.MessageID {
			t.Fatalf("after the lease expired got %v, want the unacknowledged message again", ids(again.Deliveries))
		}
		if err := h.Queue.Ack(ctx, []string{first.Deliveries[0].Receipt}); err == nil {
			t.Fatal("the expired receipt was accepted")
		}
		if err := h.Queue.Ack(ctx, []string{again.Deliveries[0].Receipt}); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if b := next(t, h.Queue, domain.TypeQuery, 10, 1500*time.Millisecond); len(b.Deliveries) != 0 {
			t.Fatalf("acknowledged messages came back: %v", ids(b.Deliveries))
		}
	})

	t.Run("unknown receipts are refused", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		err := h.Queue.Ack(context.Background(), []string{"no-such-receipt"})
		var unknown *domain.UnknownReceiptsError
		if !errors.As(err, &unknown) || len(unknown.Receipts) != 1 {
			t.Fatalf("Ack(unknown) = %v, want *domain.UnknownReceiptsError", err)
		}
	})

	runReceiptChecks(t, newHarness)

	t.Run("a released message is served next", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Publish(t, messages(domain.TypeQuery, 3, 1)...)
		first := next(t, h.Queue, domain.TypeQuery, 1, 10*time.Second)
		if err := h.Queue.Release(context.Background(), []string{first.Deliveries[0].Receipt}); err != nil {
			t.Fatal(err)
		}
		again := next(t, h.Queue, domain.TypeQuery, 1, 10*time.Second)
		if again.Deliveries[0].Offset != first.Deliveries[0].Offset {
			t.Fatalf("after release got offset %d, want %d", again.Deliveries[0].Offset, first.Deliveries[0].Offset)
		}
	})

	t.Run("a restarted member resumes after what was acknowledged", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Publish(t, messages(domain.TypeQuery, 10, 1)...)
		got := drain(t, h.Queue, domain.TypeQuery, 6, 1)
		// Lease two more without acknowledging: they must come back.
		held := next(t, h.Queue, domain.TypeQuery, 2, 10*time.Second)
		if len(held.Deliveries) != 2 {
			t.Fatalf("leased %d, want 2", len(held.Deliveries))
		}
		q := h.Restart(t)
		rest := drain(t, q, domain.TypeQuery, 4, 1)
		checkOnceInOrder(t, append(got, rest...), 10)
	})

	t.Run("the first call after startup returns the backlog at once", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Publish(t, messages(domain.TypeQuery, 5, 1)...)
		q := h.Restart(t)
		b, err := q.Next(context.Background(), ports.NextRequest{Type: domain.TypeQuery, Limit: 1, Wait: 0, Lease: 30 * time.Second})
		if err != nil || len(b.Deliveries) != 1 {
			t.Fatalf("first Next with wait=0 = %d messages, %v; want 1", len(b.Deliveries), err)
		}
	})

	t.Run("browsing reads from the beginning and commits nothing", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Publish(t, messages(domain.TypeAnswer, 4, 1)...)
		consumed := drain(t, h.Queue, domain.TypeAnswer, 2, 1)
		seen, err := h.Queue.Browse(context.Background(), domain.TypeAnswer, 10)
		if err != nil || len(seen) != 4 {
			t.Fatalf("Browse = %d, %v; want all 4", len(seen), err)
		}
		if seen[0].Offset != 0 || seen[0].Receipt != "" {
			t.Fatalf("Browse started at offset %d with receipt %q", seen[0].Offset, seen[0].Receipt)
		}
		rest := drain(t, h.Queue, domain.TypeAnswer, 2, 1)
		checkOnceInOrder(t, append(consumed, rest...), 4)
	})

	t.Run("poison records are delivered flagged, not skipped", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if h.PublishRaw == nil {
			t.Skip("this store holds only valid envelopes")
		}
		h.Publish(t, messages(domain.TypeQuery, 1, 1)...)
		h.PublishRaw(t, domain.TypeQuery, "session-0", []byte("\x00not json"))
		h.Publish(t, messages(domain.TypeQuery, 1, 1)...)
		poison := 0
		for _, d := range flat(drain(t, h.Queue, domain.TypeQuery, 3, 1)) {
			if d.Poison != "" {
				poison++
				if string(d.Raw) != "\x00not json" {
					t.Errorf("poison raw = %q", d.Raw)
				}
			}
		}
		if poison != 1 {
			t.Fatalf("%d poison deliveries, want 1", poison)
		}
	})

	t.Run("retention gaps are reported", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if h.Trim == nil {
			t.Skip("this store has no retention")
		}
		h.Publish(t, messages(domain.TypeQuery, 2, 1)...)
		drain(t, h.Queue, domain.TypeQuery, 1, 1)
		h.Publish(t, messages(domain.TypeQuery, 4, 1)...)
		h.Trim(t, domain.TypeQuery, 4)
		q := h.Restart(t)
		var gaps []domain.Gap
		var got []domain.Delivery
		deadline := time.Now().Add(20 * time.Second)
		for len(got) < 2 && time.Now().Before(deadline) {
			b := next(t, q, domain.TypeQuery, 10, time.Second)
			gaps = append(gaps, b.Gaps...)
			got = append(got, b.Deliveries...)
			ack(t, q, b.Deliveries)
		}
		if len(gaps) != 1 || gaps[0].From != 1 || gaps[0].To != 3 {
			t.Fatalf("gaps = %+v, want one from 1 to 3", gaps)
		}
		if len(got) != 2 || got[0].Offset != 4 {
			t.Fatalf("after the gap got offsets %v, want [4 5]", offsets(got))
		}
	})
}

// messages returns n valid messages of typ for one session (so they share
// a partition) when sessions is 1, or spread over sessions.
func messages(typ domain.MessageType, n, sessions int) []domain.Message {
	out := make([]domain.Message, n)
	for i := range out {
		out[i] = sample(typ, fmt.Sprintf("session-%d", i%sessions), i)
	}
	return out
}

func next(t *testing.T, q ports.MessageQueue, typ domain.MessageType, limit int, wait time.Duration) ports.Batch {
	t.Helper()
	b, err := q.Next(context.Background(), ports.NextRequest{Type: typ, Limit: limit, Wait: wait, Lease: 30 * time.Second})
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return b
}

func ack(t *testing.T, q ports.MessageQueue, ds []domain.Delivery) {
	t.Helper()
	if len(ds) == 0 {
		return
	}
	rs := make([]string, len(ds))
	for i, d := range ds {
		rs[i] = d.Receipt
	}
	if err := q.Ack(context.Background(), rs); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

// warm makes one call so that the queue has joined its group before a
// timing-sensitive test starts.
func warm(t *testing.T, q ports.MessageQueue, typ domain.MessageType) {
	t.Helper()
	next(t, q, typ, 1, 100*time.Millisecond)
}

// drain takes want messages with callers goroutines, acknowledging each
// batch, and fails if they do not arrive within 30 s. It returns what each
// caller got, in the order it got it.
func drain(t *testing.T, q ports.MessageQueue, typ domain.MessageType, want, callers int) [][]domain.Delivery {
	t.Helper()
	var mu sync.Mutex
	total := 0
	got := make([][]domain.Delivery, callers)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for ctx.Err() == nil {
				mu.Lock()
				done := total >= want
				mu.Unlock()
				if done {
					return
				}
				b, err := q.Next(ctx, ports.NextRequest{Type: typ, Limit: 1 + c%3, Wait: 200 * time.Millisecond, Lease: 30 * time.Second})
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("Next: %v", err)
					}
					return
				}
				mu.Lock()
				got[c] = append(got[c], b.Deliveries...)
				total += len(b.Deliveries)
				mu.Unlock()
				rs := make([]string, len(b.Deliveries))
				for i, d := range b.Deliveries {
					rs[i] = d.Receipt
				}
				if len(rs) > 0 {
					if err := q.Ack(ctx, rs); err != nil {
						t.Errorf("Ack: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if total < want {
		t.Fatalf("drained %d messages within 30 s, want %d", total, want)
	}
	return got
}

func flat(seqs [][]domain.Delivery) []domain.Delivery {
	var out []domain.Delivery
	for _, s := range seqs {
		out = append(out, s...)
	}
	return out
}

// checkOnceInOrder asserts every one of n published messages was delivered
// exactly once, and that each caller saw offsets rise within each partition.
func checkOnceInOrder(t *testing.T, seqs [][]domain.Delivery, n int) {
	t.Helper()
	seen := map[string]int{}
	for c, seq := range seqs {
		last := map[int32]int64{}
		for _, d := range seq {
			seen[d.Message.MessageID]++
			if prev, ok := last[d.Partition]; ok && d.Offset <= prev {
				t.Errorf("caller %d: partition %d served offset %d after %d", c, d.Partition, d.Offset, prev)
			}
			last[d.Partition] = d.Offset
		}
	}
	for id, c := range seen {
		if c > 1 {
			t.Errorf("message %s delivered %d times", id, c)
		}
	}
	if len(seen) != n {
		t.Errorf("delivered %d distinct messages, want %d", len(seen), n)
	}
}

func offsets(ds []domain.Delivery) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.Offset
	}
	return out
}

func ids(ds []domain.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Message.MessageID
	}
	return out
}
