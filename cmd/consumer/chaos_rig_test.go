package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/history"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// sized returns short in the short mode and full otherwise.
func sized(full, short int) int {
	if testenv.ChaosShort() {
		return short
	}
	return full
}

// chaosRig is a consumer deployment on the 3-broker test cluster: topics
// under a prefix of its own (deleted when the test ends), one consumer
// group, a Kafka publisher that records every produce in a history, and the
// consumer processes the scenario starts.
type chaosRig struct {
	t       *testing.T
	brokers []string
	prefix  string
	group   string // KCHAT_CONSUMER_GROUP
	topic   string // the query topic, which the scenarios consume
	adm     *kadm.Client
	pub     *kafka.Publisher
}

func newChaosRig(t *testing.T, tag string) *chaosRig {
	t.Helper()
	brokers := testenv.ClusterBrokers(t)
	prefix := testenv.Prefix(tag)
	t.Cleanup(func() { kafkatest.DeleteTopics(t, brokers, prefix) })
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix, cfg.ReplicationFactor = brokers, prefix, 3
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &chaosRig{
		t: t, brokers: brokers, prefix: prefix, group: prefix + "group",
		topic: domain.TopicName(prefix, domain.TypeQuery),
		adm:   kadm.NewClient(cl), pub: kafka.NewPublisher(cl, cfg),
	}
}

// queryGroup is the consumer group of the query topic (one group per topic).
func (r *chaosRig) queryGroup() string { return r.group + "-" + string(domain.TypeQuery) }

// start runs a consumer process of the group and waits until it is ready.
func (r *chaosRig) start(env ...string) *proctest.Proc {
	r.t.Helper()
	return proctest.Start(r.t, proctest.Build(r.t, "github.com/kchat/kchat/cmd/consumer"), "KCHAT_CONSUMER_ADDR",
		append([]string{
			"KCHAT_KAFKA_BROKERS=" + strings.Join(r.brokers, ","),
			"KCHAT_TOPIC_PREFIX=" + r.prefix,
			"KCHAT_TOPIC_REPLICATION_FACTOR=3",
			"KCHAT_CONSUMER_GROUP=" + r.group,
			"KCHAT_CONSUMER_SESSION_TIMEOUT=6s", // the least it accepts: a killed process is replaced sooner
			"KCHAT_RECEIPT_KEY=" + testReceiptKey,
			"KCHAT_ADMIN_ADDR=127.0.0.1:0",
		}, env...)...)
}

// publish produces queries from to from+n-1 (ids <scenario>-000000…, keys
// spread over 60 sessions, so every partition gets some) in one batch, each
// invoked and completed in h. It returns how many were not acknowledged,
// and why the first of them was not.
func (r *chaosRig) publish(h *history.History, from, n int) (failed int, why error) {
	msgs := make([]domain.Message, n)
	ops := make([]history.Handle, n)
	for i := range msgs {
		k := from + i
		msgs[i] = domain.Message{
			MessageID: fmt.Sprintf("%s-%06d", h.Scenario(), k), SessionID: fmt.Sprintf("s%02d", k%60), UserID: "chaos",
			Type: domain.TypeQuery, Text: fmt.Sprintf("question %d", k), CreatedAt: time.Now().UTC(),
		}
		ops[i] = h.Invoke(history.Send{ID: msgs[i].MessageID, Key: msgs[i].SessionID, Payload: msgs[i].Text})
	}
	for i, res := range r.pub.PublishBatch(context.Background(), msgs) {
		if res.Err != nil {
			h.Unknown(ops[i], res.Err.Error())
			failed++
			why = cmp.Or(why, res.Err)
			continue
		}
		h.OKAt(ops[i], history.Position{Topic: res.Position.Topic, Partition: res.Position.Partition, Offset: res.Position.Offset})
	}
	return failed, why
}

// produceAlong publishes total queries in batches of 50, never more than
// lead ahead of what tk consumed, so the consumers work under load the
// whole run. It returns how many produces were not acknowledged (unknown in
// h: they may have landed, and then must be consumed like the others) and
// the first reason.
func (r *chaosRig) produceAlong(h *history.History, tk *takers, total, lead int) (unknown int, why error) {
	for from := 0; from < total; from += 50 {
		select {
		case <-tk.reached(from - lead):
		case <-tk.stop:
			return unknown, cmp.Or(why, errors.New("the takers stopped first"))
		}
		n, err := r.publish(h, from, min(50, total-from))
		unknown += n
		why = cmp.Or(why, err)
	}
	return unknown, why
}

// committed returns the group's committed offset of each partition of the
// query topic that has one.
func (r *chaosRig) committed(ctx context.Context) (map[int32]int64, error) {
	offs, err := r.adm.FetchOffsetsForTopics(ctx, r.queryGroup(), r.topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// ends returns the end offset of each partition of the query topic.
func (r *chaosRig) ends(ctx context.Context) (map[int32]int64, error) {
	listed, err := r.adm.ListEndOffsets(ctx, r.topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	var perr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			perr = o.Err
		}
		out[o.Partition] = o.Offset
	})
	return out, perr
}

// waitCommitted waits until the group's committed offset of every
// partition in want is at least what want says, and returns the committed
// offsets then. A failed look (a broker being replaced) is retried.
func (r *chaosRig) waitCommitted(want map[int32]int64, timeout time.Duration, what string) map[int32]int64 {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	var got map[int32]int64
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err = r.committed(ctx)
		cancel()
		if err == nil && covers(got, want) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("%s: the group's commits did not reach %v within %s (last seen %v, %v)", what, want, timeout, got, err)
	return nil
}

func covers(got, want map[int32]int64) bool {
	for p, o := range want {
		if got[p] < o {
			return false
		}
	}
	return true
}

// waitDrained waits until the group committed every record the query
// topic holds (its end offsets, listed now: call it once every produce is
// acknowledged), so nothing is left for any process to serve.
func (r *chaosRig) waitDrained(timeout time.Duration) map[int32]int64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := r.ends(ctx)
	if err != nil {
		r.t.Fatalf("end offsets of %s: %v", r.topic, err)
	}
	r.waitCommitted(ends, timeout, "drain")
	return ends
}

// coordinator returns the broker (node) that coordinates the query group.
func (r *chaosRig) coordinator() int32 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, ok := r.adm.FindGroupCoordinators(ctx, r.queryGroup())[r.queryGroup()]
	if !ok || res.Err != nil {
		r.t.Fatalf("the coordinator of %s: %v", r.queryGroup(), res.Err)
	}
	return res.NodeID
}

// furthest returns, per partition of the deliveries, the offset after the
// furthest one delivered: the commit that covers them all.
func furthest(ds []history.Delivery) map[int32]int64 {
	out := map[int32]int64{}
	for _, d := range ds {
		out[d.Partition] = max(out[d.Partition], d.Offset+1)
	}
	return out
}

// sortedParts returns the keys of m in order, for stable logs.
func sortedParts[V any](m map[int32]V) []int32 {
	return slices.Sorted(maps.Keys(m))
}
