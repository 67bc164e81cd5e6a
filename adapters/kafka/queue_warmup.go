package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kchat/kchat/domain"
)

// A member that just joined the group must not answer "empty" while the
// backlog of its partitions is still on its way from the broker: Next waits
// for it, up to startupGrace, until the topic queue is warm.

// startupGrace bounds how long the first calls after startup wait for the
// group to be joined and the backlog of its partitions to be fetched.
const startupGrace = 10 * time.Second

// checkWarm decides, once the group is joined, whether a startup backlog
// is still on its way: it is not when this member owns no partition or its
// partitions have nothing to consume. Past the startup grace, it stops
// waiting either way.
func (tq *topicQueue) checkWarm(ctx context.Context) error {
	if tq.warm.Load() {
		return nil
	}
	if time.Since(tq.started) > startupGrace {
		tq.warm.Store(true)
		return nil
	}
	select {
	case <-tq.joined:
	default:
		return nil // not joined yet: keep waiting
	}
	tq.checkMu.Lock()
	defer tq.checkMu.Unlock()
	if tq.warm.Load() || tq.checked {
		return nil
	}
	tq.mu.Lock()
	owned := len(tq.epochs)
	tq.mu.Unlock()
	if owned == 0 {
		// Joined with nothing (yet): a cooperative rebalance may still hand
		// this member partitions in its next round. Keep looking until the
		// startup grace ends.
		return nil
	}
	bctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	backlog, err := tq.backlog(bctx)
	if err != nil {
		return fmt.Errorf("kafka backlog of %s: %w: %w", tq.topic, domain.ErrUnavailable, err)
	}
	tq.checked = true
	if backlog == 0 {
		tq.warm.Store(true)
	}
	return nil
}

// backlog is how many committed records of the partitions this member owns
// the group has not consumed yet, per the broker.
func (tq *topicQueue) backlog(ctx context.Context) (int64, error) {
	tq.mu.Lock()
	owned := make(map[int32]bool, len(tq.epochs))
	for p := range tq.epochs {
		owned[p] = true
	}
	tq.mu.Unlock()
	if len(owned) == 0 {
		return 0, nil
	}
	committed, err := tq.adm.FetchOffsetsForTopics(ctx, tq.group, tq.topic)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return 0, err
	}
	starts, err := tq.adm.ListStartOffsets(ctx, tq.topic)
	if err != nil {
		return 0, err
	}
	ends, err := tq.adm.ListCommittedOffsets(ctx, tq.topic)
	if err != nil {
		return 0, err
	}
	var total int64
	tq.mu.Lock()
	defer tq.mu.Unlock()
	ends.Each(func(end kadm.ListedOffset) {
		if !owned[end.Partition] {
			return
		}
		if _, still := tq.epochs[end.Partition]; still && end.Offset > tq.stable[end.Partition] {
			tq.stable[end.Partition] = end.Offset // what fetching has to reach (queue_catchup.go)
		}
		from := int64(0)
		if s, ok := starts.Lookup(end.Topic, end.Partition); ok {
			from = s.Offset
		}
		if c, ok := committed.Lookup(end.Topic, end.Partition); ok && c.At > from {
			from = c.At
		}
		if end.Offset > from {
			total += end.Offset - from
		}
	})
	return total, nil
}
