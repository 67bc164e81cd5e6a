package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitLoop commits acknowledged offsets whenever acknowledgements arrive;
// acknowledgements that arrive during a commit are coalesced into the next.
func (tq *topicQueue) commitLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tq.commitReq:
			tq.commit(ctx)
		}
	}
}

func (tq *topicQueue) commit(ctx context.Context) {
	tq.commitMu.Lock()
	defer tq.commitMu.Unlock()
	offsets := tq.ledger.Commits()
	err := tq.commitOffsets(ctx, offsets)
	if err == nil {
		for p, o := range offsets {
			tq.ledger.Committed(p, o)
		}
		return
	}
	for p, o := range offsets {
		tq.ledger.Redirty(p, o)
	}
	if ctx.Err() == nil {
		tq.q.log.Warn("offset commit failed; retrying", "topic", tq.topic, "err", err)
		time.AfterFunc(200*time.Millisecond, tq.requestCommit)
	}
}

func (tq *topicQueue) requestCommit() {
	select {
	case tq.commitReq <- struct{}{}:
	default:
	}
}

func (tq *topicQueue) commitOffsets(ctx context.Context, offsets map[int32]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	eos := make(map[int32]kgo.EpochOffset, len(offsets))
	for p, o := range offsets {
		eos[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var cerr error
	tq.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{tq.topic: eos},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if perr := kerrFor(p.ErrorCode); perr != nil {
						cerr = perr
					}
				}
			}
		})
	return cerr
}
