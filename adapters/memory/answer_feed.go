package memory

import (
	"context"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// AnswerFeed is the in-memory ports.AnswerFeed: it hands the answers
// published on a Broker's answer topic to its subscribers.
//
// It has no Run loop: each subscription follows the topic with a cursor of
// its own, in a goroutine that lives exactly as long as the subscription's
// ctx. So "from now on" is the moment Subscribe is called (the Kafka feed,
// one reader per process, can only start near its own start), and a slow
// subscriber delays no other.
type AnswerFeed struct {
	b     *Broker
	topic string
}

var _ ports.AnswerFeed = (*AnswerFeed)(nil)

// NewAnswerFeed returns the feed of b's answer topic.
func NewAnswerFeed(b *Broker) *AnswerFeed {
	return &AnswerFeed{b: b, topic: domain.TopicName(b.prefix, domain.TypeAnswer)}
}

// Subscribe calls fn, from a goroutine of the subscription, with every
// answer published after it was called, partition by partition in offset
// order (so in publish order per session), until ctx ends; fn is never
// called once ctx has ended. It never fails.
func (f *AnswerFeed) Subscribe(ctx context.Context, fn func(domain.Message)) error {
	go f.follow(ctx, f.ends(), fn)
	return nil
}

func (f *AnswerFeed) follow(ctx context.Context, next []int64, fn func(domain.Message)) {
	for {
		msgs, published := f.fetch(next)
		for _, m := range msgs {
			// fn may have ended the subscription itself, or another
			// goroutine while fn ran: the next call is the one to skip.
			if ctx.Err() != nil {
				return
			}
			fn(m)
		}
		select {
		case <-ctx.Done():
			return
		case <-published:
		}
	}
}

// ends returns the answer topic's end offset in each partition: where a
// subscription made now starts. A topic that does not exist yet starts at
// 0, since all it will hold comes later.
func (f *AnswerFeed) ends() []int64 {
	f.b.mu.Lock()
	defer f.b.mu.Unlock()
	next := make([]int64, f.b.partitions)
	// Read b.topics directly: b.topic would create the topic, which is the
	// admin's business, not a reader's.
	for p, log := range f.b.topics[f.topic] {
		next[p] = int64(len(log))
	}
	return next
}

// fetch returns the answers past next, partition by partition, moves next
// to the end, and returns a channel closed at the next publish; taken
// under one lock, so no publish falls between the two.
func (f *AnswerFeed) fetch(next []int64) ([]domain.Message, <-chan struct{}) {
	f.b.mu.Lock()
	defer f.b.mu.Unlock()
	var out []domain.Message
	for p, log := range f.b.topics[f.topic] {
		out = append(out, log[next[p]:]...)
		next[p] = int64(len(log))
	}
	return out, f.b.published
}

// Reply is unset: the feed reads every answer.
func (f *AnswerFeed) Reply(string) domain.Reply { return domain.Reply{} }

// Widen does nothing: the feed reads every answer.
func (f *AnswerFeed) Widen(context.Context) (func(), error) { return func() {}, nil }
