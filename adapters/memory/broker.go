package memory

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// DefaultPartitions is how many partitions each in-memory topic has, as the
// Kafka adapter's default.
const DefaultPartitions = 3

// Broker is an in-memory, partitioned message log standing in for Kafka.
// Messages are partitioned by session id, so a session's order is kept.
// The zero value is not usable; call NewBroker.
type Broker struct {
	prefix     string
	partitions int

	mu        sync.Mutex
	topics    map[string][][]domain.Message
	commits   map[string][]int64 // group/topic → next offset per partition
	published chan struct{}      // closed and replaced on every publish
}

var (
	_ ports.Publisher  = (*Broker)(nil)
	_ ports.TopicAdmin = (*Broker)(nil)
)

// NewBroker returns an empty broker whose topics are named prefix+type.
func NewBroker(prefix string) *Broker {
	return &Broker{
		prefix: prefix, partitions: DefaultPartitions,
		topics: map[string][][]domain.Message{}, commits: map[string][]int64{},
		published: make(chan struct{}),
	}
}

// Publish appends msg to its topic. It never blocks and never fails for a
// valid message.
func (b *Broker) Publish(_ context.Context, msg domain.Message) (domain.Position, error) {
	if !msg.Type.Valid() {
		return domain.Position{}, fmt.Errorf("memory publish: %w", msg.Validate())
	}
	topic := domain.TopicName(b.prefix, msg.Type)
	h := fnv.New32a()
	_, _ = h.Write([]byte(msg.SessionID))
	p := int32(h.Sum32() % uint32(b.partitions))

	b.mu.Lock()
	defer b.mu.Unlock()
	parts := b.topic(topic)
	parts[p] = append(parts[p], msg)
	close(b.published)
	b.published = make(chan struct{})
	return domain.Position{Topic: topic, Partition: p, Offset: int64(len(parts[p]) - 1)}, nil
}

// PublishBatch publishes each message in order.
func (b *Broker) PublishBatch(ctx context.Context, msgs []domain.Message) []ports.PublishResult {
	out := make([]ports.PublishResult, len(msgs))
	for i, m := range msgs {
		out[i].Position, out[i].Err = b.Publish(ctx, m)
	}
	return out
}

// EnsureTopics creates the three topics if they are missing.
func (b *Broker) EnsureTopics(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range domain.MessageTypes {
		b.topic(domain.TopicName(b.prefix, t))
	}
	return nil
}

// DescribeTopics describes the three topics; ErrNotFound before EnsureTopics.
func (b *Broker) DescribeTopics(context.Context) ([]domain.TopicInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	infos := make([]domain.TopicInfo, 0, len(domain.MessageTypes))
	for _, t := range domain.MessageTypes {
		name := domain.TopicName(b.prefix, t)
		parts, ok := b.topics[name]
		if !ok {
			return nil, fmt.Errorf("memory topic %s: %w", name, domain.ErrNotFound)
		}
		infos = append(infos, domain.TopicInfo{
			Type: t, Name: name, Partitions: len(parts), ReplicationFactor: 1,
			Retention: 2 * time.Minute, CleanupPolicy: "delete",
		})
	}
	return infos, nil
}

// Messages returns a copy of everything stored in topic, partition by
// partition, each in offset order.
func (b *Broker) Messages(topic string) [][]domain.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	parts := b.topics[topic]
	out := make([][]domain.Message, len(parts))
	for i, p := range parts {
		out[i] = append([]domain.Message(nil), p...)
	}
	return out
}

// topic returns the partitions of name, creating them; b.mu must be held.
func (b *Broker) topic(name string) [][]domain.Message {
	parts, ok := b.topics[name]
	if !ok {
		parts = make([][]domain.Message, b.partitions)
		b.topics[name] = parts
	}
	return parts
}

// read returns the messages of topic's partition p from offset on, and a
// channel closed at the next publish.
func (b *Broker) read(topic string, p int32, from int64, limit int) ([]domain.Message, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	parts := b.topic(topic)
	log := parts[p]
	if from >= int64(len(log)) {
		return nil, b.published
	}
	end := min(int64(len(log)), from+int64(limit))
	return log[from:end:end], b.published
}

// committed returns the group's committed offsets of topic, one per
// partition (0 when nothing was committed).
func (b *Broker) committed(group, topic string) []int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.commits[group+"/"+topic]
	if c == nil {
		c = make([]int64, b.partitions)
		b.commits[group+"/"+topic] = c
	}
	return append([]int64(nil), c...)
}

// commit stores the group's committed offsets of topic; offsets never move
// backwards.
func (b *Broker) commit(group, topic string, offsets map[int32]int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.commits[group+"/"+topic]
	if c == nil {
		c = make([]int64, b.partitions)
		b.commits[group+"/"+topic] = c
	}
	for p, o := range offsets {
		c[p] = max(c[p], o)
	}
}
