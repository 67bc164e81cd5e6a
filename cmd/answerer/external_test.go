package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// TestIntegrationExternalGenerator: with KCHAT_GENERATOR=external the
// answerer only prepares prompts; a worker written against the HTTP APIs
// (poll the consumer, post to the producer) answers them.
func TestIntegrationExternalGenerator(t *testing.T) {
	prefix := testenv.Prefix("it-ext")
	brokers := kafkatest.Real(t, prefix)
	common := []string{"KCHAT_KAFKA_BROKERS=" + strings.Join(brokers, ","), "KCHAT_TOPIC_PREFIX=" + prefix}
	answerer := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/answerer"), "KCHAT_ANSWERER_ADDR",
		append(common, "KCHAT_GENERATOR=external", "KCHAT_ANSWERER_GROUP="+prefix+"answerer", "KCHAT_ANSWERER_INSTANCE=ext")...)
	producer := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/producer"), "KCHAT_PRODUCER_ADDR", common...)
	consumer := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/consumer"), "KCHAT_CONSUMER_ADDR",
		append(common, "KCHAT_CONSUMER_GROUP="+prefix+"worker")...)

	post := func(url, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	q := post(producer.URL+"/messages", `{"session_id":"ext-1","user_id":"dana","type":"query","message":"How do I start kchat?"}`)
	queryID := q["message_id"].(string)

	// The worker: take the prompt, answer it, acknowledge it.
	var prompt struct {
		Count    int `json:"count"`
		Messages []struct {
			Receipt string `json:"receipt"`
			Value   struct {
				SessionID string `json:"session_id"`
				UserID    string `json:"user_id"`
				Message   string `json:"message"`
				ReplyTo   string `json:"reply_to"`
				Citations []struct {
					Source string `json:"source"`
				} `json:"citations"`
				Metadata map[string]any `json:"metadata"`
			} `json:"value"`
		} `json:"messages"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for prompt.Count == 0 && time.Now().Before(deadline) {
		resp, err := http.Get(consumer.URL + "/messages?type=prompt&ack=manual&wait=5s")
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&prompt)
		resp.Body.Close()
	}
	if prompt.Count != 1 || prompt.Messages[0].Value.ReplyTo != queryID || len(prompt.Messages[0].Value.Citations) == 0 {
		t.Fatalf("prompt for the worker: %+v", prompt)
	}
	if _, ok := prompt.Messages[0].Value.Metadata["prompt"].(string); !ok {
		t.Fatal("the prompt carries no rendered prompt for outside models")
	}
	p := prompt.Messages[0].Value
	post(producer.URL+"/messages", fmt.Sprintf(`{"session_id":%q,"user_id":%q,"type":"answer","reply_to":%q,"message":"Run make run [1].","citations":[{"n":1,"source":%q}]}`,
		p.SessionID, p.UserID, p.ReplyTo, p.Citations[0].Source))
	post(consumer.URL+"/messages/ack", fmt.Sprintf(`{"receipts":[%q]}`, prompt.Messages[0].Receipt))

	got := reader{t, brokers, prefix + "answer"}.replyTo(queryID)
	if got.Text != "Run make run [1]." || got.SessionID != "ext-1" || len(got.Citations) != 1 {
		t.Fatalf("answer %+v", got)
	}
	// The external answerer itself produced no answer.
	time.Sleep(time.Second)
	reader{t, brokers, prefix + "answer"}.replyTo(queryID) // fails if there are two
	for _, p := range []*proctest.Proc{answerer, producer, consumer} {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	}
}
