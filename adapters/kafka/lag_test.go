package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

const (
	lagMetric       = "kchat_kafka_consumer_group_lag_records"
	lagErrorsMetric = "kchat_kafka_consumer_group_lag_errors_total"
)

// scrapeLag collects c as a scrape does, through a registry (which checks
// the series against c's descriptions), and returns the lag series by
// "group topic partition" and the error counter.
func scrapeLag(t *testing.T, c prometheus.Collector) (map[string]float64, float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	lags, errs := map[string]float64{}, -1.0
	for _, f := range families {
		switch f.GetName() {
		case lagMetric:
			if f.GetType().String() != "GAUGE" {
				t.Fatalf("%s is a %s, want a gauge", lagMetric, f.GetType())
			}
			for _, m := range f.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				lags[l["group"]+" "+l["topic"]+" "+l["partition"]] = m.GetGauge().GetValue()
			}
		case lagErrorsMetric:
			errs = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if errs < 0 {
		t.Fatalf("no %s in the scrape", lagErrorsMetric)
	}
	return lags, errs
}

// checkLag fails the test unless a scrape of c has exactly the lag series
// want and no failed read.
func checkLag(t *testing.T, c prometheus.Collector, want map[string]float64) {
	t.Helper()
	checkLagErrors(t, c, want, 0)
}

// checkLagErrors is checkLag after wantErrors failed reads.
func checkLagErrors(t *testing.T, c prometheus.Collector, want map[string]float64, wantErrors float64) {
	t.Helper()
	got, errs := scrapeLag(t, c)
	if errs != wantErrors {
		t.Errorf("%s = %v, want %v", lagErrorsMetric, errs, wantErrors)
	}
	if !maps.Equal(got, want) {
		var diff []string
		for _, k := range slices.Sorted(maps.Keys(mergeKeys(got, want))) {
			g, gok := got[k]
			w, wok := want[k]
			if g != w || gok != wok {
				diff = append(diff, fmt.Sprintf("%s: got %v (present %v), want %v (present %v)", k, g, gok, w, wok))
			}
		}
		t.Fatalf("lag series differ:\n%s", strings.Join(diff, "\n"))
	}
}

func mergeKeys(a, b map[string]float64) map[string]float64 {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

// lagRig is a topic layout and the clients that fill it and commit for
// groups.
type lagRig struct {
	t       *testing.T
	brokers []string
	cl      *kgo.Client // kchat's client (kafka.NewClient), which the collector uses
	raw     *kgo.Client // produces to chosen partitions
	adm     *kadm.Client
}

func newLagRig(t *testing.T, brokers []string, prefix string, topics ...kafka.Topic) *lagRig {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, topics...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	return &lagRig{t: t, brokers: brokers, cl: cl, raw: raw, adm: kadm.NewClient(raw)}
}

// produce writes n records to topic's partition p.
func (r *lagRig) produce(topic string, p int32, n int) {
	r.t.Helper()
	for i := range n {
		rec := &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "record %d", i)}
		if err := r.raw.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			r.t.Fatal(err)
		}
	}
}

// commit commits offsets (partition → offset of topic) for group, as a
// group member that read up to them would.
func (r *lagRig) commit(group, topic string, offsets map[int32]int64) {
	r.t.Helper()
	var os kadm.Offsets
	for p, at := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	}
	if err := r.adm.CommitAllOffsets(context.Background(), group, os); err != nil {
		r.t.Fatalf("commit %s: %v", group, err)
	}
}

// transactions returns a transactional producer to topic's partitions: tx
// begins a transaction and writes one record per partition named, end ends
// it (committed or aborted) and returns once its markers are in.
func (r *lagRig) transactions(topic string) (tx func(partitions ...int32), end func(commit bool)) {
	r.t.Helper()
	t := r.t
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.TransactionalID(topic+"-tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	tx = func(partitions ...int32) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, p := range partitions {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: []byte("in a transaction")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	end = func(commit bool) {
		t.Helper()
		if err := cl.EndTransaction(context.Background(), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		// The coordinator writes the markers after EndTransaction returns:
		// they are in when no partition's last stable offset is behind its
		// end.
		deadline := time.Now().Add(10 * time.Second)
		for {
			ends, err1 := r.adm.ListEndOffsets(context.Background(), topic)
			stable, err2 := r.adm.ListCommittedOffsets(context.Background(), topic)
			settled := err1 == nil && err2 == nil
			ends.Each(func(e kadm.ListedOffset) {
				s, _ := stable.Lookup(e.Topic, e.Partition)
				settled = settled && s.Offset == e.Offset
			})
			if settled {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the transaction's markers are not in after 10 s (%v, %v)", err1, err2)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return tx, end
}

func TestConsumerLagKfake(t *testing.T) {
	t.Parallel()
	testConsumerLag(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationConsumerLag(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-lag")
	testConsumerLag(t, kafkatest.Real(t, prefix), prefix)
}

// testConsumerLag commits offsets for groups on a plain and a
// transactional topic and checks the lag of every partition: records from
// the commit (or the partition's start without one) to the last stable
// offset, transaction markers, aborted records and an open transaction's
// records not counted, and records deleted by retention not counted.
func testConsumerLag(t *testing.T, brokers []string, prefix string) {
	plain, txTopic := prefix+"lag-plain", prefix+"lag-tx"
	r := newLagRig(t, brokers, prefix, kafka.Topic{Name: plain, Partitions: 4}, kafka.Topic{Name: txTopic, Partitions: 2})
	lag := kafka.NewConsumerLag(r.cl, nil, slog.New(slog.NewTextHandler(tlogw{t}, nil)), 0)
	reads, committed, fresh := prefix+"reads-plain", prefix+"reads-tx", prefix+"fresh"
	lag.Watch(reads, plain)
	lag.Watch(committed, txTopic)
	lag.Watch(fresh, txTopic)                   // no commit at all
	lag.Watch(prefix+"early", prefix+"missing") // its topic does not exist (yet): no series, no error
	lag.Watch(reads, plain)                     // twice is once

	// Plain topic: 5, 3, 0 and 4 records; the group committed 2 of the
	// first and all of the second, nothing on the others.
	r.produce(plain, 0, 5)
	r.produce(plain, 1, 3)
	r.produce(plain, 3, 4)
	r.commit(reads, plain, map[int32]int64{0: 2, 1: 3})

	// Transactional topic, as the answerer's stages write: partition 0
	// holds 3 committed records then their marker (offsets 0-2, 3);
	// partition 1 two committed (0-1, marker 2), two aborted (3-4, marker
	// 5) and one committed (6, marker 7).
	tx, end := r.transactions(txTopic)
	tx(0, 0, 0)
	end(true)
	tx(1, 1)
	end(true)
	tx(1, 1)
	end(false)
	tx(1)
	end(true)
	// A group that read everything on partition 0 committed 3, the offset
	// after its last record, which is the marker's: lag 0, not 1 (the high
	// watermark is 4). On partition 1 it read the first transaction: the
	// one record left to read is 6, not 6 offsets.
	r.commit(committed, txTopic, map[int32]int64{0: 3, 1: 2})

	want := map[string]float64{
		reads + " " + plain + " 0":       3,
		reads + " " + plain + " 1":       0,
		reads + " " + plain + " 2":       0,
		reads + " " + plain + " 3":       4, // no commit: the whole partition
		committed + " " + txTopic + " 0": 0,
		committed + " " + txTopic + " 1": 1,
		fresh + " " + txTopic + " 0":     3,
		fresh + " " + txTopic + " 1":     3,
	}
	checkLag(t, lag, want)

	// An open transaction's records are not readable at read_committed:
	// no lag until it commits.
	tx(0, 0)
	checkLag(t, lag, want)
	end(true)
	want[committed+" "+txTopic+" 0"], want[fresh+" "+txTopic+" 0"] = 2, 5
	checkLag(t, lag, want)

	// Retention deleted records the group had not read: they will never be
	// consumed, so they are no lag.
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: plain, Partition: 0, At: 4, LeaderEpoch: -1})
	del.Add(kadm.Offset{Topic: plain, Partition: 3, At: 1, LeaderEpoch: -1})
	resp, err := r.adm.DeleteRecords(context.Background(), del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	want[reads+" "+plain+" 0"], want[reads+" "+plain+" 3"] = 1, 3
	checkLag(t, lag, want)
}

// With Kafka not answering, or gone, a scrape returns within the timeout,
// without the lag series, and counts the failed read; an outage is logged
// once at WARN, its end at INFO, and the next outage again.
func TestConsumerLagWhileKafkaIsDown(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	prefix := testenv.Prefix("kfake")
	topic, group := prefix+"lag", prefix+"group"
	r := newLagRig(t, cluster.ListenAddrs(), prefix, kafka.Topic{Name: topic, Partitions: 1})
	logs := &syncBuffer{}
	lag := kafka.NewConsumerLag(r.cl, nil, slog.New(slog.NewTextHandler(logs, nil)), 0)
	lag.Watch(group, topic)
	r.produce(topic, 0, 3)
	r.commit(group, topic, map[int32]int64{0: 1})
	checkLag(t, lag, map[string]float64{group + " " + topic + " 0": 2})

	warnings := func() int { return strings.Count(logs.String(), "level=WARN msg=\"cannot read the consumer group lag") }
	recoveries := func() int { return strings.Count(logs.String(), "level=INFO msg=\"consumer group lag read again") }
	down := func(wantErrors float64) {
		t.Helper()
		start := time.Now()
		lags, errs := scrapeLag(t, lag)
		took := time.Since(start)
		if len(lags) != 0 || errs != wantErrors {
			t.Fatalf("scrape with Kafka down: %v and %s %v; want no series and %v", lags, lagErrorsMetric, errs, wantErrors)
		}
		if took > kafka.LagTimeout+time.Second {
			t.Fatalf("scrape with Kafka down took %s, want about %s", took, kafka.LagTimeout)
		}
	}

	// A broker that takes the request and never answers (paused, say):
	// the scrape gives up after the timeout.
	release := make(chan struct{})
	cluster.ControlKey(int16(kmsg.OffsetFetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.SleepControl(func() { <-release })
		return nil, nil, false
	})
	start := time.Now()
	down(1)
	if took := time.Since(start); took < kafka.LagTimeout-100*time.Millisecond {
		t.Fatalf("the scrape gave up after %s, before the broker could answer within %s", took, kafka.LagTimeout)
	}
	close(release)
	checkLagErrors(t, lag, map[string]float64{group + " " + topic + " 0": 2}, 1)
	if n, back := warnings(), recoveries(); n != 1 || back != 1 {
		t.Fatalf("%d warnings and %d recoveries, want 1 and 1:\n%s", n, back, logs.String())
	}

	cluster.Close()
	down(2)
	down(3)
	if n := warnings(); n != 2 {
		t.Fatalf("%d warnings for two outages, want 2:\n%s", n, logs.String())
	}

	back, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Close)
	// An empty cluster: the topic does not exist any more, which is no
	// error and no series.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		lags, errs := scrapeLag(t, lag)
		if len(lags) != 0 {
			t.Fatalf("series for a topic that does not exist: %v", lags)
		}
		if recoveries() == 2 {
			t.Logf("lag read again after %v failed reads", errs)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lag is not read again with Kafka back:\n%s", logs.String())
		}
	}
	_, before := scrapeLag(t, lag)
	back.Close()
	down(before + 1)
	if n := warnings(); n != 3 {
		t.Fatalf("%d warnings for three outages, want 3:\n%s", n, logs.String())
	}
}
