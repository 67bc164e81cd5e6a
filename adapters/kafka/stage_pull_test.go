package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestStagePullsAfterCommitKfake(t *testing.T) {
	t.Parallel()
	testStagePullsAfterCommit(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationStagePullsAfterCommit(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-stage-pull")
	testStagePullsAfterCommit(t, kafkatest.Real(t, prefix), prefix)
}

// testStagePullsAfterCommit checks how a stage cuts its stream into
// transactions. A query alone is committed alone, at once: no timer waits
// for more. The queries written one by one while its batch is held all go
// into the next transaction: the stage fetches when it polls, after the
// commit. A client that fetched ahead while the batch was processed would
// hand the next poll only what its early fetch caught (the first of
// them), and the rest a transaction later.
//
// Transactions are counted on the output partition: each commit writes a
// marker that takes an offset, so each transaction's prompts form one run
// of consecutive offsets.
func testStagePullsAfterCommit(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.NewTextHandler(tlogw{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, append(kafka.PipelineTopics(cfg), kafka.DeadLetterTopics(cfg)...)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub := kafka.NewPublisher(cl, cfg)
	publish := func(text string) {
		t.Helper()
		// One session: one partition in, one partition out.
		q := domain.Message{MessageID: domain.NewMessageID(), SessionID: "s", UserID: "u", Type: domain.TypeQuery, Text: text}
		if _, err := pub.Publish(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}

	held, release := make(chan struct{}), make(chan struct{})
	transform := func(_ context.Context, q domain.Message) (domain.Message, error) {
		if q.Text == "q0" {
			close(held)
			<-release
		}
		return domain.NewPromptMessage(q, domain.Prompt{Question: q.Text}, time.Now()), nil
	}
	scfg := kafka.StageConfig{Group: prefix + "answerer", Instance: "test", RetryBackoff: 10 * time.Millisecond,
		SessionTimeout: 6 * time.Second, TransactionTimeout: 10 * time.Second, Concurrency: 1}
	stage := kafka.NewStage("retrieve", domain.TypeQuery, cfg, scfg, log, nil, transform)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stage.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stage: %v", err)
		}
	})

	publish("q0")
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("stage stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("q0 not transformed within 60 s")
	}
	const more = 5
	for i := 1; i <= more; i++ {
		publish(fmt.Sprintf("q%d", i)) // each its own produce request
	}
	close(release)

	recs := kafkatest.ReadAll(t, brokers, prefix+"prompt", 1+more, 60*time.Second)
	var offsets []int64
	var texts []string
	for _, r := range recs {
		m, err := kafka.DecodeValue(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, r.Offset)
		texts = append(texts, m.Text)
	}
	if want := []string{"q0", "q1", "q2", "q3", "q4", "q5"}; !slices.Equal(texts, want) {
		t.Fatalf("prompts %v, want %v", texts, want)
	}
	if got := transactions(offsets); !slices.Equal(got, []int{1, more}) {
		t.Errorf("prompts per transaction %v (offsets %v), want [1 %d]: q0 committed alone, then every query written while it was held in one transaction", got, offsets, more)
	}
}

// transactions returns how many records each transaction holds, from the
// sorted offsets of one partition's committed records: a commit marker
// after each transaction leaves a gap.
func transactions(offsets []int64) []int {
	var runs []int
	for i, o := range offsets {
		if i == 0 || o != offsets[i-1]+1 {
			runs = append(runs, 0)
		}
		runs[len(runs)-1]++
	}
	return runs
}
