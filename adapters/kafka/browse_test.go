package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestBrowseWithMetricsKfake(t *testing.T) {
	t.Parallel()
	testBrowseWithMetrics(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationBrowseWithMetrics(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-browse")
	testBrowseWithMetrics(t, kafkatest.Real(t, prefix), prefix)
}

// testBrowseWithMetrics browses one after the other and several at once
// with franz-go's metrics on a registry. kprom registers a client's
// collectors, under the same names for every client with the same label,
// when the client starts: a client per browse panics as soon as two
// browses overlap. Every browse must also start from the beginning, with
// nothing left over from the one before.
func testBrowseWithMetrics(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	qcfg := queueConfig(prefix)
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = 6
	var want []string
	for i := range n {
		m := domain.Message{MessageID: domain.NewMessageID(), SessionID: fmt.Sprintf("s%d", i%3), UserID: "u", Type: domain.TypeQuery, Text: fmt.Sprintf("q%d", i)}
		want = append(want, m.MessageID)
		if _, err := kafka.NewPublisher(cl, cfg).Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	reg := prometheus.NewRegistry()
	q, _ := startQueueWith(t, cfg, qcfg, kafka.NewMetrics(reg))

	browse := func(limit int) ([]string, error) {
		ds, err := q.Browse(context.Background(), domain.TypeQuery, limit)
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.Message.MessageID
		}
		slices.Sort(ids)
		return ids, err
	}
	// A browse that stops early leaves records fetched but not returned.
	if got, err := browse(2); err != nil || len(got) != 2 {
		t.Fatalf("Browse(2) = %v, %v; want 2 messages", got, err)
	}
	for i := range 2 {
		if got, err := browse(100); err != nil || !slices.Equal(got, want) {
			t.Fatalf("Browse #%d = %v, %v; want %v", i+2, got, err, want)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if got, err := browse(100); err != nil || !slices.Equal(got, want) {
				t.Errorf("concurrent Browse = %v, %v; want %v", got, err, want)
			}
		})
	}
	wg.Wait()

	// kprom counts fetched bytes (not records) by default.
	fetched := 0.0
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "kchat_fetch_bytes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "client" && l.GetValue() == "browse" {
					fetched += m.GetCounter().GetValue()
				}
			}
		}
	}
	if fetched == 0 {
		t.Fatal(`kchat_fetch_bytes_total{client="browse"} is 0: the browse client reports no metrics`)
	}
}

func TestBrowseTransactionalTopicKfake(t *testing.T) {
	t.Parallel()
	testBrowseTransactionalTopic(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationBrowseTransactionalTopic(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-browse-tx")
	testBrowseTransactionalTopic(t, kafkatest.Real(t, prefix), prefix)
}

// testBrowseTransactionalTopic browses answers written in transactions, as
// the answerer writes them, asking for more than there are: the browse must
// answer at once with exactly the committed records, not wait for the
// commit marker below the last stable offset (which never comes as a
// record) until its 10 s timeout.
func testBrowseTransactionalTopic(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	transact := answerTransactions(t, brokers, prefix)
	var committed []string
	q, _ := startQueue(t, cfg, queueConfig(prefix))
	browse := func(limit int) []string {
		t.Helper()
		start := time.Now()
		ds, err := q.Browse(context.Background(), domain.TypeAnswer, limit)
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("Browse(%d) took %s; it should answer at once with what is there", limit, took)
		}
		if err != nil {
			t.Fatalf("Browse(%d): %v", limit, err)
		}
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.Message.MessageID
		}
		slices.Sort(ids)
		return ids
	}

	// The case: 2 answers, limit 3.
	committed = append(committed, transact(true, "s1", "s1")...)
	want := slices.Sorted(slices.Values(committed))
	if got := browse(3); !slices.Equal(got, want) {
		t.Fatalf("Browse(3) = %v, want %v", got, want)
	}
	transact(false, "s1") // aborted: never browsed
	// Other partitions, each ending in a marker.
	committed = append(committed, transact(true, "s2", "s3")...)
	want = slices.Sorted(slices.Values(committed))
	if got := browse(10); !slices.Equal(got, want) {
		t.Fatalf("Browse(10) = %v, want the %d committed %v", got, len(want), want)
	}
}

// answerTransactions returns a writer of answers in transactions, as the
// answerer writes them: one answer per session, committed or aborted, and
// it returns once the transaction's markers are in (the coordinator writes
// them after EndTransaction returns), with the ids it wrote.
func answerTransactions(t *testing.T, brokers []string, prefix string) func(commit bool, sessions ...string) []string {
	t.Helper()
	tx, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(prefix+"tx"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Close)
	topic := domain.TopicName(prefix, domain.TypeAnswer)
	return func(commit bool, sessions ...string) []string {
		t.Helper()
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range sessions {
			m := domain.Message{MessageID: domain.NewMessageID(), SessionID: s, UserID: "u", Type: domain.TypeAnswer, Text: "a", ReplyTo: domain.NewMessageID()}
			rec, err := kafka.NewRecord(topic, m)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.MessageID)
		}
		if err := tx.EndTransaction(context.Background(), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		// The markers are in when no partition's last stable offset is
		// behind its end.
		adm := kadm.NewClient(tx)
		deadline := time.Now().Add(10 * time.Second)
		for {
			ends, err1 := adm.ListEndOffsets(context.Background(), topic)
			stable, err2 := adm.ListCommittedOffsets(context.Background(), topic)
			settled := err1 == nil && err2 == nil
			ends.Each(func(e kadm.ListedOffset) {
				s, _ := stable.Lookup(e.Topic, e.Partition)
				settled = settled && s.Offset == e.Offset
			})
			if settled {
				return ids
			}
			if time.Now().After(deadline) {
				t.Fatalf("the transaction's markers are not in after 10 s (%v, %v)", err1, err2)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
