package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// TestIntegrationExternalGenerator: with KCHAT_GENERATOR=external the
// answerer only prepares prompts; a worker written against the HTTP APIs
// (poll the consumer, post to the answerer's POST /answers) answers them,
// and its answer reaches the asker's POST /chat on a gateway. An answer
// posted to the producer first, as workers used to, reaches no one. Every
// service is a process of its own, on the real Kafka and Redis.
func TestIntegrationExternalGenerator(t *testing.T) {
	prefix := testenv.Prefix("it-ext")
	brokers := kafkatest.Real(t, prefix)
	common := []string{
		"KCHAT_KAFKA_BROKERS=" + strings.Join(brokers, ","), "KCHAT_TOPIC_PREFIX=" + prefix,
		"KCHAT_REDIS_URL=" + testenv.RedisURL(t), "KCHAT_REDIS_PREFIX=" + prefix,
		"KCHAT_ANSWER_KEY=" + testAnswerKey,
	}
	answerer := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/answerer"), "KCHAT_ANSWERER_ADDR",
		append(common, "KCHAT_GENERATOR=external", "KCHAT_ANSWERER_GROUP="+prefix+"answerer", "KCHAT_ANSWERER_INSTANCE=ext")...)
	producer := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/producer"), "KCHAT_PRODUCER_ADDR", common...)
	consumer := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/consumer"), "KCHAT_CONSUMER_ADDR",
		append(common, "KCHAT_CONSUMER_GROUP="+prefix+"worker", "KCHAT_RECEIPT_KEY=kchat-test-receipt-key-0123456789abcdef")...)
	gateway := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/gateway"), "KCHAT_GATEWAY_ADDR",
		append(common, "KCHAT_AUTH=token", "KCHAT_AUTH_TOKENS=tok-dana:dana")...)

	type chatResult struct {
		status int
		body   map[string]any
	}
	chatted := make(chan chatResult, 1)
	go func() {
		status, body := call(t, http.MethodPost, gateway.URL+"/chat", "tok-dana", `{"session_id":"ext-1","message":"How do I start kchat?"}`)
		chatted <- chatResult{status, body}
	}()

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
				Metadata  map[string]any `json:"metadata"`
				Signature string         `json:"signature"`
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
	if prompt.Count != 1 || prompt.Messages[0].Value.SessionID != "ext-1" || len(prompt.Messages[0].Value.Citations) == 0 {
		t.Fatalf("prompt for the worker: %+v", prompt)
	}
	p := prompt.Messages[0].Value
	if _, ok := p.Metadata["prompt"].(string); !ok {
		t.Fatal("the prompt carries no rendered prompt for outside models")
	}
	if p.Signature == "" {
		t.Fatal("the prompt is not signed")
	}
	// An answer through the producer, as workers used to send them: it
	// is published, unsigned, and must not reach dana.
	if status, body := call(t, http.MethodPost, producer.URL+"/messages", "", fmt.Sprintf(`{"session_id":%q,"user_id":%q,"type":"answer","reply_to":%q,"message":"FORGED through the producer"}`,
		p.SessionID, p.UserID, p.ReplyTo)); status != http.StatusAccepted {
		t.Fatalf("producer: %d %v", status, body)
	}
	answer := fmt.Sprintf(`{"session_id":%q,"reply_to":%q,"message":"Run make run [1].","citations":[{"n":1,"source":%q}]}`, p.SessionID, p.ReplyTo, p.Citations[0].Source)
	if status, body := call(t, http.MethodPost, answerer.URL+"/answers", "", answer); status != http.StatusAccepted {
		t.Fatalf("POST /answers: %d %v", status, body)
	}
	if status, body := call(t, http.MethodPost, answerer.URL+"/answers", "", strings.Replace(answer, "Run make run", "Something else", 1)); status != http.StatusConflict {
		t.Fatalf("a second, different answer: %d %v, want 409", status, body)
	}
	if status, body := call(t, http.MethodPost, consumer.URL+"/messages/ack", "", fmt.Sprintf(`{"receipts":[%q]}`, prompt.Messages[0].Receipt)); status != http.StatusOK {
		t.Fatalf("ack: %d %v", status, body)
	}

	res := <-chatted
	if got, _ := res.body["answer"].(map[string]any); res.status != http.StatusOK || got["message"] != "Run make run [1]." || res.body["message_id"] != p.ReplyTo {
		t.Fatalf("POST /chat: %d %v, want the worker's answer", res.status, res.body)
	}
	// The answer topic holds the producer's unsigned answer and exactly one
	// signed answer, the worker's: the external answerer wrote no other.
	key, err := domain.NewAnswerKey([]byte(testAnswerKey))
	if err != nil {
		t.Fatal(err)
	}
	var signed []domain.Message
	for _, r := range kafkatest.ReadAll(t, brokers, prefix+"answer", 2, 10*time.Second) {
		if m, err := kafka.DecodeValue(r.Value); err == nil && m.ReplyTo == p.ReplyTo && key.Verify(m) == nil {
			signed = append(signed, m)
		}
	}
	if len(signed) != 1 || signed[0].Text != "Run make run [1]." || signed[0].UserID != "dana" {
		t.Fatalf("signed answers to the question: %+v, want the worker's alone", signed)
	}
	// The answer is in the session, as the generate stage would record it.
	status, hist := call(t, http.MethodGet, gateway.URL+"/sessions/ext-1/history", "tok-dana", "")
	if turns, _ := hist["turns"].([]any); status != http.StatusOK || len(turns) != 2 || turns[1].(map[string]any)["text"] != "Run make run [1]." {
		t.Fatalf("history: %d %v, want the question and the worker's answer", status, hist)
	}
	for _, p := range []*proctest.Proc{gateway, answerer, producer, consumer} {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	}
}

// call sends a JSON request, with a bearer token when one is given, and
// decodes the JSON answer.
func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}
