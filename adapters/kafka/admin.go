package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// TopicAdmin creates kchat's topics with kadm, and describes the pipeline
// topics.
type TopicAdmin struct {
	cl      *kgo.Client
	adm     *kadm.Client
	cfg     Config
	log     *slog.Logger
	topics  []Topic
	ensured atomic.Bool
}

var _ ports.TopicAdmin = (*TopicAdmin)(nil)

// NewTopicAdmin returns an admin on cl that creates topics (of several with
// one name, the first counts).
func NewTopicAdmin(cl *kgo.Client, cfg Config, log *slog.Logger, topics ...Topic) *TopicAdmin {
	a := &TopicAdmin{cl: cl, adm: kadm.NewClient(cl), cfg: cfg, log: log}
	seen := map[string]bool{}
	for _, t := range topics {
		if !seen[t.Name] {
			seen[t.Name] = true
			a.topics = append(a.topics, t)
		}
	}
	return a
}

func (a *TopicAdmin) names() []string {
	names := make([]string, len(a.topics))
	for i, t := range a.topics {
		names[i] = t.Name
	}
	return names
}

// Ensured reports whether EnsureTopics has succeeded.
func (a *TopicAdmin) Ensured() bool { return a.ensured.Load() }

// retention is t's retention.ms: its own, or the Config's.
func (a *TopicAdmin) retention(t Topic) time.Duration {
	if t.Retention > 0 {
		return t.Retention
	}
	return a.cfg.Retention
}

// wantConfigs are the topic configs kchat creates t with.
func (a *TopicAdmin) wantConfigs(t Topic) map[string]*string {
	retention := strconv.FormatInt(a.retention(t).Milliseconds(), 10)
	policy := "delete"
	configs := map[string]*string{"retention.ms": &retention, "cleanup.policy": &policy}
	if t.Retention > 0 {
		configs["segment.ms"] = &retention
	}
	return configs
}

// EnsureTopics creates missing topics and warns about existing ones whose
// partitions or configs differ from the wanted ones; it never changes an
// existing topic.
func (a *TopicAdmin) EnsureTopics(ctx context.Context) error {
	// One request per partition count and retention: kadm creates a batch
	// of topics alike.
	type kind struct {
		partitions int
		retention  time.Duration
	}
	var kinds []kind
	byKind := map[kind][]string{}
	for _, t := range a.topics {
		k := kind{t.Partitions, t.Retention}
		if _, ok := byKind[k]; !ok {
			kinds = append(kinds, k)
		}
		byKind[k] = append(byKind[k], t.Name)
	}
	var existing []Topic
	for _, k := range kinds {
		n, want := k.partitions, Topic{Partitions: k.partitions, Retention: k.retention}
		resp, err := a.adm.CreateTopics(ctx, int32(n), int16(a.cfg.ReplicationFactor), a.wantConfigs(want), byKind[k]...)
		if err != nil {
			return fmt.Errorf("kafka create topics: %w: %w", domain.ErrUnavailable, err)
		}
		for _, r := range resp.Sorted() {
			switch {
			case r.Err == nil:
				a.log.InfoContext(ctx, "created topic", "topic", r.Topic, "partitions", n, "replication_factor", a.cfg.ReplicationFactor)
			case errors.Is(r.Err, kerr.TopicAlreadyExists):
				existing = append(existing, Topic{Name: r.Topic, Partitions: n, Retention: k.retention})
			default:
				return fmt.Errorf("kafka create topic %s: %w (%s)", r.Topic, r.Err, r.ErrMessage)
			}
		}
	}
	if len(existing) > 0 {
		a.warnDrift(ctx, existing)
	}
	if err := a.awaitMetadata(ctx); err != nil {
		return err
	}
	a.ensured.Store(true)
	return nil
}

// awaitMetadata waits until every topic shows all its partitions with a
// leader in the metadata: a broker acknowledges a creation before it can
// serve the new topic.
func (a *TopicAdmin) awaitMetadata(ctx context.Context) error {
	all := a.names()
	if len(all) == 0 {
		return nil // ListTopics of nothing would list every topic
	}
	for {
		details, err := a.adm.ListTopics(ctx, all...)
		if err == nil && usable(details, all) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka topics not visible in metadata: %w: %w", domain.ErrUnavailable, errors.Join(err, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func usable(details kadm.TopicDetails, names []string) bool {
	for _, name := range names {
		d, ok := details[name]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return false
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false
			}
		}
	}
	return true
}

// warnDrift logs every way an existing topic differs from what kchat would
// have created. Failing to look is only logged: the topics exist.
func (a *TopicAdmin) warnDrift(ctx context.Context, topics []Topic) {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	infos, err := a.describe(ctx, names)
	if err != nil {
		a.log.WarnContext(ctx, "cannot check existing topics' configuration", "err", err)
		return
	}
	for i, info := range infos {
		if want := topics[i].Partitions; info.Partitions != want {
			a.log.WarnContext(ctx, "existing topic has a different partition count; left as it is",
				"topic", info.Name, "has", info.Partitions, "want", want)
		}
		if want := a.retention(topics[i]); info.Retention != want {
			a.log.WarnContext(ctx, "existing topic has a different retention.ms; left as it is",
				"topic", info.Name, "has", info.Retention.Milliseconds(), "want", want.Milliseconds())
		}
		if info.CleanupPolicy != "delete" {
			a.log.WarnContext(ctx, "existing topic has a different cleanup.policy; left as it is",
				"topic", info.Name, "has", info.CleanupPolicy, "want", "delete")
		}
	}
}

// DescribeTopics describes the three pipeline topics, whatever topics the
// admin creates.
func (a *TopicAdmin) DescribeTopics(ctx context.Context) ([]domain.TopicInfo, error) {
	names := make([]string, len(domain.MessageTypes))
	for i, t := range domain.MessageTypes {
		names[i] = domain.TopicName(a.cfg.TopicPrefix, t)
	}
	infos, err := a.describe(ctx, names)
	if err != nil {
		return nil, err
	}
	for i := range infos {
		infos[i].Type = domain.MessageTypes[i]
	}
	return infos, nil
}

// describe describes topics, in their order; the infos carry no Type.
func (a *TopicAdmin) describe(ctx context.Context, topics []string) ([]domain.TopicInfo, error) {
	details, err := a.adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka list topics: %w: %w", domain.ErrUnavailable, err)
	}
	configs, err := a.adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka describe topic configs: %w: %w", domain.ErrUnavailable, err)
	}
	infos := make([]domain.TopicInfo, 0, len(topics))
	for _, name := range topics {
		d, ok := details[name]
		if !ok || d.Err != nil {
			if d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				return nil, fmt.Errorf("kafka topic %s: %w: %w", name, domain.ErrUnavailable, d.Err)
			}
			return nil, fmt.Errorf("kafka topic %s: %w", name, domain.ErrNotFound)
		}
		info := domain.TopicInfo{
			Name:       name,
			Partitions: len(d.Partitions),
		}
		for _, p := range d.Partitions {
			info.ReplicationFactor = len(p.Replicas)
			break
		}
		rc, err := configs.On(name, nil)
		if err != nil || rc.Err != nil {
			return nil, fmt.Errorf("kafka topic %s configs: %w: %w", name, domain.ErrUnavailable, errors.Join(err, rc.Err))
		}
		for _, c := range rc.Configs {
			if c.Value == nil {
				continue
			}
			switch c.Key {
			case "retention.ms":
				ms, _ := strconv.ParseInt(*c.Value, 10, 64)
				info.Retention = time.Duration(ms) * time.Millisecond
			case "cleanup.policy":
				info.CleanupPolicy = *c.Value
			}
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// Run ensures the topics, retrying with backoff until the broker answers or
// ctx ends. It lets a service start while Kafka is still down.
func (a *TopicAdmin) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.EnsureTopics(attemptCtx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return nil //nolint:nilerr // shutting down before the broker answered is not a failure
		}
		a.log.WarnContext(ctx, "kafka topics not ensured yet; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Ready reports whether the topics are ensured and a broker answers a
// request now (ping).
func (a *TopicAdmin) Ready(ctx context.Context) error {
	if !a.ensured.Load() {
		return fmt.Errorf("kafka topics not created yet: %w", domain.ErrUnavailable)
	}
	return ping(ctx, a.cl)
}
