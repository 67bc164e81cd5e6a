package porttest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// runReceiptChecks attacks acknowledgement where it is weakest: receipts
// altered by one character, with their type swapped, taken to another
// consumer group, or acknowledged on another replica after they expired or
// were acknowledged. Each must be refused by name and change nothing.
func runReceiptChecks(t *testing.T, newHarness func(t *testing.T) QueueHarness) {
	t.Run("a receipt altered anywhere is refused and the lease stays intact", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Publish(t, messages(domain.TypeQuery, 1, 1)...)
		d := leaseOne(t, h.Queue, domain.TypeQuery, 30*time.Second)
		var forged []string
		for i := range len(d.Receipt) {
			forged = append(forged, d.Receipt[:i]+string(otherChar(d.Receipt[i]))+d.Receipt[i+1:])
		}
		forged = append(forged, d.Receipt+"0", d.Receipt[:len(d.Receipt)-1])
		wantUnknown(t, h.Queue.Ack(context.Background(), forged), forged)
		if err := h.Queue.Ack(context.Background(), []string{d.Receipt}); err != nil {
			t.Fatalf("the genuine receipt after forged ones: %v", err)
		}
	})

	t.Run("a receipt with its type swapped is refused", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Publish(t, messages(domain.TypeQuery, 1, 1)...)
		h.Publish(t, messages(domain.TypeAnswer, 1, 1)...)
		d := leaseOne(t, h.Queue, domain.TypeQuery, 30*time.Second)
		leaseOne(t, h.Queue, domain.TypeAnswer, 30*time.Second) // so the answer topic holds a lease too
		if !strings.Contains(d.Receipt, string(domain.TypeQuery)) {
			t.Skip("this queue's receipts do not name their type")
		}
		var swapped []string
		for _, typ := range []domain.MessageType{domain.TypePrompt, domain.TypeAnswer} {
			swapped = append(swapped, strings.Replace(d.Receipt, string(domain.TypeQuery), string(typ), 1))
		}
		wantUnknown(t, h.Queue.Ack(context.Background(), swapped), swapped)
		if err := h.Queue.Ack(context.Background(), []string{d.Receipt}); err != nil {
			t.Fatalf("the genuine receipt after swapped ones: %v", err)
		}
	})

	t.Run("another group's receipt is refused there and applied nowhere", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		other := h.OtherGroup(t)
		h.Publish(t, messages(domain.TypeQuery, 1, 1)...)
		d := leaseOne(t, h.Queue, domain.TypeQuery, 30*time.Second)
		wantUnknown(t, other.Ack(context.Background(), []string{d.Receipt}), []string{d.Receipt})
		// The other group has not consumed it, and here it is still leased.
		if o := leaseOne(t, other, domain.TypeQuery, 30*time.Second); o.Message.MessageID != d.Message.MessageID {
			t.Fatalf("the other group got %s, want %s", o.Message.MessageID, d.Message.MessageID)
		}
		if err := h.Queue.Ack(context.Background(), []string{d.Receipt}); err != nil {
			t.Fatalf("the receipt in its own group, after the other group refused it: %v", err)
		}
	})

	t.Run("another replica's receipt is acknowledged once; expired or acknowledged ones are refused", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if h.Peer == nil {
			t.Skip("a group has one member on this store")
		}
		members := []ports.MessageQueue{h.Queue, h.Peer(t)}
		ctx := context.Background()
		h.Publish(t, messages(domain.TypePrompt, 2, 1)...) // one session: one partition, one owner
		owner, short := leaseAny(t, members, domain.TypePrompt, 1500*time.Millisecond)
		long := leaseOne(t, members[owner], domain.TypePrompt, 30*time.Second)
		peer := members[1-owner]

		if err := peer.Ack(ctx, []string{long.Receipt}); err != nil {
			t.Fatalf("acknowledging on the other replica: %v", err)
		}
		wantUnknown(t, peer.Ack(ctx, []string{long.Receipt}), []string{long.Receipt})
		time.Sleep(2 * time.Second) // past the short lease
		wantUnknown(t, peer.Ack(ctx, []string{short.Receipt}), []string{short.Receipt})

		// The expired message comes back; the acknowledged one never does.
		again := leaseOne(t, members[owner], domain.TypePrompt, 30*time.Second)
		if again.Message.MessageID != short.Message.MessageID {
			t.Fatalf("after the lease expired got %s, want %s", again.Message.MessageID, short.Message.MessageID)
		}
		if b := next(t, members[owner], domain.TypePrompt, 10, time.Second); len(b.Deliveries) != 0 {
			t.Fatalf("the acknowledged message came back: %v", ids(b.Deliveries))
		}
	})
}

// leaseOne leases one message of typ, waiting up to 10 s for it.
func leaseOne(t *testing.T, q ports.MessageQueue, typ domain.MessageType, lease time.Duration) domain.Delivery {
	t.Helper()
	b, err := q.Next(context.Background(), ports.NextRequest{Type: typ, Limit: 1, Wait: 10 * time.Second, Lease: lease})
	if err != nil || len(b.Deliveries) != 1 {
		t.Fatalf("Next(%s) = %d messages, %v; want 1", typ, len(b.Deliveries), err)
	}
	return b.Deliveries[0]
}

// leaseAny leases one message of typ from whichever member owns it and
// returns that member's index.
func leaseAny(t *testing.T, members []ports.MessageQueue, typ domain.MessageType, lease time.Duration) (int, domain.Delivery) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i, q := range members {
			b, err := q.Next(context.Background(), ports.NextRequest{Type: typ, Limit: 1, Wait: 300 * time.Millisecond, Lease: lease})
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if len(b.Deliveries) == 1 {
				return i, b.Deliveries[0]
			}
		}
	}
	t.Fatal("no member served a message within 30 s")
	return 0, domain.Delivery{}
}

// wantUnknown asserts err is a *domain.UnknownReceiptsError naming exactly
// want, in order.
func wantUnknown(t *testing.T, err error, want []string) {
	t.Helper()
	var unknown *domain.UnknownReceiptsError
	if !errors.As(err, &unknown) {
		t.Fatalf("Ack = %v, want *domain.UnknownReceiptsError", err)
	}
	if !slices.Equal(unknown.Receipts, want) {
		t.Fatalf("Ack named %d unknown receipts %q, want the %d %q", len(unknown.Receipts), unknown.Receipts, len(want), want)
	}
}

// otherChar returns a byte of the same kind as c (digit, lower- or
// upper-case letter) but different, or 'x' for anything else.
func otherChar(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return '0' + (c-'0'+1)%10
	case c >= 'a' && c <= 'z':
		return 'a' + (c-'a'+1)%26
	case c >= 'A' && c <= 'Z':
		return 'A' + (c-'A'+1)%26
	}
	return 'x'
}
