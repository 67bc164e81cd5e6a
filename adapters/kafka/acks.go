package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// Any replica answers any request, acknowledgements included: a receipt
// issued by another replica is forwarded to it through a small internal
// topic that every replica reads. The owner applies it within
// milliseconds; if the lease expired meanwhile, the message is served
// again, as with any late acknowledgement.

// receiptPattern matches receipts issued by a domain.Ledger of this
// adapter: <type>~<8 hex>.<partition>.<offset>.<seq>.
var receiptPattern = regexp.MustCompile(`^(query|prompt|answer)~[0-9a-f]{8}\.[0-9]+\.[0-9]+\.[0-9a-z]+$`)

// AcksTopic is the internal topic that carries forwarded acknowledgements.
func AcksTopic(prefix string) string { return prefix + "kchat-consumer-acks" }

type forwardedAcks struct {
	Receipts []string `json:"receipts"`
}

// ensureAcksTopic creates the forwarding topic if it is missing.
func (q *Queue) ensureAcksTopic(ctx context.Context) error {
	retention := strconv.FormatInt(q.cfg.Retention.Milliseconds(), 10)
	policy := "delete"
	tq := q.topics[domain.TypeQuery]
	resp, err := tq.adm.CreateTopic(ctx, 1, int16(q.cfg.ReplicationFactor),
		map[string]*string{"retention.ms": &retention, "cleanup.policy": &policy}, q.acksTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %s: %w", q.acksTopic, err)
	}
	return nil
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
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if err := q.ensureAcksTopic(ctx); err != nil {
			q.log.Warn("acknowledgement forwarding unavailable; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		break
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
