package kafka

import (
	"context"
	"time"
)

// "The next unconsumed message" must not be "none" while one is there
// (issue 15). A call that finds nothing it may take while this member
// knows a record is waiting waits a little longer for it, up to catchUp,
// even with wait=0:
//
//   - its partition has KCHAT_CONSUMER_MAX_IN_FLIGHT auto-acknowledged
//     records out beyond its last durable commit, and the commit that frees
//     room is on its way (a few milliseconds: commits already go out as
//     soon as acknowledgements arrive). Serving past the bound would widen
//     the kill -9 window, and every partition of a busy topic reaches it
//     at once, so there is no other partition to serve from;
//   - the broker reports committed records beyond what the member fetched
//     (a partition's last stable offset, in its last fetch response or
//     asked for when a call would answer "none"), and the fetch that brings
//     them is on its way.
//
// A commit or a broker that does not answer (a coordinator down) costs a
// call at most twice catchUp (the broker's answer, then the wait) before it
// answers "none".

// catchUp bounds that wait. The commits it waits for take 1-10 ms on a
// healthy broker (docs/design.md, "Consumer").
const catchUp = 100 * time.Millisecond

// heldBack reports whether a record this member knows of waits for a
// commit or a fetch rather than for a producer.
func (tq *topicQueue) heldBack() bool {
	if tq.ledger.WaitsForCommit() {
		return true
	}
	tq.mu.Lock()
	defer tq.mu.Unlock()
	for p := range tq.epochs {
		// A paused partition's buffer is full of leased records: nothing
		// more comes until clients acknowledge them.
		if next := tq.expect[p]; next >= 0 && tq.stable[p] > next && !tq.paused[p] {
			return true
		}
	}
	return false
}

// refreshStable asks the broker for the last stable offset of every
// partition this member owns, unless a request that began after since has
// answered already: concurrent callers that would answer "none" share one
// request per round trip. It gives up after catchUp; a broker that does not
// answer by then leaves what was known.
func (tq *topicQueue) refreshStable(ctx context.Context, since time.Time) {
	tq.stableMu.Lock()
	defer tq.stableMu.Unlock()
	tq.mu.Lock()
	owned := len(tq.epochs)
	tq.mu.Unlock()
	if owned == 0 || tq.stableAt.After(since) {
		return
	}
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, catchUp)
	defer cancel()
	ends, err := tq.adm.ListCommittedOffsets(lctx, tq.topic)
	if err != nil {
		return
	}
	tq.stableAt = start
	tq.mu.Lock()
	defer tq.mu.Unlock()
	for _, end := range ends[tq.topic] {
		if _, owned := tq.epochs[end.Partition]; owned && end.Err == nil && end.Offset > tq.stable[end.Partition] {
			tq.stable[end.Partition] = end.Offset
		}
	}
}
