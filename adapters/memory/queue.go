package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kchat/kchat/adapters/internal/ledger"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// partitionCap bounds how many records a partition holds in the ledger.
const partitionCap = 1000

// Queue is the in-memory ports.MessageQueue: one consumer-group member
// reading a Broker. Several Queues with the same group on one Broker do not
// share partitions (it is one member per group), but a new Queue resumes
// from the offsets an earlier one committed.
type Queue struct {
	b      *Broker
	group  string
	signer *ledger.Signer
	topics map[domain.MessageType]*memTopic
}

var _ ports.MessageQueue = (*Queue)(nil)

type memTopic struct {
	name   string
	ledger *ledger.Ledger[domain.Message]
	mu     sync.Mutex // guards next
	next   []int64    // next offset to pull into the ledger, per partition
}

// NewQueue returns the group's queue on b, resuming at its committed
// offsets. Its receipts are signed with key, as the Kafka queue's are
// (docs/security.md, "Consumer receipts"); it panics on a key shorter than
// 32 bytes.
func NewQueue(b *Broker, group string, key []byte) *Queue {
	signer, err := ledger.NewSigner(group, key)
	if err != nil {
		panic("memory queue: " + err.Error())
	}
	q := &Queue{b: b, group: group, signer: signer, topics: map[domain.MessageType]*memTopic{}}
	for _, t := range domain.MessageTypes {
		name := domain.TopicName(b.prefix, t)
		mt := &memTopic{name: name, ledger: ledger.New[domain.Message](string(t), 0, signer), next: b.committed(group, name)}
		for p := range mt.next {
			mt.ledger.Assign(int32(p), 1)
		}
		q.topics[t] = mt
	}
	return q
}

// pull moves newly published messages into the ledger, at most
// partitionCap per partition, and returns a channel closed at the next
// publish.
func (q *Queue) pull(mt *memTopic) <-chan struct{} {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	var published <-chan struct{}
	for p := range mt.next {
		room := partitionCap - mt.ledger.Held(int32(p))
		msgs, ch := q.b.read(mt.name, int32(p), mt.next[p], max(room, 0))
		published = ch
		if len(msgs) == 0 {
			continue
		}
		offs := make([]int64, len(msgs))
		for i := range msgs {
			offs[i] = mt.next[p] + int64(i)
		}
		mt.ledger.Add(int32(p), 1, offs, msgs)
		mt.next[p] += int64(len(msgs))
	}
	return published
}

// Next leases the next messages, long-polling up to req.Wait.
func (q *Queue) Next(ctx context.Context, req ports.NextRequest) (ports.Batch, error) {
	mt, ok := q.topics[req.Type]
	if !ok {
		return ports.Batch{}, &domain.ValidationError{Field: "type", Reason: fmt.Sprintf("unknown type %q", req.Type)}
	}
	deadline := time.Now().Add(req.Wait)
	for {
		mt.ledger.Expire(time.Now())
		published := q.pull(mt)
		_, arrived := mt.ledger.Buffered()
		got := mt.ledger.Take(req.Limit, time.Now(), req.Lease, req.AutoAck)
		if len(got) > 0 {
			return ports.Batch{Deliveries: deliveries(mt.name, got)}, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return ports.Batch{}, nil
		}
		// Wake on a publish, a release, or at least every 100 ms for expiries.
		timer := time.NewTimer(min(left, 100*time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ports.Batch{}, ctx.Err()
		case <-published:
		case <-arrived:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func deliveries(topic string, got []ledger.Leased[domain.Message]) []domain.Delivery {
	out := make([]domain.Delivery, len(got))
	for i, x := range got {
		m := x.Item
		out[i] = domain.Delivery{
			Topic: topic, Partition: x.Partition, Offset: x.Offset, Key: m.SessionID,
			Timestamp: m.CreatedAt, Message: m, Receipt: x.Receipt,
		}
	}
	return out
}

// Ack acknowledges receipts and commits what became contiguous. A receipt
// that does not verify (made up, altered, another group's or another key's)
// is unknown before anything is applied; so is one another queue issued,
// as this queue is its group's only member.
func (q *Queue) Ack(_ context.Context, receipts []string) error {
	var unknown []string
	for _, group := range q.byTopic(receipts) {
		unknown = append(unknown, group.mt.ledger.Ack(group.receipts)...)
		if c := group.mt.ledger.Commits(); len(c) > 0 {
			q.b.commit(q.group, group.mt.name, c)
			for p, o := range c {
				group.mt.ledger.Committed(p, o)
			}
		}
	}
	unknown = append(unknown, q.foreign(receipts)...)
	if len(unknown) > 0 {
		return &domain.UnknownReceiptsError{Receipts: inOrder(receipts, unknown)}
	}
	return nil
}

// inOrder returns the receipts of subset in the order of all.
func inOrder(all, subset []string) []string {
	in := make(map[string]bool, len(subset))
	for _, r := range subset {
		in[r] = true
	}
	out := make([]string, 0, len(subset))
	for _, r := range all {
		if in[r] {
			out = append(out, r)
			delete(in, r)
		}
	}
	return out
}

// Release puts leased messages back at the head.
func (q *Queue) Release(_ context.Context, receipts []string) error {
	for _, group := range q.byTopic(receipts) {
		group.mt.ledger.Release(group.receipts)
	}
	return nil
}

type topicReceipts struct {
	mt       *memTopic
	receipts []string
}

// byTopic groups the receipts that verify by the topic whose ledger here
// issued them.
func (q *Queue) byTopic(receipts []string) []topicReceipts {
	var out []topicReceipts
	for _, mt := range q.topics {
		var mine []string
		for _, r := range receipts {
			if q.owns(mt, r) {
				mine = append(mine, r)
			}
		}
		if len(mine) > 0 {
			out = append(out, topicReceipts{mt, mine})
		}
	}
	return out
}

// owns reports whether r verifies and mt's ledger issued it.
func (q *Queue) owns(mt *memTopic, r string) bool {
	_, err := q.signer.Verify(r)
	return err == nil && mt.ledger.Owns(r)
}

// foreign returns the receipts no topic of this queue issued.
func (q *Queue) foreign(receipts []string) []string {
	var out []string
	for _, r := range receipts {
		owned := false
		for _, mt := range q.topics {
			owned = owned || q.owns(mt, r)
		}
		if !owned {
			out = append(out, r)
		}
	}
	return out
}

// Browse returns up to limit messages of typ from the beginning, partition
// by partition, leasing and committing nothing.
func (q *Queue) Browse(_ context.Context, typ domain.MessageType, limit int) ([]domain.Delivery, error) {
	mt, ok := q.topics[typ]
	if !ok {
		return nil, errors.New("memory browse: unknown type")
	}
	var out []domain.Delivery
	for p := range mt.next {
		msgs, _ := q.b.read(mt.name, int32(p), 0, limit-len(out))
		for off, m := range msgs {
			out = append(out, domain.Delivery{Topic: mt.name, Partition: int32(p), Offset: int64(off), Key: m.SessionID, Timestamp: m.CreatedAt, Message: m})
		}
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}
