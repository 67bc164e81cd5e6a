package main

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// Issue 18, point 4, in the all-in-one: one /metrics has the lag of the
// consumer service's groups and of the answerer's stage groups (one
// collector for both services). A question answered leaves the stages
// with nothing to read, while the consumer service's groups, which nobody
// asked yet, have its query, prompt and answer to read; once a client took
// the query, its group has nothing left.
func TestMetricsExposeTheGroupsLag(t *testing.T) {
	prefix := testenv.Prefix("kfake")
	cfg := allInOneConfig(t, kafkatest.Fake(t), prefix, auth.ModeNone)
	cfg.Kafka.AnswerPartitions = cfg.Kafka.Partitions // one count for every topic below
	app := startAllInOne(t, cfg)
	waitReady(t, app.base["gateway"]+"/readyz")

	res, err := (&http.Client{Timeout: 30 * time.Second}).Post(app.base["gateway"]+"/chat", "application/json", strings.NewReader(`{"message":"How do I start kchat?"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /chat: %d", res.StatusCode)
	}

	topic := func(typ domain.MessageType) string { return domain.TopicName(prefix, typ) }
	want := map[string]groupLag{ // by group: its topic and the records left
		kafka.StageGroup(cfg.Answerer.Stage, "retrieve"): {topic(domain.TypeQuery), 0},
		kafka.StageGroup(cfg.Answerer.Stage, "generate"): {topic(domain.TypePrompt), 0},
		cfg.Consumer.Queue.GroupOf(domain.TypeQuery):     {topic(domain.TypeQuery), 1},
		cfg.Consumer.Queue.GroupOf(domain.TypePrompt):    {topic(domain.TypePrompt), 1},
		cfg.Consumer.Queue.GroupOf(domain.TypeAnswer):    {topic(domain.TypeAnswer), 1},
	}
	awaitLag(t, app.base["admin"]+"/metrics", cfg.Kafka.Partitions, want)

	// The consumer service serves the query (ack=auto): its group commits.
	res, err = http.Get(app.base["consumer"] + "/messages?type=query&limit=10&wait=5s")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /messages: %d", res.StatusCode)
	}
	want[cfg.Consumer.Queue.GroupOf(domain.TypeQuery)] = groupLag{topic(domain.TypeQuery), 0}
	awaitLag(t, app.base["admin"]+"/metrics", cfg.Kafka.Partitions, want)
}

// groupLag is a group's topic and its lag summed over the partitions.
type groupLag struct {
	topic   string
	records float64
}

var lagSeries = regexp.MustCompile(`(?m)^kchat_kafka_consumer_group_lag_records\{group="([^"]+)",partition="\d+",topic="([^"]+)"\} (\S+)$`)

// awaitLag scrapes url until it has exactly the lag series of want, a
// series per partition of each group's topic, summing to its records, and
// no failed read.
func awaitLag(t *testing.T, url string, partitions int, want map[string]groupLag) {
	t.Helper()
	var body string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		body = scrape(t, url)
		got, series := map[string]groupLag{}, map[string]int{}
		for _, m := range lagSeries.FindAllStringSubmatch(body, -1) {
			v, _ := strconv.ParseFloat(m[3], 64)
			got[m[1]] = groupLag{m[2], got[m[1]].records + v}
			series[m[1]]++
		}
		ok := len(got) == len(want) && strings.Contains(body, "\nkchat_kafka_consumer_group_lag_errors_total 0\n")
		for g, w := range want {
			ok = ok && got[g] == w && series[g] == partitions
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want the lag %+v over %d partitions each and no failed read; /metrics has:\n%s", want, partitions, grepLag(body))
		}
	}
}

func grepLag(body string) string {
	var lines []string
	for l := range strings.SplitSeq(body, "\n") {
		if strings.Contains(l, "consumer_group_lag") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
