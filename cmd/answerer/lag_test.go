package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// Issue 18, point 4: once the answerer answered a question, its admin
// listener's /metrics has the lag of both stage groups, for every
// partition of the topic each reads, and it is 0. The prompt topic is
// written in transactions: the generate group's commit stops at the commit
// marker after its last prompt, one below the partition's end, which must
// not count as a record to read.
func TestMetricsExposeTheStagesLag(t *testing.T) {
	brokers, prefix := kafkatest.Fake(t), testenv.Prefix("kfake")
	cfg := testConfig(brokers, prefix)
	var admin *runner.AdminServer
	app := fx.New(append(options(cfg, slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		runner.Admin(runner.AdminConfig{Addr: "127.0.0.1:0"}, "answerer"), fx.Populate(&admin))...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	q := askOne(t, brokers, prefix, "How do I start kchat on my laptop with make?")
	reader{t, brokers, prefix + "answer"}.replyTo(q.MessageID)

	groups := map[string]string{ // group → the topic it reads
		kafka.StageGroup(cfg.Answerer.Stage, "retrieve"): domain.TopicName(prefix, domain.TypeQuery),
		kafka.StageGroup(cfg.Answerer.Stage, "generate"): domain.TopicName(prefix, domain.TypePrompt),
	}
	series := regexp.MustCompile(`(?m)^kchat_kafka_consumer_group_lag_records\{group="([^"]+)",partition="(\d+)",topic="([^"]+)"\} (\S+)$`)
	var last string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		last = scrapeMetrics(t, "http://"+admin.Addr()+"/metrics")
		zero := map[string]int{} // partitions at 0 per group
		for _, m := range series.FindAllStringSubmatch(last, -1) {
			if groups[m[1]] != m[3] {
				t.Fatalf("lag of group %s on topic %s: not a stage's group and topic", m[1], m[3])
			}
			if m[4] == "0" {
				zero[m[1]]++
			}
		}
		done := strings.Contains(last, "# TYPE kchat_kafka_consumer_group_lag_records gauge") &&
			strings.Contains(last, "kchat_kafka_consumer_group_lag_errors_total 0")
		for g := range groups {
			done = done && zero[g] == cfg.Kafka.Partitions
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	var lines []string
	for _, l := range strings.Split(last, "\n") {
		if strings.Contains(l, "consumer_group_lag") {
			lines = append(lines, l)
		}
	}
	t.Fatalf("want a lag of 0 on each of the %d partitions for %v and no failed read; /metrics has:\n%s", cfg.Kafka.Partitions, groups, strings.Join(lines, "\n"))
}

func scrapeMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}
