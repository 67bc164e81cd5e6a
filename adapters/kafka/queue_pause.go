package kafka

import (
	"context"
	"time"
)

// A partition's fetching is paused while its buffer is full
// (KCHAT_CONSUMER_PARTITION_BUFFER records held: buffered, leased, or done
// but not yet committable) and resumed as soon as it has room again. One
// fetch brings up to a megabyte per partition, often several times the
// buffer, so the buffer needs no low-water mark against flapping; and
// resuming at the first record of room gives the next fetch a whole buffer
// of time to arrive before clients run out.
//
// The poll loop pauses and resumes between polls, and a poll waits up to
// 250 ms. With every partition paused nothing can arrive during that wait:
// before issue 20 clients drained the buffer and then waited for the poll
// to end (all 32 clients of the fetch benchmark stalled together for
// 100-350 ms every half second or so, its p99.9 of 245 ms), then for the
// fetch. An acknowledgement that gives a paused partition room now ends
// the poll in progress (wakePoll), and the loop resumes it at once.

// pollWait bounds one poll: the loop looks at its pauses at least this often.
const pollWait = 250 * time.Millisecond

// nextPoll applies the pauses and returns the context of the coming poll,
// which wakePoll ends early, and polled, to call once it returned.
func (tq *topicQueue) nextPoll(ctx context.Context) (pctx context.Context, polled func()) {
	tq.pollMu.Lock()
	tq.pollWake = false // a wake from here on ends the coming poll
	tq.pollMu.Unlock()
	tq.applyPauses()
	pctx, cancel := context.WithTimeout(ctx, pollWait)
	tq.pollMu.Lock()
	if tq.pollWake {
		cancel()
	}
	tq.pollCancel = cancel
	tq.pollMu.Unlock()
	return pctx, func() {
		tq.pollMu.Lock()
		tq.pollCancel = nil
		tq.pollMu.Unlock()
		cancel()
	}
}

// applyPauses pauses fetching of partitions whose buffer is full and
// resumes those with room again.
func (tq *topicQueue) applyPauses() {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	var pause, resume []int32
	for p := range tq.paused {
		// A partition paused before it was revoked stays paused in the
		// client, across reassignment, until resumed.
		if _, assigned := tq.epochs[p]; !assigned {
			resume = append(resume, p)
			delete(tq.paused, p)
		}
	}
	for p := range tq.epochs {
		full := tq.ledger.Held(p) >= tq.q.qcfg.PartitionBuffer
		switch {
		case full && !tq.paused[p]:
			pause = append(pause, p)
			tq.paused[p] = true
		case !full && tq.paused[p]:
			resume = append(resume, p)
			delete(tq.paused, p)
		}
	}
	tq.anyPaused.Store(len(tq.paused) > 0)
	if len(pause) > 0 {
		tq.cl.PauseFetchPartitions(map[string][]int32{tq.topic: pause})
	}
	if len(resume) > 0 {
		tq.cl.ResumeFetchPartitions(map[string][]int32{tq.topic: resume})
	}
}

// acked follows an acknowledgement applied to the ledger: the commit moves,
// and a paused partition that has room now is fetched again.
func (tq *topicQueue) acked() {
	tq.requestCommit()
	if tq.anyPaused.Load() && tq.roomToResume() {
		tq.wakePoll()
	}
}

// roomToResume reports whether a paused partition has room again.
func (tq *topicQueue) roomToResume() bool {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	for p := range tq.paused {
		if tq.ledger.Held(p) < tq.q.qcfg.PartitionBuffer {
			return true
		}
	}
	return false
}

// wakePoll ends the poll in progress, or the next one if none is, so the
// loop applies pauses again.
func (tq *topicQueue) wakePoll() {
	tq.pollMu.Lock()
	defer tq.pollMu.Unlock()
	tq.pollWake = true
	if tq.pollCancel != nil {
		tq.pollCancel()
	}
}
