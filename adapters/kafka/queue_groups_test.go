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

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
)

func TestQueueConfigGroups(t *testing.T) {
	tests := []struct {
		give    map[string]string
		want    map[domain.MessageType]string // groups by type; nil: an error
		wantErr string
	}{
		{give: nil, want: map[domain.MessageType]string{"query": "g-query", "prompt": "g-prompt", "answer": "g-answer"}},
		{
			give: map[string]string{"query": "query-fetcher", "prompt": "prompt-fetcher", "answer": "answer-fetcher"},
			want: map[domain.MessageType]string{"query": "query-fetcher", "prompt": "prompt-fetcher", "answer": "answer-fetcher"},
		},
		{give: map[string]string{"query": "query-fetcher"}, want: map[domain.MessageType]string{"query": "query-fetcher", "prompt": "g-prompt", "answer": "g-answer"}},
		{give: map[string]string{"queries": "query-fetcher"}, wantErr: `unknown type "queries"`},
		{give: map[string]string{"query": ""}, wantErr: "the group of query is empty"},
		{give: map[string]string{"query": " q "}, wantErr: "surrounding spaces"},
		{give: map[string]string{"query": "fetcher", "answer": "fetcher"}, wantErr: `share the group "fetcher"`},
		{give: map[string]string{"query": "g-prompt"}, wantErr: `share the group "g-prompt"`},
	}
	for _, tt := range tests {
		qcfg := kafka.DefaultQueueConfig()
		qcfg.Group, qcfg.ReceiptKey, qcfg.Groups = "g", testReceiptKey, tt.give
		err := qcfg.Validate()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "KCHAT_CONSUMER_GROUPS") {
				t.Errorf("Validate with %v = %v, want an error naming KCHAT_CONSUMER_GROUPS and saying %q", tt.give, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Validate with %v = %v", tt.give, err)
		}
		for typ, want := range tt.want {
			if got := qcfg.GroupOf(typ); got != want {
				t.Errorf("with %v the group of %s = %q, want %q", tt.give, typ, got, want)
			}
		}
	}
}

func TestSwitchFromTheOldFetcherGroupKfake(t *testing.T) {
	t.Parallel()
	testSwitchFromTheOldFetcherGroup(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationSwitchFromTheOldFetcherGroup(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-fetcher")
	testSwitchFromTheOldFetcherGroup(t, kafkatest.Real(t, prefix), prefix)
}

// testSwitchFromTheOldFetcherGroup replaces the old Python fetcher, whose
// group <prefix>query-fetcher committed plain offsets (no metadata, or
// metadata of its own, never kchat's "kchat-done:"), by kchat's consumer
// with KCHAT_CONSUMER_GROUPS naming that group: the first message served
// on each partition is exactly at the old commit, and every message after
// it is served once; nothing before it is served again.
func testSwitchFromTheOldFetcherGroup(t *testing.T, brokers []string, prefix string) {
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
	var msgs []domain.Message
	for i := range 90 {
		msgs = append(msgs, domain.Message{MessageID: fmt.Sprintf("m-%02d", i), SessionID: fmt.Sprintf("s-%d", i%15), UserID: "u",
			Type: domain.TypeQuery, Text: "q"})
	}
	for _, r := range kafka.NewPublisher(cl, cfg).PublishBatch(context.Background(), msgs) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	topic := domain.TopicName(prefix, domain.TypeQuery)
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	end := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
	if len(end) != 3 {
		t.Fatalf("end offsets %v, want 3 partitions", end)
	}

	// The old service's commits: a third of each partition consumed, plain
	// offsets; one partition with metadata of another client's own.
	old := prefix + "query-fetcher"
	committed := map[int32]int64{}
	offsets := kadm.Offsets{}
	for p, e := range end {
		if e < 3 {
			t.Fatalf("partition %d holds %d messages, want at least 3", p, e)
		}
		committed[p] = e / 3
		o := kadm.Offset{Topic: topic, Partition: p, At: e / 3, LeaderEpoch: -1}
		if p == 2 {
			o.Metadata = "fetcher 1.4"
		}
		offsets.Add(o)
	}
	if err := adm.CommitAllOffsets(context.Background(), old, offsets); err != nil {
		t.Fatalf("committing as the old service: %v", err)
	}

	qcfg := queueConfig(prefix)
	qcfg.Groups = map[string]string{"query": old}
	if err := qcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	q, stop := startQueue(t, cfg, qcfg)
	served := map[int32][]int64{}
	want := 0
	for p := range end {
		want += int(end[p] - committed[p])
	}
	for got := 0; got < want; {
		b, err := q.Next(context.Background(), ports.NextRequest{Type: domain.TypeQuery, Limit: 7, Wait: 10 * time.Second, Lease: time.Minute, AutoAck: true})
		if err != nil || len(b.Deliveries) == 0 {
			t.Fatalf("Next = %d messages, %v after %d; want the %d left after the old commits %v", len(b.Deliveries), err, got, want-got, committed)
		}
		receipts := make([]string, len(b.Deliveries))
		for i, d := range b.Deliveries {
			served[d.Partition] = append(served[d.Partition], d.Offset)
			receipts[i] = d.Receipt
		}
		if err := q.Ack(context.Background(), receipts); err != nil {
			t.Fatal(err)
		}
		got += len(b.Deliveries)
	}
	if b, _ := q.Next(context.Background(), ports.NextRequest{Type: domain.TypeQuery, Limit: 10, Wait: time.Second, Lease: time.Minute}); len(b.Deliveries) > 0 {
		t.Errorf("served %d more after everything past the old commits", len(b.Deliveries))
	}
	for _, p := range slices.Sorted(maps.Keys(end)) {
		wantOffs := make([]int64, 0, end[p]-committed[p])
		for o := committed[p]; o < end[p]; o++ {
			wantOffs = append(wantOffs, o)
		}
		if !slices.Equal(served[p], wantOffs) {
			t.Errorf("partition %d (old commit %d, end %d): served %v, want exactly %v: from the old commit on, each once, in order",
				p, committed[p], end[p], served[p], wantOffs)
		}
	}

	// kchat commits in the old group, which a restart (or a switch back)
	// continues from; its own default group was never used.
	stop()
	waitFor(t, func() bool {
		got, err := adm.FetchOffsets(context.Background(), old)
		if err != nil {
			return false
		}
		for p, e := range end {
			if o, ok := got.Lookup(topic, p); !ok || o.At != e {
				return false
			}
		}
		return true
	}, 10*time.Second, "the old group's commits at the end offsets")
	if got, err := adm.FetchOffsets(context.Background(), qcfg.Group+"-query"); err == nil && len(got) > 0 {
		t.Errorf("kchat committed in its default group too: %v", got)
	}
	q2, _ := startQueue(t, cfg, qcfg)
	if b, _ := q2.Next(context.Background(), ports.NextRequest{Type: domain.TypeQuery, Limit: 10, Wait: time.Second, Lease: time.Minute}); len(b.Deliveries) > 0 {
		t.Errorf("after a restart, served %d again", len(b.Deliveries))
	}
}

func waitFor(t *testing.T, cond func() bool, timeout time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
