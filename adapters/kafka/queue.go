package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// QueueConfig configures the consumer service's group consumers.
type QueueConfig struct {
	// Group names the consumer group; each topic gets its own group,
	// Group + "-" + type, so one topic's rebalances never stall another's.
	Group string `env:"KCHAT_CONSUMER_GROUP" envDefault:"kchat-consumer"`
	// PartitionBuffer bounds the records a partition holds in memory
	// (buffered, leased and done but not yet committable).
	PartitionBuffer int `env:"KCHAT_CONSUMER_PARTITION_BUFFER" envDefault:"500"`
	// SettleTimeout is how long a revocation waits for auto-acknowledged
	// deliveries whose responses are being written.
	SettleTimeout time.Duration `env:"KCHAT_CONSUMER_SETTLE_TIMEOUT" envDefault:"5s"`
	// SessionTimeout is how long the group waits for a silent member (one
	// that crashed) before handing its partitions to the others.
	SessionTimeout time.Duration `env:"KCHAT_CONSUMER_SESSION_TIMEOUT" envDefault:"10s"`
	// MaxInFlight bounds, per partition, the auto-acknowledged messages
	// handed out beyond the last durable commit: after a crash (kill -9) at
	// most this many per partition are served again.
	MaxInFlight int `env:"KCHAT_CONSUMER_MAX_IN_FLIGHT" envDefault:"32"`
}

// DefaultQueueConfig is the configuration with every default applied.
func DefaultQueueConfig() QueueConfig {
	return QueueConfig{Group: "kchat-consumer", PartitionBuffer: 500, SettleTimeout: 5 * time.Second, SessionTimeout: 10 * time.Second, MaxInFlight: 32}
}

// Validate reports the first wrong setting, naming its variable.
func (c QueueConfig) Validate() error {
	switch {
	case c.Group == "":
		return errors.New("KCHAT_CONSUMER_GROUP must not be empty")
	case c.PartitionBuffer < 1 || c.PartitionBuffer > 100000:
		return fmt.Errorf("KCHAT_CONSUMER_PARTITION_BUFFER must be between 1 and 100000, got %d", c.PartitionBuffer)
	case c.SettleTimeout < 0 || c.SettleTimeout > time.Minute:
		return fmt.Errorf("KCHAT_CONSUMER_SETTLE_TIMEOUT must be between 0s and 1m, got %s", c.SettleTimeout)
	case c.MaxInFlight < 1 || c.MaxInFlight > 100000:
		return fmt.Errorf("KCHAT_CONSUMER_MAX_IN_FLIGHT must be between 1 and 100000, got %d", c.MaxInFlight)
	case c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute:
		// Kafka's default group.min.session.timeout.ms is 6 s.
		return fmt.Errorf("KCHAT_CONSUMER_SESSION_TIMEOUT must be between 6s and 5m, got %s", c.SessionTimeout)
	}
	return nil
}

// Queue is the Kafka ports.MessageQueue: one long-lived group consumer per
// topic, whose fetched records are handed out through a domain.Ledger.
type Queue struct {
	cfg     Config
	qcfg    QueueConfig
	log     *slog.Logger
	metrics *Metrics
	topics  map[domain.MessageType]*topicQueue

	acksTopic  string
	forwarder  *kgo.Client // produces forwarded acknowledgements
	acksReader *kgo.Client // reads them, group-less, from the end
}

var _ ports.MessageQueue = (*Queue)(nil)

// topicQueue is the group consumer of one topic.
type topicQueue struct {
	q      *Queue
	typ    domain.MessageType
	topic  string
	group  string
	cl     *kgo.Client
	adm    *kadm.Client
	ledger *domain.Ledger

	epoch     atomic.Uint64
	warm      atomic.Bool   // the backlog at startup is known to be buffered or empty
	joined    chan struct{} // closed at the first assignment (possibly empty)
	joinOnce  sync.Once
	checkMu   sync.Mutex // serialises the one backlog check after joining
	checked   bool       // guarded by checkMu
	started   time.Time
	commitMu  sync.Mutex // serialises commits: the loop's and the revoker's
	commitReq chan struct{}

	mu     sync.Mutex // guards the fields below
	epochs map[int32]uint64
	expect map[int32]int64 // next offset each partition should fetch; -1 unknown
	gaps   []domain.Gap
	paused map[int32]bool
}

// NewQueue creates the group consumers (one client per topic). They do not
// dial until Run.
func NewQueue(cfg Config, qcfg QueueConfig, log *slog.Logger, metrics *Metrics) (*Queue, error) {
	q := &Queue{cfg: cfg, qcfg: qcfg, log: log, metrics: metrics, topics: map[domain.MessageType]*topicQueue{}, acksTopic: AcksTopic(cfg.TopicPrefix)}
	for _, typ := range domain.MessageTypes {
		tq := &topicQueue{
			q: q, typ: typ,
			topic:     domain.TopicName(cfg.TopicPrefix, typ),
			group:     qcfg.Group + "-" + string(typ),
			ledger:    domain.NewLedger(string(typ), qcfg.MaxInFlight),
			commitReq: make(chan struct{}, 1),
			joined:    make(chan struct{}),
			started:   time.Now(),
			epochs:    map[int32]uint64{},
			expect:    map[int32]int64{},
			paused:    map[int32]bool{},
		}
		opts := []kgo.Opt{
			kgo.ConsumerGroup(tq.group),
			kgo.ConsumeTopics(tq.topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.FetchMaxWait(time.Second),
			kgo.SessionTimeout(qcfg.SessionTimeout),
			kgo.HeartbeatInterval(min(3*time.Second, qcfg.SessionTimeout/3)),
			kgo.OnPartitionsAssigned(tq.assigned),
			kgo.AdjustFetchOffsetsFn(tq.adjustOffsets),
			kgo.OnPartitionsRevoked(tq.revoked),
			kgo.OnPartitionsLost(tq.lost),
			kgo.WithHooks(joinCounter{metrics, tq.topic}),
		}
		ccfg := cfg
		ccfg.ClientID = cfg.ClientID + "-consumer-" + string(typ)
		cl, err := NewClient(ccfg, log.With("topic", tq.topic), metrics.client("consumer-"+string(typ)), opts...)
		if err != nil {
			q.close()
			return nil, err
		}
		tq.cl, tq.adm = cl, kadm.NewClient(cl)
		q.topics[typ] = tq
	}
	acfg := cfg
	acfg.ClientID = cfg.ClientID + "-consumer-acks"
	forwarder, err := NewClient(acfg, log, metrics.client("consumer-acks"),
		// From the start: older acknowledgements name other processes'
		// ledgers and match nothing here, and none sent after this process
		// issued a receipt can be missed.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second))
	if err != nil {
		q.close()
		return nil, err
	}
	q.forwarder, q.acksReader = forwarder, forwarder
	return q, nil
}

func (q *Queue) close() {
	for _, tq := range q.topics {
		tq.cl.Close()
	}
	if q.forwarder != nil {
		q.forwarder.Close()
	}
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

// Run consumes until ctx ends, then commits what was acknowledged and
// leaves the groups.
func (q *Queue) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, tq := range q.topics {
		wg.Go(func() { tq.poll(ctx) })
		wg.Go(func() { tq.commitLoop(ctx) })
		wg.Go(func() { tq.expireLoop(ctx) })
	}
	wg.Go(func() { q.readAcks(ctx) })
	wg.Wait()
	for _, tq := range q.topics {
		flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tq.commit(flushCtx)
		cancel()
		tq.cl.Close() // leaves the group; revoked() commits once more
	}
	q.forwarder.Close()
	return nil
}

// poll fetches records into the ledger, pausing partitions whose buffer is
// full.
func (tq *topicQueue) poll(ctx context.Context) {
	for ctx.Err() == nil {
		tq.applyPauses()
		pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		fetches := tq.cl.PollRecords(pctx, 4*tq.q.qcfg.PartitionBuffer)
		cancel()
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
	tq.mu.Unlock()
	if !assigned || len(recs) == 0 {
		return
	}
	offs := make([]int64, len(recs))
	items := make([]any, len(recs))
	for i, r := range recs {
		offs[i], items[i] = r.Offset, tq.delivery(r)
	}
	tq.ledger.Add(p, epoch, offs, items)
	tq.warm.Store(true)
}

// delivery decodes r; a record that is not an envelope is delivered
// flagged with its raw bytes.
func (tq *topicQueue) delivery(r *kgo.Record) domain.Delivery {
	d := domain.Delivery{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Timestamp: r.Timestamp}
	msg, err := DecodeValue(r.Value)
	if err != nil {
		d.Poison, d.Raw = err.Error(), r.Value
		tq.q.metrics.Poison.WithLabelValues(tq.topic).Inc()
		return d
	}
	d.Message = msg
	return d
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
		held := tq.ledger.Held(p)
		switch {
		case held >= tq.q.qcfg.PartitionBuffer && !tq.paused[p]:
			pause = append(pause, p)
			tq.paused[p] = true
		case held < tq.q.qcfg.PartitionBuffer/2+1 && tq.paused[p]:
			resume = append(resume, p)
			delete(tq.paused, p)
		}
	}
	if len(pause) > 0 {
		tq.cl.PauseFetchPartitions(map[string][]int32{tq.topic: pause})
	}
	if len(resume) > 0 {
		tq.cl.ResumeFetchPartitions(map[string][]int32{tq.topic: resume})
	}
}

func (tq *topicQueue) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	defer tq.joinOnce.Do(func() { close(tq.joined) })
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

// revoked waits (bounded) for deliveries whose responses are being written,
// commits everything acknowledged, and forgets the partitions.
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
	final := map[int32]int64{}
	for p, o := range tq.ledger.Commits() {
		final[p] = o
	}
	for _, p := range parts {
		if o, ok := tq.ledger.Revoke(p); ok {
			final[p] = o
		}
	}
	tq.forget(parts)
	if err := tq.commitOffsets(ctx, final); err != nil {
		tq.q.log.Error("commit on revocation failed; those records will be served again", "topic", tq.topic, "err", err)
	}
}

// lost drops partitions without committing: another member owns them now.
func (tq *topicQueue) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
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
	}
}

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
	ends.Each(func(end kadm.ListedOffset) {
		if !owned[end.Partition] {
			return
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

// startupGrace bounds how long the first calls after startup wait for the
// group to be joined and the backlog of its partitions to be fetched.
const startupGrace = 10 * time.Second

// Next leases up to req.Limit records, waiting up to req.Wait for the
// first. Until the startup backlog of this member's partitions is buffered,
// it waits for it even when req.Wait is 0, so the first call after startup
// is not empty when messages exist.
func (q *Queue) Next(ctx context.Context, req ports.NextRequest) (ports.Batch, error) {
	tq, ok := q.topics[req.Type]
	if !ok {
		return ports.Batch{}, &domain.ValidationError{Field: "type", Reason: fmt.Sprintf("unknown type %q", req.Type)}
	}
	deadline := time.Now().Add(req.Wait)
	for {
		if err := tq.checkWarm(ctx); err != nil {
			return ports.Batch{}, err
		}
		_, arrived := tq.ledger.Buffered()
		got := tq.ledger.Take(req.Limit, time.Now(), req.Lease, req.AutoAck)
		if len(got) > 0 {
			return ports.Batch{Deliveries: tq.deliveries(got), Gaps: tq.takeGaps()}, nil
		}
		until := deadline
		if !tq.warm.Load() {
			until = later(deadline, tq.started.Add(startupGrace))
		}
		left := time.Until(until)
		if left <= 0 {
			return ports.Batch{Gaps: tq.takeGaps()}, nil
		}
		joined := tq.joined
		if tq.warm.Load() {
			joined = nil
		} else {
			// Still starting: look again soon, assignments come in rounds.
			left = min(left, 100*time.Millisecond)
			select {
			case <-tq.joined:
				joined = nil // closed already: it would wake us at once
			default:
			}
		}
		timer := time.NewTimer(left)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ports.Batch{}, ctx.Err()
		case <-arrived:
		case <-joined:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

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

func (tq *topicQueue) deliveries(got []domain.Leased) []domain.Delivery {
	out := make([]domain.Delivery, len(got))
	for i, x := range got {
		d := x.Item.(domain.Delivery)
		d.Receipt = x.Receipt
		out[i] = d
	}
	return out
}

func (tq *topicQueue) takeGaps() []domain.Gap {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	g := tq.gaps
	tq.gaps = nil
	return g
}

// Ack acknowledges receipts; the commit follows asynchronously, coalesced
// with other acknowledgements.
func (q *Queue) Ack(ctx context.Context, receipts []string) error {
	var unknown, foreign []string
	for _, r := range receipts {
		tq := q.owner(r)
		switch {
		case tq != nil:
			unknown = append(unknown, tq.ledger.Ack([]string{r})...)
			tq.requestCommit()
		case receiptPattern.MatchString(r):
			foreign = append(foreign, r) // another replica's lease
		default:
			unknown = append(unknown, r)
		}
	}
	if len(foreign) > 0 {
		if err := q.forward(ctx, foreign); err != nil {
			return err
		}
	}
	if len(unknown) > 0 {
		return &domain.UnknownReceiptsError{Receipts: unknown}
	}
	return nil
}

// Release puts leased records back at the head of their partitions.
func (q *Queue) Release(_ context.Context, receipts []string) error {
	for _, r := range receipts {
		if tq := q.owner(r); tq != nil {
			tq.ledger.Release([]string{r})
		}
	}
	return nil
}

func (q *Queue) owner(receipt string) *topicQueue {
	for _, tq := range q.topics {
		if tq.ledger.Owns(receipt) {
			return tq
		}
	}
	return nil
}

// Browse reads up to limit records of typ from the beginning with a
// short-lived, group-less client: browsing never touches the group.
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
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(e.Topic, e.Partition)
		if e.Offset > s.Offset {
			from[e.Partition] = kgo.NewOffset().At(s.Offset)
			remaining[e.Partition] = e.Offset
		}
	})
	if len(from) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(q.cfg.Brokers...), kgo.ClientID(q.cfg.ClientID+"-browse"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tq.topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, fmt.Errorf("kafka browse client: %w", err)
	}
	defer cl.Close()
	var out []domain.Delivery
	for len(out) < limit && len(remaining) > 0 {
		fetches := cl.PollRecords(ctx, limit-len(out))
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("kafka browse %s: %w: %w", tq.topic, domain.ErrUnavailable, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if len(out) < limit {
				out = append(out, tq.delivery(r))
			}
			if r.Offset+1 >= remaining[r.Partition] {
				delete(remaining, r.Partition)
			}
		})
	}
	return out, nil
}

// Ready reports whether a broker answers.
func (q *Queue) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, tq := range q.topics {
		if _, err := tq.adm.BrokerMetadata(ctx); err != nil {
			return fmt.Errorf("kafka metadata: %w: %w", domain.ErrUnavailable, err)
		}
		return nil
	}
	return nil
}
