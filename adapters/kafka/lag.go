package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumerLag exports, per consumer group and partition of the topic the
// group reads, how many records the group has yet to consume:
// kchat_kafka_consumer_group_lag_records{group, topic, partition}. The
// services register the groups they own (Watch): the consumer service its
// groups per topic, the answerer its two stages' groups.
//
// What the lag counts. kchat's groups read at read_committed, so the end is
// the partition's last stable offset (ListCommittedOffsets), not its high
// watermark: records of a transaction still open are not readable yet, and
// are no lag. kadm's Client.Lag measures against the high watermark
// (ListEndOffsets), so it is not used. And a group that has read every
// record of a transactional topic has committed the offset after its last
// record, which is the offset of that transaction's commit marker: the end,
// one further, is past a record no reader ever gets, so any offset
// difference would show a lag of 1 for ever on every partition the
// answerer's stages write (and 2 when an aborted transaction's record and
// marker follow, and so on). The lag is therefore the number of records a
// read_committed reader would get between the commit and the end: a
// partition whose offsets differ is read from the commit (one Fetch per
// leader, at most lagPartitionBytes of it) and its control records and
// aborted transactions are not counted. Past what that read covers (a
// backlog of more than a few hundred records), offsets are counted as
// records, which may count a marker per transaction there: an error that
// matters only when the lag is already large.
//
// A partition the group has no committed offset on counts from the
// partition's start: kchat's groups begin at the earliest record when they
// have none, so every record there is one the group will consume (kadm
// counts it the same way). Burrow and kminion see only partitions with a
// commit and would leave it out, which would hide a group that consumes
// without committing, or never started. A commit below the partition's
// start (retention deleted records the group had not read) also counts from
// the start: the deleted records will never be consumed; the consumer
// counts them in kchat_consumer_retention_gaps_total when it meets the gap.
// Every partition of the topic gets a series, 0 when there is nothing to
// read; a topic that does not exist yet gets none.
//
// When it is read. At scrape time (Collect), bounded by LagTimeout, as
// kminion and kafka_exporter do, rather than by a loop polling Kafka: the
// value is as fresh as the scrape, nothing runs (and no request is sent)
// when nobody scrapes, and there is no goroutine to tie to the service's
// lifecycle. A scrape costs a metadata request, an offset fetch, two
// listings of offsets and a fetch per leader for the partitions that lag,
// a handful of small requests every 15 s or so. A scrape while Kafka is down
// or slow returns after LagTimeout without the lag series: /metrics never
// hangs or fails for it. Each read that failed, for every group or some,
// counts in kchat_kafka_consumer_group_lag_errors_total (the series it could
// not read are left out) and the first of an outage is logged at WARN; the
// next successful read is logged at INFO.
type ConsumerLag struct {
	cl      *kgo.Client
	adm     *kadm.Client
	log     *slog.Logger
	timeout time.Duration
	lag     *prometheus.Desc
	errs    prometheus.Counter
	failing atomic.Bool // the last read failed: its outage has been logged

	mu      sync.Mutex
	watched []lagTarget
}

// lagTarget is a group and the topic it reads.
type lagTarget struct{ group, topic string }

// LagTimeout bounds a scrape's reading of the lag (Prometheus scrapes every
// 15 s or so, and gives up after 10 s by default).
const LagTimeout = 2 * time.Second

// NewConsumerLag returns the lag of the groups Watch is given, read with cl
// (a process's producing client will do: the lag needs no group of its own)
// and registered on reg; timeout bounds each scrape (LagTimeout when 0).
func NewConsumerLag(cl *kgo.Client, reg prometheus.Registerer, log *slog.Logger, timeout time.Duration) *ConsumerLag {
	l := &ConsumerLag{
		cl: cl, adm: kadm.NewClient(cl), log: log, timeout: cmp.Or(timeout, LagTimeout),
		lag: prometheus.NewDesc("kchat_kafka_consumer_group_lag_records",
			"Records a consumer group has yet to consume on a partition: from its committed offset (or the partition's start, without one) to the last stable offset, transaction markers and aborted records not counted. Read at scrape time; absent when Kafka does not answer.",
			[]string{"group", "topic", "partition"}, nil),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "kafka", Name: "consumer_group_lag_errors_total",
			Help: "Scrapes that could not read the consumer group lag, wholly or in part (Kafka down or slow, a coordinator or leader not available); the series not read are left out.",
		}),
	}
	if reg != nil {
		reg.MustRegister(l)
	}
	return l
}

// Watch adds group, reading topic, to the groups whose lag is exported.
func (l *ConsumerLag) Watch(group, topic string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := lagTarget{group, topic}
	if !slices.Contains(l.watched, t) {
		l.watched = append(l.watched, t)
	}
}

// Describe implements prometheus.Collector.
func (l *ConsumerLag) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.lag
	l.errs.Describe(ch)
}

// Collect implements prometheus.Collector: it reads the lag now, within
// the timeout.
func (l *ConsumerLag) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	targets := slices.Clone(l.watched)
	l.mu.Unlock()
	if len(targets) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		lags, err := l.read(ctx, targets)
		cancel()
		for _, p := range lags {
			ch <- prometheus.MustNewConstMetric(l.lag, prometheus.GaugeValue, float64(p.records), p.group, p.topic, strconv.Itoa(int(p.partition)))
		}
		l.outcome(err, targets)
	}
	l.errs.Collect(ch)
}

// outcome counts a failed read, and logs the first of an outage and the
// read that ends it.
func (l *ConsumerLag) outcome(err error, targets []lagTarget) {
	if err == nil {
		if l.failing.CompareAndSwap(true, false) {
			l.log.Info("consumer group lag read again", "metric", "kchat_kafka_consumer_group_lag_records")
		}
		return
	}
	l.errs.Inc()
	if l.failing.CompareAndSwap(false, true) {
		groups := make([]string, len(targets))
		for i, t := range targets {
			groups[i] = t.group
		}
		l.log.Warn("cannot read the consumer group lag; its series are left out until Kafka answers (logged once per outage, counted in kchat_kafka_consumer_group_lag_errors_total)",
			"groups", groups, "timeout", l.timeout, "err", err)
	}
}

// partitionLag is the lag of a group on one partition.
type partitionLag struct {
	group, topic string
	partition    int32
	records      int64
}

// read returns the lag of every partition of targets that it could read,
// and an error if it could not read them all.
func (l *ConsumerLag) read(ctx context.Context, targets []lagTarget) ([]partitionLag, error) {
	var topics, groups []string
	for _, t := range targets {
		if !slices.Contains(topics, t.topic) {
			topics = append(topics, t.topic)
		}
		if !slices.Contains(groups, t.group) {
			groups = append(groups, t.group)
		}
	}
	// The offsets first: they always come from the groups' coordinators,
	// while the client may answer ListTopics from its metadata cache, so a
	// read of topics that do not exist yet would not notice Kafka is down.
	commits := l.adm.FetchManyOffsets(ctx, groups...)
	var errs []error
	for _, g := range groups {
		c := commits[g]
		switch {
		case errors.Is(c.Err, kerr.GroupIDNotFound):
			// No group, no commit (Kafka answers an empty list, kfake this).
			commits[g] = kadm.FetchOffsetsResponse{Group: g}
		case c.Err != nil:
			errs = append(errs, fmt.Errorf("kafka group %s offsets: %w", g, c.Err))
		}
	}
	if len(errs) == len(groups) {
		return nil, errors.Join(errs...)
	}
	details, err := l.adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka list topics: %w", err)
	}
	errs = append(errs, absentTopics(details, topics))
	var existing []string
	for _, name := range topics {
		if d, ok := details[name]; ok && d.Err == nil {
			existing = append(existing, name)
		}
	}
	if len(existing) == 0 {
		return nil, errors.Join(errs...)
	}
	starts, err := l.adm.ListStartOffsets(ctx, existing...)
	if err = partial(err); err != nil {
		return nil, fmt.Errorf("kafka list start offsets: %w", err)
	}
	ends, err := l.adm.ListCommittedOffsets(ctx, existing...)
	if err = partial(err); err != nil {
		return nil, fmt.Errorf("kafka list last stable offsets: %w", err)
	}

	var lags []*partitionLag
	var tails []tail
	for _, t := range targets {
		d, ok := details[t.topic]
		c := commits[t.group]
		if !ok || d.Err != nil || c.Err != nil {
			continue // absent, or its error is in errs already
		}
		for _, p := range slices.Sorted(maps.Keys(d.Partitions)) {
			start, okStart := starts.Lookup(t.topic, p)
			end, okEnd := ends.Lookup(t.topic, p)
			if err := errors.Join(listedErr(okStart, start.Err), listedErr(okEnd, end.Err)); err != nil {
				errs = append(errs, fmt.Errorf("kafka %s[%d] offsets: %w", t.topic, p, err))
				continue
			}
			from := start.Offset
			if o, ok := c.Fetched.Lookup(t.topic, p); ok {
				if o.Err != nil {
					errs = append(errs, fmt.Errorf("kafka group %s offset on %s[%d]: %w", t.group, t.topic, p, o.Err))
					continue
				}
				from = max(from, o.At) // At is -1 without a commit
			}
			pl := &partitionLag{group: t.group, topic: t.topic, partition: p}
			lags = append(lags, pl)
			if from < end.Offset {
				tails = append(tails, tail{lag: pl, leader: d.Partitions[p].Leader, topicID: d.ID, from: from, to: end.Offset})
			}
		}
	}
	errs = append(errs, l.count(ctx, tails))
	out := make([]partitionLag, 0, len(lags))
	for _, pl := range lags {
		if pl.records >= 0 {
			out = append(out, *pl)
		}
	}
	return out, errors.Join(errs...)
}

// partial keeps err when it is not a partial failure of a sharded request
// (whose partitions then show as missing).
func partial(err error) error {
	if se, ok := errors.AsType[*kadm.ShardErrors](err); ok && !se.AllFailed {
		return nil
	}
	return err
}

// listedErr is the error of a listed offset: its own, or its absence.
func listedErr(found bool, err error) error {
	if !found {
		return errors.New("not listed")
	}
	return err
}

// absentTopics is nil when every topic either exists or does not exist
// yet (no series, and no error: a service may start before its topics are
// created), and otherwise says which topics could not be described.
func absentTopics(details kadm.TopicDetails, topics []string) error {
	var errs []error
	for _, name := range topics {
		d, ok := details[name]
		switch {
		case !ok, d.Err == nil, errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		default:
			errs = append(errs, fmt.Errorf("kafka topic %s: %w", name, d.Err))
		}
	}
	return errors.Join(errs...)
}

// StageGroup is the consumer group of the answerer's stage named stage
// (NewStage): <KCHAT_ANSWERER_GROUP>-<stage>.
func StageGroup(scfg StageConfig, stage string) string { return scfg.Group + "-" + stage }
