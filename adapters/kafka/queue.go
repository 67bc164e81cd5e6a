package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/internal/ledger"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Queue is the Kafka ports.MessageQueue: one long-lived group consumer per
// topic, whose fetched records are handed out through a ledger.Ledger.
type Queue struct {
	cfg     Config
	qcfg    QueueConfig
	log     *slog.Logger
	metrics *Metrics
	topics  map[domain.MessageType]*topicQueue
	signer  *ledger.Signer // signs and verifies every topic's receipts

	acksTopic  string
	acksAdmin  *TopicAdmin // creates acksTopic
	forwarder  *kgo.Client // produces forwarded acknowledgements and verdicts
	acksReader *kgo.Client // reads them, group-less, from the start
	replica    string      // names this replica in forwarded acknowledgements
	requests   atomic.Uint64
	pendingMu  sync.Mutex
	pending    map[string]*pendingAck // forwarded, awaiting verdicts, by request id

	otherKeyLog, forgedLog throttle

	browser    *kgo.Client   // group-less, for Browse
	browseSlot chan struct{} // one browse at a time on browser
}

var _ ports.MessageQueue = (*Queue)(nil)

// NewQueue creates the group consumers (one client per topic). They do not
// dial until Run.
func NewQueue(cfg Config, qcfg QueueConfig, log *slog.Logger, metrics *Metrics) (*Queue, error) {
	signer, err := ledger.NewSigner(qcfg.Group, []byte(qcfg.ReceiptKey))
	if err != nil {
		return nil, fmt.Errorf("KCHAT_RECEIPT_KEY: %w", err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	acks := AcksTopic(cfg)
	q := &Queue{
		cfg: cfg, qcfg: qcfg, log: log, metrics: metrics,
		topics:     map[domain.MessageType]*topicQueue{},
		signer:     signer,
		acksTopic:  acks.Name,
		replica:    hex.EncodeToString(id[:]),
		pending:    map[string]*pendingAck{},
		browseSlot: make(chan struct{}, 1),
	}
	for _, typ := range domain.MessageTypes {
		tq, err := newTopicQueue(q, typ)
		if err != nil {
			q.close()
			return nil, err
		}
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
	q.acksAdmin = NewTopicAdmin(forwarder, cfg, log, acks)
	if q.browser, err = newBrowser(cfg, log, metrics); err != nil {
		q.close()
		return nil, err
	}
	return q, nil
}

func (q *Queue) close() {
	for _, tq := range q.topics {
		tq.cl.Close()
	}
	if q.forwarder != nil {
		q.forwarder.Close()
	}
	if q.browser != nil {
		q.browser.Close()
	}
}

// Run consumes until ctx ends, then commits what was acknowledged and
// leaves the groups.
func (q *Queue) Run(ctx context.Context) error {
	// Forwarded acknowledgements are still read while the groups are left:
	// a client whose replica is stopping acknowledges its leases through
	// another one, and the revocation waits for them (queue_handover.go).
	acksCtx, stopAcks := context.WithCancel(context.WithoutCancel(ctx))
	acksDone := make(chan struct{})
	go func() { q.readAcks(acksCtx); close(acksDone) }()
	var wg sync.WaitGroup
	for _, tq := range q.topics {
		wg.Go(func() { tq.poll(ctx) })
		wg.Go(func() { tq.commitLoop(ctx) })
		wg.Go(func() { tq.expireLoop(ctx) })
	}
	wg.Wait()
	for _, tq := range q.topics {
		flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tq.commit(flushCtx)
		cancel()
		tq.cl.Close() // leaves the group; revoked() commits once more
	}
	stopAcks()
	<-acksDone
	q.forwarder.Close()
	q.browser.Close()
	return nil
}

// Next leases up to req.Limit records, waiting up to req.Wait for the
// first. Until the startup backlog of this member's partitions is buffered,
// it waits for it even when req.Wait is 0, so the first call after startup
// is not empty when messages exist; past req.Wait, a record held back by a
// commit or a fetch on its way is waited for up to catchUp
// (queue_catchup.go). Once the startup grace is over, a topic queue that is
// not in its group (never joined: no broker answers; or its session lost)
// answers domain.ErrUnavailable, not "none": an empty topic and a dead
// broker must not look the same.
func (q *Queue) Next(ctx context.Context, req ports.NextRequest) (ports.Batch, error) {
	tq, ok := q.topics[req.Type]
	if !ok {
		return ports.Batch{}, &domain.ValidationError{Field: "type", Reason: fmt.Sprintf("unknown type %q", req.Type)}
	}
	deadline := time.Now().Add(req.Wait)
	var caughtUp time.Time // the end of the catch-up wait, once it began
	for {
		if err := tq.checkWarm(ctx); err != nil {
			return ports.Batch{}, err
		}
		if tq.warm.Load() && !tq.member.Load() {
			return ports.Batch{}, fmt.Errorf("kafka consumer group %s is not joined (no broker answers, or the session was lost): %w", tq.group, domain.ErrUnavailable)
		}
		_, arrived := tq.ledger.Buffered()
		took := time.Now()
		got := tq.ledger.Take(req.Limit, took, req.Lease, req.AutoAck)
		if len(got) > 0 {
			return ports.Batch{Deliveries: deliveries(got), Gaps: tq.takeGaps()}, nil
		}
		until := deadline
		if !tq.warm.Load() {
			until = later(deadline, tq.started.Add(startupGrace))
		}
		left := time.Until(until)
		if left <= 0 && tq.warm.Load() {
			held := tq.heldBack()
			if !held {
				tq.refreshStable(ctx, took) // "none" only if the broker agrees
				held = tq.heldBack()
			}
			if held {
				if caughtUp.IsZero() {
					caughtUp = time.Now().Add(catchUp)
				}
				left = time.Until(caughtUp)
			}
		}
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

func deliveries(got []ledger.Leased[domain.Delivery]) []domain.Delivery {
	out := make([]domain.Delivery, len(got))
	for i, x := range got {
		d := x.Item
		d.Receipt = x.Receipt
		out[i] = d
	}
	return out
}

// Ack acknowledges receipts; the commit follows asynchronously, coalesced
// with other acknowledgements. Receipts are verified before anything is
// applied or forwarded; one issued by another replica is forwarded to it
// and counts as acknowledged only once it says it applied it (acks.go).
func (q *Queue) Ack(ctx context.Context, receipts []string) error {
	refused := map[string]bool{}
	var foreign []string
	for _, r := range receipts {
		tq := q.verified(r)
		switch {
		case tq == nil:
			refused[r] = true
		case tq.ledger.Owns(r):
			if len(tq.ledger.Ack([]string{r})) > 0 {
				refused[r] = true
			} else {
				tq.acked()
			}
		default:
			foreign = append(foreign, r) // another replica's lease
		}
	}
	if len(foreign) > 0 {
		notApplied, err := q.forward(ctx, foreign)
		if err != nil {
			return err
		}
		for _, r := range notApplied {
			refused[r] = true
		}
	}
	if len(refused) == 0 {
		return nil
	}
	unknown := make([]string, 0, len(refused))
	for _, r := range receipts {
		if refused[r] {
			unknown = append(unknown, r)
			delete(refused, r)
		}
	}
	return &domain.UnknownReceiptsError{Receipts: unknown}
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

// verified returns the topic queue whose ledgers, in any replica, issued
// receipt: the one its tag names. nil if the receipt does not verify (made
// up, altered, another group's or another key's) or names no topic here.
func (q *Queue) verified(receipt string) *topicQueue {
	r, err := q.signer.Verify(receipt)
	var other *ledger.OtherKeyError
	switch {
	case errors.As(err, &other):
		// Not the client's doing but the deployment's: say so loudly.
		q.metrics.OtherReceiptKey.Inc()
		if q.otherKeyLog.allow(time.Second) {
			q.log.Error(fmt.Sprintf("a receipt was signed with another KCHAT_RECEIPT_KEY (key id %s, ours %s): every process must share the key",
				other.KeyID, other.Ours), "key_id", other.KeyID, "our_key_id", other.Ours)
		}
		return nil
	case errors.Is(err, ledger.ErrForged):
		if q.forgedLog.allow(time.Second) {
			q.log.Warn("refused a receipt whose signature does not match: made up, altered, or another consumer group's", "group", q.qcfg.Group)
		}
		return nil
	case err != nil:
		return nil
	}
	return q.topics[domain.MessageType(r.Tag)]
}

// owner returns the topic queue whose ledger in this replica issued
// receipt, or nil. It does not verify the receipt: a ledger acknowledges
// and releases only the exact receipts it issued.
func (q *Queue) owner(receipt string) *topicQueue {
	for _, tq := range q.topics {
		if tq.ledger.Owns(receipt) {
			return tq
		}
	}
	return nil
}

// throttle lets one log line of a kind through per interval: refused
// receipts are the client's to send, but the log is not theirs to fill.
type throttle struct{ last atomic.Int64 }

func (th *throttle) allow(every time.Duration) bool {
	now, last := time.Now().UnixNano(), th.last.Load()
	return now-last >= int64(every) && th.last.CompareAndSwap(last, now)
}

// Ready reports whether a broker answers a request now (ping).
func (q *Queue) Ready(ctx context.Context) error {
	return ping(ctx, q.forwarder)
}
