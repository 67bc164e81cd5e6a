package porttest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Stored is a message as read back from the store, with where it was found.
type Stored struct {
	Position domain.Position
	Key      string
	Message  domain.Message
}

// PublisherHarness is one publisher under test and a way to read back what
// it stored.
type PublisherHarness struct {
	Publisher ports.Publisher
	// Prefix is the topic prefix the publisher writes under.
	Prefix string
	// Read returns the messages stored in topic, waiting until at least want
	// are there (or failing the test), in offset order within each partition.
	Read func(t *testing.T, topic string, want int) []Stored
}

// RunPublisher runs the ports.Publisher contract. newHarness must return a
// publisher writing to topics no other test uses.
func RunPublisher(t *testing.T, newHarness func(t *testing.T) PublisherHarness) {
	t.Run("each type lands on its topic with the envelope intact", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		for _, typ := range domain.MessageTypes {
			msg := sample(typ, "sess-"+string(typ), 0)
			pos, err := h.Publisher.Publish(context.Background(), msg)
			if err != nil {
				t.Fatalf("Publish(%s) = %v", typ, err)
			}
			topic := domain.TopicName(h.Prefix, typ)
			if pos.Topic != topic || pos.Offset < 0 || pos.Partition < 0 {
				t.Fatalf("Publish(%s) position = %+v, want topic %s", typ, pos, topic)
			}
			got := h.Read(t, topic, 1)
			if len(got) != 1 {
				t.Fatalf("read %d messages from %s, want 1", len(got), topic)
			}
			if got[0].Position != pos {
				t.Errorf("stored at %+v, Publish said %+v", got[0].Position, pos)
			}
			if got[0].Key != msg.SessionID {
				t.Errorf("key = %q, want the session id %q", got[0].Key, msg.SessionID)
			}
			assertSameMessage(t, got[0].Message, msg)
		}
	})

	t.Run("a session keeps its order on one partition", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const n = 20
		var first domain.Position
		for i := range n {
			pos, err := h.Publisher.Publish(context.Background(), sample(domain.TypeQuery, "ordered", i))
			if err != nil {
				t.Fatalf("Publish #%d = %v", i, err)
			}
			if i == 0 {
				first = pos
			} else if pos.Partition != first.Partition || pos.Offset != first.Offset+int64(i) {
				t.Fatalf("message #%d at %+v, want partition %d offset %d", i, pos, first.Partition, first.Offset+int64(i))
			}
		}
		got := h.Read(t, domain.TopicName(h.Prefix, domain.TypeQuery), n)
		for i, s := range got {
			if want := fmt.Sprintf("message %d", i); s.Message.Text != want {
				t.Fatalf("stored #%d = %q, want %q", i, s.Message.Text, want)
			}
		}
	})

	t.Run("batch results come in input order", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		msgs := make([]domain.Message, 0, 30)
		for i := range 30 {
			msgs = append(msgs, sample(domain.TypeAnswer, fmt.Sprintf("batch-%d", i%4), i))
		}
		results := h.Publisher.PublishBatch(context.Background(), msgs)
		if len(results) != len(msgs) {
			t.Fatalf("PublishBatch gave %d results for %d messages", len(results), len(msgs))
		}
		lastOffset := map[string]int64{}
		for i, r := range results {
			if r.Err != nil {
				t.Fatalf("item %d: %v", i, r.Err)
			}
			s := msgs[i].SessionID
			if prev, ok := lastOffset[s]; ok && r.Position.Offset <= prev {
				t.Fatalf("item %d of session %s at offset %d, not after %d", i, s, r.Position.Offset, prev)
			}
			lastOffset[s] = r.Position.Offset
		}
		got := h.Read(t, domain.TopicName(h.Prefix, domain.TypeAnswer), len(msgs))
		byPos := map[domain.Position]string{}
		for _, s := range got {
			byPos[s.Position] = s.Message.MessageID
		}
		for i, r := range results {
			if byPos[r.Position] != msgs[i].MessageID {
				t.Fatalf("item %d: stored %q at %+v, want %q", i, byPos[r.Position], r.Position, msgs[i].MessageID)
			}
		}
	})

	t.Run("concurrent publishers lose nothing and duplicate nothing", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const writers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if _, err := h.Publisher.Publish(context.Background(), sample(domain.TypePrompt, fmt.Sprintf("w%d", w), i)); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Publish: %v", err)
		}
		got := h.Read(t, domain.TopicName(h.Prefix, domain.TypePrompt), writers*each)
		seen := map[string]bool{}
		for _, s := range got {
			if seen[s.Message.MessageID] {
				t.Fatalf("message %s stored twice", s.Message.MessageID)
			}
			seen[s.Message.MessageID] = true
		}
		if len(seen) != writers*each {
			t.Fatalf("stored %d distinct messages, want %d", len(seen), writers*each)
		}
	})

	t.Run("a cancelled request context does not abandon the write", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		msg := sample(domain.TypeQuery, "cancelled", 0)
		pos, err := h.Publisher.Publish(ctx, msg)
		if err != nil {
			t.Fatalf("Publish with a cancelled context = %v, want the write to complete", err)
		}
		got := h.Read(t, pos.Topic, 1)
		if got[0].Message.MessageID != msg.MessageID {
			t.Fatalf("stored %q, want %q", got[0].Message.MessageID, msg.MessageID)
		}
	})
}

// sample returns a valid message with every optional field set.
func sample(typ domain.MessageType, session string, i int) domain.Message {
	m := domain.Message{
		MessageID: domain.NewMessageID(),
		SessionID: session,
		UserID:    "user-" + session,
		Type:      typ,
		Text:      fmt.Sprintf("message %d", i),
		CreatedAt: time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC),
		Metadata:  map[string]any{"source": "porttest", "nested": map[string]any{"ok": true}},
	}
	if typ != domain.TypeQuery {
		m.ReplyTo = "query-" + session
		m.Citations = []domain.Citation{{N: 1, Source: "docs/run.md", Title: "Running kchat", Score: 1.5, Snippet: "make run"}}
	}
	return m
}

func assertSameMessage(t *testing.T, got, want domain.Message) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("created_at = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	// The trace is the transport's (record timestamps, the reader's span),
	// not what was published.
	got.Trace, want.Trace = domain.Trace{}, domain.Trace{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored message differs:\n got %+v\nwant %+v", got, want)
	}
}
