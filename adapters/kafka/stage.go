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
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// StageConfig configures the answerer's consume-transform-produce stages.
type StageConfig struct {
	// Group prefixes the stages' consumer groups (<group>-retrieve,
	// <group>-generate).
	Group string `env:"KCHAT_ANSWERER_GROUP" envDefault:"kchat-answerer"`
	// Instance names this process among the answerer's replicas. Each
	// replica needs its own; a restarted replica reuses its name, so its
	// transactional id fences the process it replaces.
	Instance string `env:"KCHAT_ANSWERER_INSTANCE"`
	// RetryBackoff is the wait before a failed batch (a dependency such as
	// Redis down) is tried again; it doubles up to maxRetryBackoff.
	RetryBackoff time.Duration `env:"KCHAT_ANSWERER_RETRY_BACKOFF" envDefault:"500ms"`
	// SessionTimeout is how long the group waits for a crashed replica.
	SessionTimeout time.Duration `env:"KCHAT_ANSWERER_SESSION_TIMEOUT" envDefault:"10s"`
	// Concurrency is how many sessions of a batch a stage transforms at
	// once (a session's own messages always go one after the other).
	Concurrency int `env:"KCHAT_ANSWERER_CONCURRENCY" envDefault:"16"`
}

// Validate reports the first wrong setting, naming its variable.
func (c StageConfig) Validate() error {
	switch {
	case c.Group == "":
		return errors.New("KCHAT_ANSWERER_GROUP must not be empty")
	case c.Instance == "":
		return errors.New("KCHAT_ANSWERER_INSTANCE must not be empty (it defaults to the host name)")
	case c.RetryBackoff < time.Millisecond || c.RetryBackoff > time.Minute:
		return fmt.Errorf("KCHAT_ANSWERER_RETRY_BACKOFF must be between 1ms and 1m, got %s", c.RetryBackoff)
	case c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute:
		return fmt.Errorf("KCHAT_ANSWERER_SESSION_TIMEOUT must be between 6s and 5m, got %s", c.SessionTimeout)
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return fmt.Errorf("KCHAT_ANSWERER_CONCURRENCY must be between 1 and 1024, got %d", c.Concurrency)
	}
	return nil
}

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
// pipeline resumes within seconds of a dependency coming back.
const maxRetryBackoff = 2 * time.Second

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
	opts      []kgo.Opt
	cfg       StageConfig
	log       *slog.Logger
	// otherKey counts records signed with another KCHAT_ANSWER_KEY.
	otherKey prometheus.Counter
}

// NewStage returns a stage named name reading typ's topic.
func NewStage(name string, typ domain.MessageType, cfg Config, scfg StageConfig, log *slog.Logger, metrics *Metrics, transform Transform) *Stage {
	in := domain.TopicName(cfg.TopicPrefix, typ)
	ccfg := cfg
	ccfg.ClientID = cfg.ClientID + "-answerer-" + name
	s := &Stage{
		name: name, in: in, dlq: DeadLetterTopic(in), outPrefix: cfg.TopicPrefix,
		transform: transform, cfg: scfg, log: log.With("stage", name),
		otherKey: keyMismatches(metrics).WithLabelValues(name),
	}
	s.opts = append(clientOpts(ccfg, s.log, metrics.client("answerer-"+name)),
		kgo.TransactionalID(scfg.Group+"-"+name+"-"+scfg.Instance),
		kgo.TransactionTimeout(time.Minute),
		kgo.ConsumerGroup(scfg.Group+"-"+name),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(scfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, scfg.SessionTimeout/3)),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30*time.Second),
	)
	return s
}

// Run processes batches until ctx ends. A batch whose transform reports
// domain.ErrUnavailable is aborted and retried with backoff; the stream
// does not move past it. If the transactional client fails for good, a
// new one takes over (fencing the old transactional state) after a pause.
func (s *Stage) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := s.session(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopping: the session ended with the context
		}
		if err == nil {
			return nil
		}
		s.log.Error("transactional session failed; starting a new one", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(maxRetryBackoff):
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
	backoff := s.cfg.RetryBackoff
	for ctx.Err() == nil {
		fetches := sess.PollRecords(ctx, 100)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
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
		backoff = min(2*backoff, maxRetryBackoff)
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
func (s *Stage) handle(ctx context.Context, r *kgo.Record) (*kgo.Record, error) {
	msg, err := DecodeValue(r.Value)
	if err == nil {
		var out domain.Message
		out, err = s.transform(ctx, msg)
		if err == nil {
			return NewRecord(domain.TopicName(s.outPrefix, out.Type), out)
		}
		if errors.Is(err, domain.ErrUnavailable) || ctx.Err() != nil {
			return nil, err
		}
	}
	var mismatch *domain.KeyMismatchError
	if errors.As(err, &mismatch) {
		// Loud: replicas that do not share the key set every record aside.
		s.otherKey.Inc()
		s.log.Error(fmt.Sprintf("record signed with another KCHAT_ANSWER_KEY (key id %s, ours %s): every process must share the key; sent to the dead-letter topic", mismatch.Theirs, mismatch.Ours),
			"topic", r.Topic, "partition", r.Partition, "offset", r.Offset)
	} else {
		s.log.Warn("record sent to the dead-letter topic", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
	}
	return &kgo.Record{
		Topic: s.dlq, Key: r.Key, Value: r.Value,
		Headers: append(append([]kgo.RecordHeader(nil), r.Headers...),
			kgo.RecordHeader{Key: "kchat-dlq-reason", Value: []byte(err.Error())},
			kgo.RecordHeader{Key: "kchat-dlq-source", Value: []byte(fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset))}),
	}, nil
}
