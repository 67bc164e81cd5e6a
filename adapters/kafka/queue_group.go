package kafka

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchat/kchat/adapters/internal/ledger"
	"github.com/kchat/kchat/domain"
)

// topicQueue is the group consumer of one topic: it fetches records into
// its ledger, follows the group's assignments and commits what the ledger
// lets it.
type topicQueue struct {
	q      *Queue
	typ    domain.MessageType
	topic  string
	group  string
	cl     *kgo.Client
	adm    *kadm.Client
	ledger *ledger.Ledger[domain.Delivery]

	epoch     atomic.Uint64
	warm      atomic.Bool   // the backlog at startup is known to be buffered or empty
	joined    chan struct{} // closed at the first assignment (possibly empty)
	member    atomic.Bool   // in the group: assigned (possibly nothing) and not lost since
	joinOnce  sync.Once
	checkMu   sync.Mutex // serialises the one backlog check after joining
	checked   bool       // guarded by checkMu
	started   time.Time
	commitMu  sync.Mutex // serialises commits: the loop's and the revoker's
	commitReq chan struct{}
	stableMu  sync.Mutex // one refreshStable at a time
	stableAt  time.Time  // when the last refreshStable that answered began

	anyPaused  atomic.Bool // some partition's fetching is paused (queue_pause.go)
	pollMu     sync.Mutex  // guards the two fields below
	pollCancel func()      // ends the poll in progress, if any
	pollWake   bool        // wakePoll was called since the poll loop last looked

	mu     sync.Mutex // guards the fields below
	epochs map[int32]uint64
	expect map[int32]int64 // next offset each partition should fetch; -1 unknown
	stable map[int32]int64 // last stable offset the broker last reported per partition
	gaps   []domain.Gap
	paused map[int32]bool
}

// newTopicQueue returns typ's group consumer, whose client does not dial
// until polled.
func newTopicQueue(q *Queue, typ domain.MessageType) (*topicQueue, error) {
	tq := &topicQueue{
		q: q, typ: typ,
		topic:     domain.TopicName(q.cfg.TopicPrefix, typ),
		group:     q.qcfg.GroupOf(typ),
		ledger:    ledger.New[domain.Delivery](string(typ), q.qcfg.MaxInFlight, q.signer),
		commitReq: make(chan struct{}, 1),
		joined:    make(chan struct{}),
		started:   time.Now(),
		epochs:    map[int32]uint64{},
		expect:    map[int32]int64{},
		stable:    map[int32]int64{},
		paused:    map[int32]bool{},
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(tq.group),
		kgo.ConsumeTopics(tq.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers arrive too (add skips them): after a restart
		// a marker may be all that is left, and the backlog check must see
		// it arrive rather than wait out the startup grace for it.
		kgo.KeepControlRecords(),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(time.Second),
		kgo.SessionTimeout(q.qcfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, q.qcfg.SessionTimeout/3)),
		kgo.OnPartitionsAssigned(tq.assigned),
		kgo.AdjustFetchOffsetsFn(tq.adjustOffsets),
		kgo.OnPartitionsRevoked(tq.revoked),
		kgo.OnOffsetsFetched(tq.offsetsFetched),
		kgo.OnPartitionsLost(tq.lost),
		kgo.WithHooks(joinCounter{q.metrics, tq.topic}),
	}
	ccfg := q.cfg
	ccfg.ClientID = q.cfg.ClientID + "-consumer-" + string(typ)
	cl, err := NewClient(ccfg, q.log.With("topic", tq.topic), q.metrics.client("consumer-"+string(typ)), opts...)
	if err != nil {
		return nil, err
	}
	tq.cl, tq.adm = cl, kadm.NewClient(cl)
	return tq, nil
}

// joinCounter counts completed SyncGroup requests: one per group join.
type joinCounter struct {
	m     *Metrics
	topic string
}

func (j joinCounter) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if j.m != nil && err == nil && key == (&kmsg.SyncGroupRequest{}).Key() {
		j.m.Joins.WithLabelValues(j.topic).Inc()
	}
}

// poll fetches records into the ledger, pausing partitions whose buffer is
// full (queue_pause.go).
func (tq *topicQueue) poll(ctx context.Context) {
	for ctx.Err() == nil {
		pctx, polled := tq.nextPoll(ctx)
		fetches := tq.cl.PollRecords(pctx, 4*tq.q.qcfg.PartitionBuffer)
		polled()
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				tq.q.log.WarnContext(ctx, "kafka fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		fetches.EachPartition(tq.add)
		tq.cl.AllowRebalance()
	}
}

// add puts one partition's fetched records into the ledger and reports
// offsets that retention deleted before the group consumed them.
func (tq *topicQueue) add(fp kgo.FetchTopicPartition) {
	p := fp.Partition
	tq.mu.Lock()
	epoch, assigned := tq.epochs[p]
	expect, known := tq.expect[p]
	if assigned && known && expect >= 0 && fp.LogStartOffset > expect {
		gap := domain.Gap{Topic: tq.topic, Partition: p, From: expect, To: fp.LogStartOffset - 1}
		tq.gaps = append(tq.gaps, gap)
		tq.q.metrics.Gaps.WithLabelValues(tq.topic).Add(float64(gap.To - gap.From + 1))
		tq.q.log.Warn("retention deleted records the group had not consumed", "topic", tq.topic, "partition", p, "from", gap.From, "to", gap.To)
	}
	// Records below the next expected offset were fetched before (a
	// refetch after a rebalance): they are in the ledger or delivered.
	recs := fp.Records
	for known && expect >= 0 && len(recs) > 0 && recs[0].Offset < expect {
		recs = recs[1:]
	}
	if n := len(recs); n > 0 {
		tq.expect[p] = recs[n-1].Offset + 1
	} else if known && fp.LogStartOffset > expect {
		tq.expect[p] = fp.LogStartOffset
	}
	if assigned && fp.LastStableOffset > tq.stable[p] {
		tq.stable[p] = fp.LastStableOffset
	}
	tq.mu.Unlock()
	if !assigned || len(recs) == 0 {
		return
	}
	offs := make([]int64, 0, len(recs))
	items := make([]domain.Delivery, 0, len(recs))
	for _, r := range recs {
		if r.Attrs.IsControl() {
			continue // a transaction marker: nothing to serve, a gap to the ledger
		}
		offs, items = append(offs, r.Offset), append(items, tq.delivery(r))
	}
	tq.ledger.Add(p, epoch, offs, items)
	tq.requestCommit() // records an earlier owner acknowledged move the commit at once
	tq.warm.Store(true)
}

// delivery decodes r (an envelope, or a record in the seed's format); a
// record that is neither is delivered flagged with its raw bytes.
func (tq *topicQueue) delivery(r *kgo.Record) domain.Delivery {
	d := domain.Delivery{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Timestamp: r.Timestamp}
	msg, err := DecodeRecord(r)
	if err != nil {
		d.Poison, d.Raw = err.Error(), r.Value
		tq.q.metrics.Poison.WithLabelValues(tq.topic).Inc()
		return d
	}
	d.Message = msg
	return d
}

func (tq *topicQueue) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	defer tq.joinOnce.Do(func() { close(tq.joined) })
	tq.member.Store(true)
	tq.mu.Lock()
	defer tq.mu.Unlock()
	for _, p := range assigned[tq.topic] {
		if _, owned := tq.epochs[p]; owned {
			continue // still ours: keep what is buffered and leased
		}
		epoch := tq.epoch.Add(1)
		tq.ledger.Assign(p, epoch)
		tq.epochs[p] = epoch
		tq.expect[p] = -1
	}
}

// adjustOffsets learns where each newly assigned partition starts, so a
// start past it (retention) can be reported as a gap; a partition this
// member already holds resumes where its fetching got to, not at the
// committed offset, so nothing is fetched (and served) twice.
func (tq *topicQueue) adjustOffsets(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	for p, o := range offsets[tq.topic] {
		if next := tq.expect[p]; next >= 0 {
			offsets[tq.topic][p] = kgo.NewOffset().At(next)
			continue
		}
		if at := o.EpochOffset().Offset; at >= 0 {
			tq.expect[p] = at
		}
	}
	return offsets, nil
}

// revoked waits (bounded) for leased deliveries to be acknowledged (ack=auto
// responses being written, ack=manual clients acknowledging), commits
// everything acknowledged, with the offsets acknowledged beyond each
// commit for the next owner (queue_handover.go), and forgets the
// partitions.
func (tq *topicQueue) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	parts := revoked[tq.topic]
	for _, p := range parts {
		tq.ledger.Freeze(p)
	}
	deadline := time.Now().Add(tq.q.qcfg.SettleTimeout)
	for _, p := range parts {
		for tq.ledger.Settling(p) > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	tq.commitMu.Lock()
	defer tq.commitMu.Unlock()
	final, meta := map[int32]int64{}, map[int32]string{}
	for p, o := range tq.ledger.Commits() {
		final[p] = o
	}
	for _, p := range parts {
		if o, done, ok := tq.ledger.Handover(p); ok {
			final[p] = o
			if m := ledger.EncodeDone(done, maxHandover); m != "" {
				meta[p] = m
			}
		}
		tq.ledger.Revoke(p)
	}
	tq.forget(parts)
	if err := tq.commitHandover(ctx, final, meta); err != nil {
		tq.q.log.Error("commit on revocation failed; those records will be served again", "topic", tq.topic, "err", err)
	}
}

// lost drops partitions without committing: another member owns them now.
// franz-go calls it when the group session fails (no broker answered the
// heartbeats within the session timeout, the member was fenced): this
// member is out of the group until its next assignment.
func (tq *topicQueue) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	tq.member.Store(false)
	for _, p := range lost[tq.topic] {
		tq.ledger.Revoke(p)
	}
	tq.forget(lost[tq.topic])
}

func (tq *topicQueue) forget(parts []int32) {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	for _, p := range parts {
		delete(tq.epochs, p)
		delete(tq.expect, p)
		delete(tq.stable, p)
	}
}

// expireLoop releases expired leases.
func (tq *topicQueue) expireLoop(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			tq.ledger.Expire(now)
		}
	}
}

func (tq *topicQueue) takeGaps() []domain.Gap {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	g := tq.gaps
	tq.gaps = nil
	return g
}
