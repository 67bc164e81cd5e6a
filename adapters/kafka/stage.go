package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/domain"
)

// keyMismatches is the stages' count of records signed with another
// KCHAT_ANSWER_KEY, registered once per registry (each stage has a label).
func keyMismatches(m *Metrics) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kchat", Subsystem: "answerer", Name: "answer_key_mismatch_total",
		Help: "Records signed with another KCHAT_ANSWER_KEY, set aside: some process of the deployment has a different key.",
	}, []string{"stage"})
	if m == nil || m.reg == nil {
		return c
	}
	var dup prometheus.AlreadyRegisteredError
	if err := m.reg.Register(c); errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing
		}
	}
	return c
}

// maxRetryBackoff caps the wait between retries of a failed batch, so the
// pipeline resumes soon after a dependency comes back: a retry also waits
// for its batch to be fetched again (a round trip since the stage fetches
// only when it polls; up to the fetch wait, 500 ms, before), and the
// chaos test of a Redis outage asks for answers within 2 s of its return
// (docs/reliability.md, "The gateway's fault scenarios"). With 2 s, retries
// came every 2.8 s and an answer 2.3 s after Redis was back.
const maxRetryBackoff = 500 * time.Millisecond

// sessionRestartWait is the pause before a failed transactional session is
// started again.
const sessionRestartWait = 2 * time.Second

// Transform turns one input message into the message a stage publishes.
// An error wrapping domain.ErrUnavailable makes the stage retry the batch
// later; any other error sends the record to the dead-letter topic.
type Transform func(ctx context.Context, in domain.Message) (domain.Message, error)

// Stage is one consume-transform-produce stage run in Kafka transactions
// (franz-go's GroupTransactSession): the output records and the input
// offsets commit together, so across crashes no output is lost or
// duplicated for readers at read_committed.
type Stage struct {
	name      string
	in        string
	dlq       string
	outPrefix string
	transform Transform
	group     string
	base      []kgo.Opt // seeds, client id and logs
	opts      []kgo.Opt // base, metrics and the transactional group's options
	cfg       StageConfig
	log       *slog.Logger
	// otherKey counts records signed with another KCHAT_ANSWER_KEY.
	otherKey prometheus.Counter
	// tracer starts the stage's span per record; hops times its hop (hop)
	// from each input record to the commit of its output.
	tracer trace.Tracer
	hops   *tracing.Hops
	hop    string
}

// NewStage returns a stage named name reading typ's topic.
func NewStage(name string, typ domain.MessageType, cfg Config, scfg StageConfig, log *slog.Logger, metrics *Metrics, transform Transform) *Stage {
	in := domain.TopicName(cfg.TopicPrefix, typ)
	ccfg := cfg
	ccfg.ClientID = cfg.ClientID + "-answerer-" + name
	s := &Stage{
		name: name, in: in, dlq: DeadLetterTopic(in), outPrefix: cfg.TopicPrefix,
		transform: transform, group: scfg.Group + "-" + name, cfg: scfg, log: log.With("stage", name),
		otherKey: keyMismatches(metrics).WithLabelValues(name),
		tracer:   metrics.tracer(), hops: metrics.hopTimer(), hop: hopOf(typ),
	}
	// The short-lived clients that fence and leave have no metrics: a
	// kprom.Metrics serves one client at a time.
	s.base = clientOpts(ccfg, s.log, nil)
	s.opts = append(clientOpts(ccfg, s.log, metrics.client("answerer-"+name)),
		kgo.TransactionalID(s.group+"-"+scfg.Instance),
		kgo.TransactionTimeout(cmp.Or(scfg.TransactionTimeout, DefaultTransactionTimeout)),
		kgo.ConsumerGroup(s.group),
		// Static membership: a replica restarted under its instance id
		// takes its partitions back at once, with no rebalance, instead
		// of waiting out the session of the process it replaces.
		kgo.InstanceID(scfg.Instance),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) { s.fenceDeparted(ctx, cl) }),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(scfg.SessionTimeout),
		// A member learns of a rebalance (a replica's session expired)
		// from its next heartbeat: at most a second rather than 3 s.
		kgo.HeartbeatInterval(min(time.Second, scfg.SessionTimeout/3)),
		// A fetch goes out only when the loop polls (franz-go's strict
		// pull). By default the client fetches again as soon as a poll
		// takes its records, while the batch is processed: that fetch
		// comes back with the first records committed after it, the next
		// poll takes only those, and whatever came later waits one batch
		// more. Pulling costs a fetch round trip per batch and takes all
		// that is committed by then (docs/performance.md, "Exactly-once
		// without the wait").
		kgo.MaxConcurrentFetches(0),
		// How long an idle stage's fetch waits at the broker. It does not
		// delay a record: the broker answers a waiting read_committed
		// fetch as soon as a commit makes records readable (measured: 500
		// ms and 20 ms gave the same hop times). Partitions taken over
		// join at the next fetch, within it (5 s by franz-go's default).
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30*time.Second),
	)
	return s
}

// hopOf is the hop a stage reading typ makes.
func hopOf(typ domain.MessageType) string {
	if typ == domain.TypeQuery {
		return tracing.HopQueryToPrompt
	}
	return tracing.HopPromptToAnswer
}

// Run processes batches until ctx ends, then leaves the group. A batch
// whose transform reports domain.ErrUnavailable is aborted and retried
// with backoff; the stream does not move past it. If the transactional
// client fails for good, a new one takes over (fencing the old
// transactional state) after a pause. A session timeout the broker refuses
// ends Run with an error naming its variable.
func (s *Stage) Run(ctx context.Context) error {
	defer s.leave()
	for ctx.Err() == nil {
		err := s.session(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopping: the session ended with the context
		}
		if err == nil {
			return nil
		}
		var refused *refusedError
		if errors.As(err, &refused) {
			return err
		}
		s.log.Error("transactional session failed; starting a new one", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sessionRestartWait):
		}
	}
	return nil
}

// session runs one GroupTransactSession until ctx ends (nil) or the
// session fails for good (an error).
func (s *Stage) session(ctx context.Context) error {
	sess, err := kgo.NewGroupTransactSession(s.opts...)
	if err != nil {
		return fmt.Errorf("stage %s: %w", s.name, err)
	}
	defer sess.Close()
	if err := s.initProducer(ctx, sess.Client()); err != nil {
		return err
	}
	backoff := s.cfg.RetryBackoff
	for ctx.Err() == nil {
		fetches := sess.PollRecords(ctx, 100)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		var refused error
		fetches.EachError(func(t string, p int32, err error) {
			switch {
			case errors.Is(err, kerr.InvalidSessionTimeout):
				refused = &refusedError{fmt.Errorf("the broker refused KCHAT_ANSWERER_SESSION_TIMEOUT=%s: it must lie within the broker's group.min.session.timeout.ms (6s by default) and group.max.session.timeout.ms: %w", s.cfg.SessionTimeout, err)}
			case !errors.Is(err, context.Canceled):
				s.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		if refused != nil {
			return refused
		}
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		err := s.process(ctx, sess, recs)
		if err == nil {
			backoff = s.cfg.RetryBackoff
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, domain.ErrUnavailable) {
			return fmt.Errorf("stage %s: %w", s.name, err)
		}
		s.log.Warn("batch aborted; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, max(maxRetryBackoff, s.cfg.RetryBackoff))
	}
	return nil
}

// process transforms one batch in one transaction. It returns an error
// wrapping domain.ErrUnavailable when the batch was aborted and must be
// retried, and another error when the transactional client failed for good.
func (s *Stage) process(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record) error {
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	outs, failed := s.transformAll(ctx, recs)
	// Produced only after every transform: the broker's transaction, and
	// its timeout, begins with the first record, so it spans the produce
	// and the commit, never a slow generator.
	if failed == nil {
		// In input order, so each output partition keeps its sessions' order.
		for _, out := range outs {
			sess.Produce(ctx, out, nil) // failures surface in End
		}
	}
	try := kgo.TryCommit
	if failed != nil {
		try = kgo.TryAbort
	}
	committed, err := sess.End(ctx, try)
	switch {
	case err != nil:
		return fmt.Errorf("end transaction: %w", err)
	case failed != nil:
		return failed
	case !committed:
		return fmt.Errorf("transaction aborted (rebalance or commit failure): %w", domain.ErrUnavailable)
	}
	for _, r := range recs {
		s.hops.Hop(s.hop, r.Timestamp)
	}
	return nil
}

// transformAll handles a batch: the records of one key (a session) one
// after the other, in order, and different keys concurrently, at most
// cfg.Concurrency at once, since each record waits on the session store
// and retrieval far more than it computes. outs[i] is recs[i]'s output;
// the error is the first failure (the batch is then aborted whole, and
// redone: the transforms' side effects are idempotent).
func (s *Stage) transformAll(ctx context.Context, recs []*kgo.Record) (outs []*kgo.Record, failed error) {
	outs = make([]*kgo.Record, len(recs))
	byKey := map[string][]int{}
	var keys []string
	for i, r := range recs {
		k := string(r.Key)
		if _, seen := byKey[k]; !seen {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		slot = make(chan struct{}, max(1, s.cfg.Concurrency))
	)
	for _, k := range keys {
		slot <- struct{}{}
		wg.Go(func() {
			defer func() { <-slot }()
			for _, i := range byKey[k] {
				out, err := s.handleRetrying(ctx, recs[i])
				if err != nil {
					mu.Lock()
					failed = cmp.Or(failed, err)
					mu.Unlock()
					return
				}
				outs[i] = out
			}
		})
	}
	wg.Wait()
	return outs, failed
}

// handleRetrying handles r, retrying a passing outage in place a few times
// (100, 200, 400 ms) before giving the batch up.
func (s *Stage) handleRetrying(ctx context.Context, r *kgo.Record) (*kgo.Record, error) {
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		out, err := s.handle(ctx, r)
		if err == nil || attempt == 3 || ctx.Err() != nil {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// handle returns the record to produce for r: the transformed message, or
// r itself routed to the dead-letter topic with the reason.
//
// The record's span (the stage's name, a child of the span that fetched r,
// itself a child of the one that published it) is the parent of what the
// transform does and of the output's publish span.
func (s *Stage) handle(ctx context.Context, r *kgo.Record) (_ *kgo.Record, err error) {
	if r.Context != nil {
		// The parent is the fetch's span; the deadline and cancellation
		// stay the stage's.
		ctx = trace.ContextWithSpan(ctx, trace.SpanFromContext(r.Context))
	}
	ctx, span := s.tracer.Start(ctx, s.name, trace.WithSpanKind(trace.SpanKindConsumer))
	recording := span.IsRecording() // with tracing off, no attribute is built
	if recording {
		span.SetAttributes(attribute.String("messaging.destination.name", r.Topic), attribute.String("kchat.session_id", string(r.Key)))
	}
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	msg, err := DecodeRecord(r)
	if err == nil {
		if recording {
			span.SetAttributes(attribute.String("kchat.correlation_id", msg.CorrelationID()))
		}
		var out domain.Message
		out, err = s.transform(ctx, msg)
		if err == nil {
			out.Trace.AskedAt = msg.Trace.AskedAt
			out.Reply = msg.Reply // the prompt carries it on; the answer goes there
			rec, err := NewRecord(domain.TopicName(s.outPrefix, out.Type), out)
			if rec != nil {
				rec.Context = ctx
			}
			return rec, err
		}
		if errors.Is(err, domain.ErrUnavailable) || ctx.Err() != nil {
			return nil, err
		}
	}
	var mismatch *domain.KeyMismatchError
	if errors.As(err, &mismatch) {
		// Loud: replicas that do not share the key set every record aside.
		s.otherKey.Inc()
		s.log.ErrorContext(ctx, fmt.Sprintf("record signed with another KCHAT_ANSWER_KEY (key id %s, ours %s): every process must share the key; sent to the dead-letter topic", mismatch.Theirs, mismatch.Ours),
			"topic", r.Topic, "partition", r.Partition, "offset", r.Offset)
	} else {
		s.log.WarnContext(ctx, "record sent to the dead-letter topic", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
	}
	return &kgo.Record{
		Topic: s.dlq, Key: r.Key, Value: r.Value,
		Headers: append(append([]kgo.RecordHeader(nil), r.Headers...),
			kgo.RecordHeader{Key: "kchat-dlq-reason", Value: []byte(err.Error())},
			kgo.RecordHeader{Key: "kchat-dlq-source", Value: []byte(fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset))}),
	}, nil
}
