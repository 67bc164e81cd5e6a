package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// newBrowser returns the queue's browse client: group-less, so browsing
// never touches the groups, and as long-lived as the queue. kprom registers
// a client's collectors when the client starts and unregisters them when it
// closes, under the same names for every client with the same label: a
// client per browse would panic on duplicate registration as soon as two
// browses overlap.
//
// It keeps control records: a browse reads up to the last stable offset,
// and the record just below it is often a transaction's commit marker
// (answers are written in transactions). Dropped, as franz-go does by
// default, the marker never arrives and the browse would wait for it until
// its timeout. (Records of an aborted transaction are still dropped; should
// they end just below a transaction still open, the browse waits for that
// one to end.)
func newBrowser(cfg Config, log *slog.Logger, metrics *Metrics) (*kgo.Client, error) {
	bcfg := cfg
	bcfg.ClientID = cfg.ClientID + "-browse"
	cl, err := kgo.NewClient(append(clientOpts(bcfg, log, metrics.client("browse")),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, fmt.Errorf("kafka browse client: %w", err)
	}
	return cl, nil
}

// Browse reads up to limit records of typ from the beginning, leasing and
// committing nothing. Browses take turns on the queue's browse client.
func (q *Queue) Browse(ctx context.Context, typ domain.MessageType, limit int) ([]domain.Delivery, error) {
	tq, ok := q.topics[typ]
	if !ok {
		return nil, &domain.ValidationError{Field: "type", Reason: fmt.Sprintf("unknown type %q", typ)}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := tq.adm.ListCommittedOffsets(ctx, tq.topic)
	if err != nil {
		return nil, fmt.Errorf("kafka browse %s: %w: %w", tq.topic, domain.ErrUnavailable, err)
	}
	starts, err := tq.adm.ListStartOffsets(ctx, tq.topic)
	if err != nil {
		return nil, fmt.Errorf("kafka browse %s: %w: %w", tq.topic, domain.ErrUnavailable, err)
	}
	from := map[int32]kgo.Offset{}
	remaining := map[int32]int64{}
	var parts []int32
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(e.Topic, e.Partition)
		if e.Offset > s.Offset {
			from[e.Partition] = kgo.NewOffset().At(s.Offset)
			remaining[e.Partition] = e.Offset
			parts = append(parts, e.Partition)
		}
	})
	if len(from) == 0 {
		return nil, nil
	}
	select {
	case q.browseSlot <- struct{}{}:
		defer func() { <-q.browseSlot }()
	case <-ctx.Done():
		return nil, fmt.Errorf("kafka browse %s: %w: %w", tq.topic, domain.ErrUnavailable, ctx.Err())
	}
	q.browser.AddConsumePartitions(map[string]map[int32]kgo.Offset{tq.topic: from})
	// Removing the partitions also drops what the client buffered of them,
	// so the next browse starts clean.
	defer q.browser.RemoveConsumePartitions(map[string][]int32{tq.topic: parts})
	var out []domain.Delivery
	for len(out) < limit && len(remaining) > 0 {
		fetches := q.browser.PollRecords(ctx, limit-len(out))
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("kafka browse %s: %w: %w", tq.topic, domain.ErrUnavailable, err)
		}
		if fetches.IsClientClosed() {
			return nil, fmt.Errorf("kafka browse %s: %w: client closed", tq.topic, domain.ErrUnavailable)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Topic != tq.topic {
				return
			}
			if len(out) < limit && !r.Attrs.IsControl() {
				out = append(out, tq.delivery(r))
			}
			if r.Offset+1 >= remaining[r.Partition] {
				delete(remaining, r.Partition)
			}
		})
	}
	return out, nil
}
