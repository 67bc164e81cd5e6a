package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// Any replica answers any request, acknowledgements included: a receipt
// issued by another replica is forwarded to it through a small internal
// topic (AcksTopic) that every replica reads, and the owner's verdict comes
// back the same way (docs/design.md, "Consumer"):
//
//   - the requester publishes a request: a request id, its replica id and
//     the receipts (already verified: forged ones never leave it);
//   - each replica that issued some of them acknowledges them in its ledger
//     and publishes a verdict to the requester: which it applied and which
//     it did not hold (expired, already acknowledged);
//   - the requester waits for a verdict on every receipt, up to the
//     delivery timeout. A receipt no replica answers for is one whose
//     owner is gone (its partitions moved, its leases with them): unknown,
//     like any other receipt not held.

// ackRecordV1 is one record of the acks topic: a request (From set) or a
// verdict (To set) on some receipts of request ID.
type ackRecordV1 struct {
	V        int      `json:"v"`
	ID       string   `json:"id"`
	From     string   `json:"from,omitempty"`     // request: the requesting replica
	Receipts []string `json:"receipts,omitempty"` // request: receipts to acknowledge
	To       string   `json:"to,omitempty"`       // verdict: the requesting replica
	Applied  []string `json:"applied,omitempty"`  // verdict: acknowledged by the owner
	NotHeld  []string `json:"not_held,omitempty"` // verdict: the owner did not hold them leased
}

// pendingAck is a forwarded request awaiting verdicts.
type pendingAck struct {
	open    map[string]bool // receipts no verdict covered yet
	notHeld []string
	done    chan struct{} // closed when open is empty
}

// forward asks the replicas that issued receipts to acknowledge them and
// waits, at most the delivery timeout, for their verdicts. It returns the
// receipts that were not applied: not held by their owner, or with no
// verdict in time. The error is domain.ErrUnavailable when the request
// could not be published.
func (q *Queue) forward(ctx context.Context, receipts []string) (notApplied []string, err error) {
	deadline := time.Now().Add(q.cfg.DeliveryTimeout)
	id := q.replica + "." + strconv.FormatUint(q.requests.Add(1), 36)
	p := &pendingAck{open: make(map[string]bool, len(receipts)), done: make(chan struct{})}
	for _, r := range receipts {
		p.open[r] = true
	}
	q.pendingMu.Lock()
	q.pending[id] = p
	q.pendingMu.Unlock()
	defer func() {
		q.pendingMu.Lock()
		delete(q.pending, id)
		q.pendingMu.Unlock()
	}()

	value, err := json.Marshal(ackRecordV1{V: 1, ID: id, From: q.replica, Receipts: receipts})
	if err != nil {
		return nil, err
	}
	// Published even if the client leaves meanwhile: the owner applies it.
	pctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	if err := q.forwarder.ProduceSync(pctx, &kgo.Record{Topic: q.acksTopic, Value: value}).FirstErr(); err != nil {
		return nil, fmt.Errorf("forward acknowledgements: %w: %w", domain.ErrUnavailable, err)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
	case <-ctx.Done(): // the client left: nobody reads the answer
	}
	q.pendingMu.Lock()
	defer q.pendingMu.Unlock()
	notApplied = append(notApplied, p.notHeld...)
	for _, r := range receipts {
		if p.open[r] {
			notApplied = append(notApplied, r)
		}
	}
	return notApplied, nil
}

// readAcks applies forwarded acknowledgements of receipts this replica
// issued, answering with verdicts, and settles this replica's requests with
// the verdicts addressed to it, until ctx ends.
func (q *Queue) readAcks(ctx context.Context) {
	_ = q.acksAdmin.Run(ctx) // creates the topic, retrying (and logging) until it can or ctx ends
	if ctx.Err() != nil {
		return
	}
	q.acksReader.AddConsumeTopics(q.acksTopic)
	for {
		fetches := q.acksReader.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var m ackRecordV1
			if err := json.Unmarshal(r.Value, &m); err != nil {
				q.log.Warn("ignoring a malformed record on the acknowledgements topic", "offset", r.Offset, "err", err)
				return
			}
			switch {
			case m.V != 1:
				// Another version: an older replica's, whose receipts
				// this one cannot have issued.
			case m.To == q.replica:
				q.settle(m)
			case m.From != "":
				q.answer(ctx, m)
			}
		})
	}
}

// answer acknowledges the receipts of request m that this replica issued
// and publishes its verdict on them.
func (q *Queue) answer(ctx context.Context, m ackRecordV1) {
	verdict := ackRecordV1{V: 1, ID: m.ID, To: m.From}
	for _, receipt := range m.Receipts {
		tq := q.owner(receipt)
		if tq == nil {
			continue // another replica's, or no longer anyone's
		}
		// Verified again: anything could have been written to the topic.
		if _, err := q.signer.Verify(receipt); err == nil && len(tq.ledger.Ack([]string{receipt})) == 0 {
			tq.acked()
			verdict.Applied = append(verdict.Applied, receipt)
		} else {
			verdict.NotHeld = append(verdict.NotHeld, receipt)
		}
	}
	if len(verdict.Applied)+len(verdict.NotHeld) == 0 {
		return
	}
	value, err := json.Marshal(verdict)
	if err != nil {
		return
	}
	q.forwarder.Produce(ctx, &kgo.Record{Topic: q.acksTopic, Value: value}, func(_ *kgo.Record, err error) {
		if err != nil && ctx.Err() == nil {
			// The requester reports them unknown after its timeout; they
			// are applied here all the same.
			q.log.Warn("could not publish a verdict on forwarded acknowledgements", "request", m.ID, "err", err)
		}
	})
}

// settle records the verdict m on one of this replica's requests.
func (q *Queue) settle(m ackRecordV1) {
	q.pendingMu.Lock()
	defer q.pendingMu.Unlock()
	p := q.pending[m.ID]
	if p == nil || len(p.open) == 0 {
		return // timed out, or settled already
	}
	for _, r := range m.Applied {
		delete(p.open, r)
	}
	for _, r := range m.NotHeld {
		if p.open[r] {
			delete(p.open, r)
			p.notHeld = append(p.notHeld, r)
		}
	}
	if len(p.open) == 0 {
		close(p.done)
	}
}
