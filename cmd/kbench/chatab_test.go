package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/internal/testenv"
)

// BenchmarkChainFetchAheadVsOnPoll runs two transactional two-hop chains
// side by side in one process, fed the same records at the same moments:
// one whose hops let franz-go fetch ahead (its default), one whose hops
// fetch only when they poll, as the answerer's stages do. Side by side,
// the machine's noise hits both alike (docs/performance.md, "Exactly-once
// without the wait"). Each hop transforms a batch as a stage does, 16 at a
// time, each record taking a uniform random time in [tmin, tmax]; it needs
// the real broker:
//
//	go test ./cmd/kbench -run '^$' -bench ChainFetch -benchtime 1x
func BenchmarkChainFetchAheadVsOnPoll(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	for _, c := range []struct {
		rate       int
		tmin, tmax time.Duration
	}{{1000, 0, 0}, {1000, 2 * time.Millisecond, 8 * time.Millisecond}, {300, 5 * time.Millisecond, 40 * time.Millisecond}} {
		b.Run(fmt.Sprintf("rate=%d/transform=%s-%s", c.rate, c.tmin, c.tmax), func(b *testing.B) {
			for range b.N {
				ahead, onPoll := fetchAB(b, brokers, c.rate, c.tmin, c.tmax, 30*time.Second)
				b.ReportMetric(ahead.P50, "ahead-p50-ms")
				b.ReportMetric(ahead.P99, "ahead-p99-ms")
				b.ReportMetric(onPoll.P50, "on-poll-p50-ms")
				b.ReportMetric(onPoll.P99, "on-poll-p99-ms")
			}
		})
	}
}

// fetchAB feeds both chains rate records a second for d and returns their
// round trips after the first 5 s.
func fetchAB(b *testing.B, brokers []string, rate int, tmin, tmax, d time.Duration) (ahead, onPoll Percentiles) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := fmt.Sprintf("kbench-fetchab-%d-", time.Now().UnixNano())
	type chain struct {
		in   string
		lat  *latencies
		got  atomic.Int64
		opts []kgo.Opt
	}
	chains := []*chain{
		{in: run + "ahead-", lat: newLatencies()},
		{in: run + "onpoll-", lat: newLatencies(), opts: []kgo.Opt{kgo.MaxConcurrentFetches(0)}},
	}
	var topics []string
	for _, c := range chains {
		topics = append(topics, c.in+"query", c.in+"prompt", c.in+"answer")
	}
	if err := createTopics(ctx, brokers, topics...); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...)); err == nil {
			_, _ = kadm.NewClient(cl).DeleteTopics(context.Background(), topics...)
			cl.Close()
		}
	})
	measureFrom := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, c := range chains {
		for _, h := range [][2]string{{"query", "prompt"}, {"prompt", "answer"}} {
			sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{kgo.SeedBrokers(brokers...),
				kgo.ConsumerGroup(c.in + h[0]), kgo.ConsumeTopics(c.in + h[0]),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.FetchMaxWait(500 * time.Millisecond), kgo.ProducerLinger(0),
				kgo.TransactionalID(c.in + h[0]), kgo.TransactionTimeout(10 * time.Second)}, c.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() { abHop(ctx, sess, c.in+h[1], tmin, tmax) })
		}
		reader, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(c.in+"answer"),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer reader.Close()
			for ctx.Err() == nil {
				reader.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					c.got.Add(1)
					if sent, _ := strconv.ParseInt(string(r.Key), 10, 64); sent >= measureFrom.UnixNano() {
						c.lat.record(time.Since(time.Unix(0, sent)))
					}
				})
			}
		})
	}
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	var sent int64
	value := make([]byte, 400)
	for due, start := time.Now(), time.Now(); time.Since(start) < d; due = due.Add(time.Second / time.Duration(rate)) {
		time.Sleep(time.Until(due))
		key := []byte(strconv.FormatInt(time.Now().UnixNano(), 10))
		for _, c := range chains {
			producer.Produce(ctx, &kgo.Record{Topic: c.in + "query", Key: key, Value: value}, nil)
		}
		sent++
	}
	for wait := time.Now().Add(15 * time.Second); time.Now().Before(wait) && (chains[0].got.Load() < sent || chains[1].got.Load() < sent); {
		time.Sleep(20 * time.Millisecond)
	}
	if chains[0].got.Load() < sent || chains[1].got.Load() < sent {
		b.Errorf("sent %d, through the chains %d and %d", sent, chains[0].got.Load(), chains[1].got.Load())
	}
	return chains[0].lat.percentiles(), chains[1].lat.percentiles()
}

// abHop copies batches in transactions, each record first waiting a
// random time in [tmin, tmax], 16 at a time, as a stage's transforms.
func abHop(ctx context.Context, sess *kgo.GroupTransactSession, out string, tmin, tmax time.Duration) {
	defer sess.Close()
	for ctx.Err() == nil {
		recs := sess.PollRecords(ctx, 100).Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return
		}
		if tmax > 0 {
			slot := make(chan struct{}, 16)
			var wg sync.WaitGroup
			for range recs {
				slot <- struct{}{}
				wg.Go(func() {
					defer func() { <-slot }()
					time.Sleep(tmin + rand.N(tmax-tmin+1))
				})
			}
			wg.Wait()
		}
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value}, nil)
		}
		_, _ = sess.End(ctx, kgo.TryCommit)
	}
}
