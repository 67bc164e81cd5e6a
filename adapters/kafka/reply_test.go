package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestReplyPartitionKfake(t *testing.T) {
	t.Parallel()
	testReplyPartition(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationReplyPartition(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-reply")
	testReplyPartition(t, kafkatest.Real(t, prefix), prefix)
}

// testReplyPartition (docs/design.md, "Answer routing"): a query's reply
// partition travels on its prompt, and its answer and deltas land in that
// partition of their topics; the prompt stays where its session key puts
// it, and a query without one is answered by key.
func testReplyPartition(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix, cfg.Partitions, cfg.AnswerPartitions = brokers, prefix, 6, 6
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	topics := append(append(kafka.PipelineTopics(cfg), kafka.DeadLetterTopics(cfg)...), kafka.StreamTopics(cfg)...)
	if err := kafka.NewTopicAdmin(cl, cfg, log, topics...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub := kafka.NewPublisher(cl, cfg)
	deltas, err := kafka.NewDeltaPublisher(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deltas.Close(context.Background()) })

	const n = 12
	want := map[string]domain.Reply{} // query id → its reply partition
	queryPartition := map[string]int32{}
	for i := range n {
		q := domain.Message{MessageID: domain.NewMessageID(), SessionID: fmt.Sprintf("s%d", i), UserID: "u", Type: domain.TypeQuery, Text: "q"}
		if i%4 != 3 {
			q.Reply = domain.ReplyTo(int32(i % 6))
		}
		want[q.MessageID] = q.Reply
		pos, err := pub.Publish(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		queryPartition[q.SessionID] = pos.Partition
	}
	retrieve := func(_ context.Context, q domain.Message) (domain.Message, error) {
		return domain.NewPromptMessage(q, domain.Prompt{Question: q.Text}, time.Now()), nil
	}
	generate := func(ctx context.Context, pm domain.Message) (domain.Message, error) {
		if err := deltas.PublishDelta(ctx, domain.Delta{ReplyTo: pm.ReplyTo, SessionID: pm.SessionID, UserID: pm.UserID, Attempt: 1, Text: "a", Reply: pm.Reply}); err != nil {
			return domain.Message{}, err
		}
		return domain.NewAnswerMessage(pm, "answer", time.Now()), nil
	}
	scfg := kafka.StageConfig{Group: prefix + "answerer", Instance: "test", RetryBackoff: 10 * time.Millisecond, SessionTimeout: 6 * time.Second, Concurrency: 4}
	for _, st := range []*kafka.Stage{
		kafka.NewStage("retrieve", domain.TypeQuery, cfg, scfg, log, nil, retrieve),
		kafka.NewStage("generate", domain.TypePrompt, cfg, scfg, log, nil, generate),
	} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = st.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}

	for _, r := range kafkatest.ReadAll(t, brokers, prefix+"prompt", n, 60*time.Second) {
		m, err := kafka.DecodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if r.Partition != queryPartition[m.SessionID] {
			t.Errorf("prompt of %s in partition %d, its session's key puts it in %d", m.ReplyTo, r.Partition, queryPartition[m.SessionID])
		}
		if m.Reply != want[m.ReplyTo] {
			t.Errorf("prompt of %s carries reply %+v, want %+v", m.ReplyTo, m.Reply, want[m.ReplyTo])
		}
	}
	for _, r := range kafkatest.ReadAll(t, brokers, prefix+"answer", n, 60*time.Second) {
		m, err := kafka.DecodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		reply := want[m.ReplyTo]
		switch {
		case reply.Set && r.Partition != reply.Partition:
			t.Errorf("answer to %s in partition %d, want its reply partition %d", m.ReplyTo, r.Partition, reply.Partition)
		case !reply.Set && r.Partition != queryPartition[m.SessionID]:
			t.Errorf("answer to %s (no reply partition) in partition %d, want its session key's %d", m.ReplyTo, r.Partition, queryPartition[m.SessionID])
		}
	}
	for _, r := range kafkatest.ReadAll(t, brokers, domain.StreamTopicName(prefix), n, 60*time.Second) {
		var d struct {
			ReplyTo   string `json:"reply_to"`
			SessionID string `json:"session_id"`
		}
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Fatal(err)
		}
		reply := want[d.ReplyTo]
		switch {
		case reply.Set && r.Partition != reply.Partition:
			t.Errorf("delta of %s in partition %d, want its reply partition %d", d.ReplyTo, r.Partition, reply.Partition)
		case !reply.Set && r.Partition != queryPartition[d.SessionID]:
			t.Errorf("delta of %s (no reply partition) in partition %d, want its session key's %d", d.ReplyTo, r.Partition, queryPartition[d.SessionID])
		}
	}
}
