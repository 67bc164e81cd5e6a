package kafka_test

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// syncBuffer is a log sink safe for franz-go's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEnsureTopicsKfake(t *testing.T) {
	t.Parallel()
	testEnsureTopics(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationEnsureTopics(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-topics")
	testEnsureTopics(t, kafkatest.Real(t, prefix), prefix)
}

// testEnsureTopics checks topic creation, read back with kadm on its own
// client: three topics, 3 partitions, retention.ms=120000,
// cleanup.policy=delete; a second run changes nothing; drift is reported.
func testEnsureTopics(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))

	// An existing query topic that differs: kchat must leave it and warn.
	check, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(check.Close)
	adm := kadm.NewClient(check)
	retention := "60000"
	if _, err := adm.CreateTopic(t.Context(), 1, 1, map[string]*string{"retention.ms": &retention}, prefix+"query"); err != nil {
		t.Fatalf("pre-create query topic: %v", err)
	}

	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	admin := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...)
	for range 2 { // idempotent
		if err := admin.EnsureTopics(t.Context()); err != nil {
			t.Fatalf("EnsureTopics: %v", err)
		}
	}
	if !strings.Contains(logs.String(), "different partition count") || !strings.Contains(logs.String(), "different retention.ms") {
		t.Errorf("no drift warning for the pre-existing query topic; logs:\n%s", logs.String())
	}

	want := map[string]int{prefix + "query": 1, prefix + "prompt": 3, prefix + "answer": 12} // KCHAT_ANSWER_PARTITIONS
	details, err := adm.ListTopics(t.Context(), prefix+"query", prefix+"prompt", prefix+"answer")
	if err != nil {
		t.Fatal(err)
	}
	configs, err := adm.DescribeTopicConfigs(t.Context(), prefix+"prompt", prefix+"answer")
	if err != nil {
		t.Fatal(err)
	}
	for name, parts := range want {
		if got := len(details[name].Partitions); got != parts {
			t.Errorf("%s has %d partitions, want %d", name, got, parts)
		}
	}
	for _, rc := range configs {
		got := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				got[c.Key] = *c.Value
			}
		}
		if got["retention.ms"] != "120000" || got["cleanup.policy"] != "delete" {
			t.Errorf("%s: retention.ms=%q cleanup.policy=%q, want 120000 and delete", rc.Name, got["retention.ms"], got["cleanup.policy"])
		}
	}

	infos, err := admin.DescribeTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[1].Type != domain.TypePrompt || infos[1].Partitions != 3 ||
		infos[1].Retention != 2*time.Minute || infos[1].CleanupPolicy != "delete" || infos[1].ReplicationFactor != 1 {
		t.Errorf("DescribeTopics = %+v", infos)
	}
	if err := admin.Ready(t.Context()); err != nil {
		t.Errorf("Ready after EnsureTopics: %v", err)
	}
}

func TestTopicAdminWaitsForBroker(t *testing.T) {
	t.Parallel()
	cfg := kafka.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"} // nothing listens there
	cl, err := kafka.NewClient(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	admin := kafka.NewTopicAdmin(cl, cfg, slog.New(slog.DiscardHandler), kafka.PipelineTopics(cfg)...)
	if err := admin.Ready(t.Context()); err == nil {
		t.Fatal("Ready with no broker succeeded")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := admin.Run(ctx); err != nil { // retries until ctx ends, then stops quietly
		t.Fatalf("Run = %v, want nil after ctx ended", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Run kept going %s after its context ended", time.Since(start))
	}
}

func TestTopicAdminCreatesItsTopicsKfake(t *testing.T) {
	t.Parallel()
	testTopicAdminTopics(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationTopicAdminCreatesItsTopics(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-admin")
	testTopicAdminTopics(t, kafkatest.Real(t, prefix), prefix)
}

// testTopicAdminTopics creates the pipeline, dead-letter and acks topics
// through one admin: each gets its own partition count, a second topic of
// one name is ignored, nothing else is created, drift of an existing topic
// of any kind is reported, and DescribeTopics still describes the pipeline.
func testTopicAdminTopics(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	check, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(check.Close)
	adm := kadm.NewClient(check)
	acks := kafka.AcksTopic(cfg)
	if _, err := adm.CreateTopic(t.Context(), 2, 1, nil, acks.Name); err != nil {
		t.Fatalf("pre-create the acks topic: %v", err)
	}

	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	topics := append(kafka.PipelineTopics(cfg), kafka.DeadLetterTopics(cfg)...)
	topics = append(topics, acks, kafka.Topic{Name: prefix + "prompt", Partitions: 7})
	admin := kafka.NewTopicAdmin(cl, cfg, log, topics...)
	if err := admin.EnsureTopics(t.Context()); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}

	want := map[string]int{
		prefix + "query": 3, prefix + "prompt": 3, prefix + "answer": 12, // KCHAT_ANSWER_PARTITIONS
		prefix + "query.dlq": 3, prefix + "prompt.dlq": 3,
		acks.Name: 2, // existing: left as it is
	}
	all, err := adm.ListTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for name, d := range all {
		if strings.HasPrefix(name, prefix) {
			got[name] = len(d.Partitions)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("topics under the prefix = %v, want %v", got, want)
	}
	configs, err := adm.DescribeTopicConfigs(t.Context(), prefix+"query.dlq", prefix+"prompt.dlq")
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range configs {
		got := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				got[c.Key] = *c.Value
			}
		}
		if got["retention.ms"] != "120000" || got["cleanup.policy"] != "delete" {
			t.Errorf("%s: retention.ms=%q cleanup.policy=%q, want 120000 and delete", rc.Name, got["retention.ms"], got["cleanup.policy"])
		}
	}
	if !strings.Contains(logs.String(), "different partition count") || !strings.Contains(logs.String(), acks.Name) {
		t.Errorf("no drift warning for the pre-existing acks topic; logs:\n%s", logs.String())
	}

	infos, err := admin.DescribeTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		t.Fatalf("DescribeTopics = %+v, want the three pipeline topics", infos)
	}
	for i, typ := range domain.MessageTypes {
		parts := 3
		if typ == domain.TypeAnswer {
			parts = 12 // KCHAT_ANSWER_PARTITIONS
		}
		if infos[i].Type != typ || infos[i].Name != prefix+string(typ) || infos[i].Partitions != parts {
			t.Errorf("DescribeTopics[%d] = %+v, want %s with %d partitions", i, infos[i], typ, parts)
		}
	}
}
