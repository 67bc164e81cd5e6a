package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// FetchResult holds the fetch scenario's raw figures.
type FetchResult struct {
	Prefilled int                   `json:"prefilled_per_topic"`
	Kchat     map[string]FetchRun   `json:"kchat"`
	Baseline  FetchRun              `json:"baseline"`
	Checks    map[string]FetchCheck `json:"checks"`
}

// FetchRun is one fetch measurement.
type FetchRun struct {
	Throughput
}

// FetchCheck is what a run consumed, checked against Kafka: every offset
// from 0 to the last one served exactly once, and the group's committed
// offset right after it.
type FetchCheck struct {
	Served      int   `json:"served"`
	Duplicates  int   `json:"duplicates"`
	Gaps        int   `json:"gaps"`
	Uncommitted int64 `json:"served_but_not_committed"`
}

// OK tells whether the check found nothing wrong.
func (c FetchCheck) OK() bool { return c.Duplicates == 0 && c.Gaps == 0 && c.Uncommitted == 0 }

var fetchClients = []int{1, 32}

// errEmpty is a fetch that found nothing (the topic ran dry).
var errEmpty = errors.New("fetch returned no message")

// runFetch compares GET /messages (limit 1, ack=auto) on the consumer
// service with a raw franz-go group consumer that polls one record and
// commits it synchronously. Each run gets fresh topics and groups, and
// afterwards what it was served is checked for duplicates and gaps.
func (b *bench) runFetch(ctx context.Context) (*FetchResult, error) {
	res := &FetchResult{Prefilled: b.p.fetchPrefill, Kchat: map[string]FetchRun{}, Checks: map[string]FetchCheck{}}
	for _, n := range fetchClients {
		key := fmt.Sprint(n)
		run, check, err := b.fetchKchat(ctx, n)
		if err != nil {
			return nil, err
		}
		res.Kchat[key], res.Checks["kchat-"+key] = run, check
	}
	run, check, err := b.fetchBaseline(ctx)
	if err != nil {
		return nil, err
	}
	res.Baseline, res.Checks["baseline-1"] = run, check
	return res, nil
}

func (b *bench) fetchKchat(ctx context.Context, clients int) (FetchRun, FetchCheck, error) {
	prefix := b.prefix(fmt.Sprintf("fetch%d", clients))
	topic := prefix + string(domain.TypePrompt)
	if err := b.fill(ctx, topic); err != nil {
		return FetchRun{}, FetchCheck{}, err
	}
	consumer, err := b.bins.start(ctx, b.logDir, "consumer", "KCHAT_CONSUMER_ADDR", b.serviceEnv(prefix)...)
	if err != nil {
		return FetchRun{}, FetchCheck{}, err
	}
	seen := newOffsetSet()
	host := strings.TrimPrefix(consumer.url, "http://")
	req := request(http.MethodGet, host, "/messages?type=prompt&limit=1&ack=auto&wait=1s", nil)
	b.logf("fetch: %d client(s), kchat", clients)
	var conns []*loadConn
	wait := b.bins.profile(consumer, fmt.Sprintf("consumer-%d", clients), b.p.warmup+b.p.duration)
	t := closedLoop(ctx, b.cpu(consumer), clients, b.p.warmup, b.p.duration, func(int) op {
		lc := &loadConn{addr: host}
		conns = append(conns, lc)
		return func(ctx context.Context) error { return fetchOne(ctx, lc, req, seen) }
	})
	for _, c := range conns {
		c.close()
	}
	wait() // the profile ends a little after the run; stopping first cut it off
	// A graceful stop commits everything served.
	if err := consumer.stop(); err != nil {
		return FetchRun{}, FetchCheck{}, err
	}
	check, err := seen.check(ctx, b.brokers, prefix+"consumer-prompt", topic)
	return FetchRun{t}, check, err
}

func (b *bench) fetchBaseline(ctx context.Context) (FetchRun, FetchCheck, error) {
	prefix := b.prefix("fetchbase")
	topic := prefix + string(domain.TypePrompt)
	group := prefix + "consumer-prompt"
	if err := b.fill(ctx, topic); err != nil {
		return FetchRun{}, FetchCheck{}, err
	}
	// The options of kchat's group consumers (adapters/kafka/queue.go).
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(time.Second),
	)
	if err != nil {
		return FetchRun{}, FetchCheck{}, err
	}
	seen := newOffsetSet()
	// Join the group and take the first record before the clock starts,
	// as kchat's service has joined before it reports ready.
	if err := primeConsumer(ctx, cl, seen); err != nil {
		return FetchRun{}, FetchCheck{}, err
	}
	b.logf("fetch: 1 goroutine, baseline")
	t := closedLoop(ctx, b.cpu(), 1, b.p.warmup, b.p.duration, func(int) op {
		return func(ctx context.Context) error {
			pollCtx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			fetches := cl.PollRecords(pollCtx, 1)
			recs := fetches.Records()
			if len(recs) == 0 {
				if err := fetches.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				return errEmpty
			}
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				return err
			}
			seen.add(recs[0].Partition, recs[0].Offset)
			return nil
		}
	})
	cl.Close()
	check, err := seen.check(ctx, b.brokers, group, topic)
	return FetchRun{t}, check, err
}

func primeConsumer(ctx context.Context, cl *kgo.Client, seen *offsetSet) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		recs := cl.PollRecords(ctx, 1).Records()
		if len(recs) == 1 {
			seen.add(recs[0].Partition, recs[0].Offset)
			return cl.CommitRecords(ctx, recs...)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("baseline consumer got no record within 60s: %w", ctx.Err())
		}
	}
}

func (b *bench) fill(ctx context.Context, topic string) error {
	if err := createTopics(ctx, b.brokers, topic); err != nil {
		return err
	}
	b.logf("fetch: writing %d records to %s", b.p.fetchPrefill, topic)
	return prefill(ctx, b.brokers, topic, domain.TypePrompt, b.p.fetchPrefill, b.p.messageBytes)
}

type fetchedMessage struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

func fetchOne(ctx context.Context, lc *loadConn, req []byte, seen *offsetSet) error {
	status, resp, err := lc.do(ctx, req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET /messages: %d: %.200s", status, resp)
	}
	var body struct {
		Messages []fetchedMessage `json:"messages"`
	}
	if err := json.Unmarshal(resp, &body); err != nil {
		return err
	}
	if len(body.Messages) == 0 {
		return errEmpty
	}
	for _, m := range body.Messages {
		seen.add(m.Partition, m.Offset)
	}
	return nil
}

// offsetSet collects the offsets served per partition.
type offsetSet struct {
	mu  sync.Mutex
	per map[int32][]int64
}

func newOffsetSet() *offsetSet { return &offsetSet{per: map[int32][]int64{}} }

func (s *offsetSet) add(p int32, off int64) {
	s.mu.Lock()
	s.per[p] = append(s.per[p], off)
	s.mu.Unlock()
}

// check counts duplicates and gaps (offsets below the highest served that
// were never served), and compares the group's committed offsets with
// what was served.
func (s *offsetSet) check(ctx context.Context, brokers []string, group, topic string) (FetchCheck, error) {
	commits, err := committed(ctx, brokers, group, topic)
	if err != nil {
		return FetchCheck{}, err
	}
	return s.tally(commits), nil
}

// tally checks the offsets served against the committed ones.
func (s *offsetSet) tally(commits map[int32]int64) FetchCheck {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c FetchCheck
	for p, offs := range s.per {
		slices.Sort(offs)
		c.Served += len(offs)
		uniq := slices.Compact(slices.Clone(offs))
		c.Duplicates += len(offs) - len(uniq)
		last := uniq[len(uniq)-1]
		c.Gaps += int(last+1) - len(uniq)
		if commits[p] < last+1 {
			c.Uncommitted += last + 1 - commits[p]
		}
	}
	return c
}
