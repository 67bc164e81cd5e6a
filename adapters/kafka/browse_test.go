package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

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
	qcfg := kafka.DefaultQueueConfig()
	qcfg.Group = prefix + "group"
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
