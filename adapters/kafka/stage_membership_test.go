package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestStageConfigValidate(t *testing.T) {
	t.Parallel()
	valid := kafka.StageConfig{Group: "g", Instance: "a", RetryBackoff: time.Second, SessionTimeout: 10 * time.Second, TransactionTimeout: 10 * time.Second, Concurrency: 1}
	tests := []struct {
		give    func(c *kafka.StageConfig)
		wantVar string // "" for valid
	}{
		{func(*kafka.StageConfig) {}, ""},
		{func(c *kafka.StageConfig) { c.SessionTimeout = time.Second }, ""}, // for brokers whose minimum allows it
		{func(c *kafka.StageConfig) { c.SessionTimeout = 999 * time.Millisecond }, "KCHAT_ANSWERER_SESSION_TIMEOUT"},
		{func(c *kafka.StageConfig) { c.SessionTimeout = 31 * time.Minute }, "KCHAT_ANSWERER_SESSION_TIMEOUT"},
		{func(c *kafka.StageConfig) { c.TransactionTimeout = time.Second }, ""},
		{func(c *kafka.StageConfig) { c.TransactionTimeout = 0 }, "KCHAT_ANSWERER_TRANSACTION_TIMEOUT"},
		{func(c *kafka.StageConfig) { c.TransactionTimeout = 16 * time.Minute }, "KCHAT_ANSWERER_TRANSACTION_TIMEOUT"},
		{func(c *kafka.StageConfig) { c.Instance = "" }, "KCHAT_ANSWERER_INSTANCE"},
	}
	for _, tt := range tests {
		c := valid
		tt.give(&c)
		err := c.Validate()
		switch {
		case tt.wantVar == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		case tt.wantVar != "" && (err == nil || !strings.Contains(err.Error(), tt.wantVar)):
			t.Errorf("Validate(%+v) = %v, want an error naming %s", c, err, tt.wantVar)
		}
	}
}

// runStage runs a retrieve stage of instance on prefix's topics until the
// returned stop is called (or the test ends); stop returns Run's error,
// and exited is closed when Run returns.
func runStage(t *testing.T, brokers []string, prefix, instance string, sessionTimeout time.Duration) (stop func() error, exited <-chan struct{}) {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.NewTextHandler(tlogw{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.NewTopicAdmin(cl, cfg, log, append(kafka.PipelineTopics(cfg), kafka.DeadLetterTopics(cfg)...)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	scfg := kafka.StageConfig{Group: prefix + "answerer", Instance: instance, RetryBackoff: 10 * time.Millisecond,
		SessionTimeout: sessionTimeout, TransactionTimeout: 10 * time.Second, Concurrency: 1}
	echo := func(_ context.Context, q domain.Message) (domain.Message, error) {
		return domain.NewPromptMessage(q, domain.Prompt{Question: q.Text}, time.Now()), nil
	}
	// With metrics, as in the answerer: each client needs metrics of its own.
	stage := kafka.NewStage("retrieve", domain.TypeQuery, cfg, scfg, log, kafka.NewMetrics(prometheus.NewRegistry()), echo)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { runErr = stage.Run(ctx); close(done) }()
	stop = func() error {
		cancel()
		<-done
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop, done
}

// members returns the instance ids of group's members.
func members(t *testing.T, adm *kadm.Client, group string) []string {
	t.Helper()
	groups, err := adm.DescribeGroups(t.Context(), group)
	if err != nil {
		// A fresh broker answers COORDINATOR_NOT_AVAILABLE while it loads
		// the offsets partition the group maps to: no members yet, ask
		// again (the callers poll).
		if errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.CoordinatorLoadInProgress) || errors.Is(err, kerr.NotCoordinator) {
			return nil
		}
		t.Fatal(err)
	}
	var ids []string
	for _, m := range groups[group].Members {
		if m.InstanceID != nil {
			ids = append(ids, *m.InstanceID)
		}
	}
	return ids
}

func waitUntil(t *testing.T, cond func() bool, timeout time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStageLeavesItsGroupOnStopKfake(t *testing.T) {
	t.Parallel()
	testStageLeaves(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationStageLeavesItsGroupOnStop(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-leave")
	testStageLeaves(t, kafkatest.Real(t, prefix), prefix)
}

// A static member's close does not leave its group; a stage stopped
// gracefully leaves it anyway, so its partitions move at once rather than
// after the session timeout (30 s here).
func testStageLeaves(t *testing.T, brokers []string, prefix string) {
	stop, _ := runStage(t, brokers, prefix, "a", 30*time.Second)
	adm := newAdmin(t, brokers)
	group := prefix + "answerer-retrieve"
	waitUntil(t, func() bool { return len(members(t, adm, group)) == 1 }, 30*time.Second, "the stage joined its group")
	if got := members(t, adm, group); got[0] != "a" {
		t.Fatalf("member %q, want the static member a", got[0])
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := members(t, adm, group); len(got) != 0 {
		t.Fatalf("members %v after the stage stopped, want none", got)
	}
}

// A session timeout below the broker's group.min.session.timeout.ms cannot
// work: the stage stops with an error naming the variable instead of
// retrying for ever.
func TestStageStopsOnARefusedSessionTimeout(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Fake(t, kfake.GroupMinSessionTimeout(6*time.Second))
	stop, exited := runStage(t, brokers, testenv.Prefix("kfake"), "a", 2*time.Second)
	select {
	case <-exited:
		if err := stop(); err == nil || !strings.Contains(err.Error(), "KCHAT_ANSWERER_SESSION_TIMEOUT") {
			t.Fatalf("Run = %v, want an error naming KCHAT_ANSWERER_SESSION_TIMEOUT", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stage still runs 30 s after the broker refused its session timeout")
	}
}

func TestStageFencesDepartedReplicasKfake(t *testing.T) {
	t.Parallel()
	testStageFencesDeparted(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationStageFencesDepartedReplicas(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-fence")
	testStageFencesDeparted(t, kafkatest.Real(t, prefix), prefix)
}

// A replica killed for good inside a transaction leaves it open; the stage
// that takes its partitions aborts it at once, not after its transaction
// timeout (a minute here), so read_committed readers of the outputs go on.
func testStageFencesDeparted(t *testing.T, brokers []string, prefix string) {
	gone := prefix + "answerer-retrieve-gone"
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(gone), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := newAdmin(t, brokers)
	stop, _ := runStage(t, brokers, prefix, "a", 30*time.Second) // creates the topics
	defer func() { _ = stop() }()
	// Once the stage runs, so that only a later assignment can fence it.
	waitUntil(t, func() bool { return len(members(t, adm, prefix+"answerer-retrieve")) == 1 }, 30*time.Second, "the stage joined its group")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: prefix + "prompt", Value: []byte("left open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		txns, err := adm.DescribeTransactions(t.Context(), gone)
		if err != nil {
			t.Fatal(err)
		}
		return txns[gone].State
	}
	if s := state(); s != "Ongoing" {
		t.Fatalf("the departed replica's transaction is %s, want Ongoing", s)
	}
	// A second replica joins: the group rebalances and assigns partitions.
	_, _ = runStage(t, brokers, prefix, "b", 30*time.Second)
	// A reader at read_committed gets past the transaction, which holds
	// nothing then: it was aborted.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	recs, err := kafkatest.ReadToEnd(ctx, brokers, kafkatest.ReadOptions{Committed: true}, prefix+"prompt")
	if err != nil {
		t.Fatalf("read_committed reader of the departed replica's output, with its transaction timeout a minute away: %v (transaction %s)", err, state())
	}
	if len(recs) != 0 {
		t.Fatalf("read %d records, want none: the departed replica's transaction was committed", len(recs))
	}
}

func newAdmin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// tlogw sends a stage's warnings and errors to the test's output.
type tlogw struct{ t *testing.T }

func (w tlogw) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
