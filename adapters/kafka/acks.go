package kafka

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// Any replica answers any request, acknowledgements included: a receipt
// issued by another replica is forwarded to it through a small internal
// topic (AcksTopic) that every replica reads. The owner applies it within
// milliseconds; if the lease expired meanwhile, the message is served
// again, as with any late acknowledgement.

type forwardedAcks struct {
	Receipts []string `json:"receipts"`
}

// forward publishes receipts for the replica that issued them.
func (q *Queue) forward(ctx context.Context, receipts []string) error {
	value, err := json.Marshal(forwardedAcks{Receipts: receipts})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.DeliveryTimeout)
	defer cancel()
	if err := q.forwarder.ProduceSync(ctx, &kgo.Record{Topic: q.acksTopic, Value: value}).FirstErr(); err != nil {
		return fmt.Errorf("forward acknowledgements: %w: %w", domain.ErrUnavailable, err)
	}
	return nil
}

// readAcks applies forwarded acknowledgements of receipts this replica
// issued, until ctx ends.
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
			var fa forwardedAcks
			if err := json.Unmarshal(r.Value, &fa); err != nil {
				q.log.Warn("ignoring a malformed forwarded acknowledgement", "offset", r.Offset, "err", err)
				return
			}
			for _, receipt := range fa.Receipts {
				if tq := q.owner(receipt); tq != nil {
					if len(tq.ledger.Ack([]string{receipt})) == 0 {
						tq.requestCommit()
					}
				}
			}
		})
	}
}
