package rag_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/domain"
)

// evalSet pairs questions a user would ask with the document of the
// embedded knowledge base that answers them.
var evalSet = []struct {
	give string
	want string
}{
	{"How do I start kchat on my laptop?", "running.md"},
	{"Do I need Docker or Kafka installed to try it out?", "running.md"},
	{"Which port does the consumer listen on?", "running.md"},
	{"How can I run the integration tests against a real broker?", "running.md"},
	{"How do I build the binaries?", "running.md"},
	{"What happens if I don't acknowledge a message in manual mode?", "consumer.md"},
	{"How long does the consumer wait with long polling?", "consumer.md"},
	{"Can I look at messages without consuming them?", "consumer.md"},
	{"What is a poison record?", "consumer.md"},
	{"Why are some words replaced by stars in my query?", "consumer.md"},
	{"How do I acknowledge several receipts at once?", "consumer.md"},
	{"What does the gaps field in the response mean?", "consumer.md"},
	{"What does a 202 from the producer mean?", "producer.md"},
	{"How many messages can I send in one batch request?", "producer.md"},
	{"What is the maximum message size I can post?", "producer.md"},
	{"Which content type must I send when posting a message?", "producer.md"},
	{"Is the old send_message route still supported?", "producer.md"},
	{"How do I list the topics and their retention?", "producer.md"},
	{"How many duplicates can I get after kill -9?", "delivery.md"},
	{"Can a message be skipped when a partition moves to another replica?", "delivery.md"},
	{"Does the answerer use Kafka transactions for exactly-once processing?", "delivery.md"},
	{"How do I resume a WebSocket session after reconnecting?", "websocket.md"},
	{"What frame does the server send right after I connect to /ws?", "websocket.md"},
	{"Which close code do I get when my frame is too big?", "websocket.md"},
	{"How do I pair an answer with the question I asked over the socket?", "websocket.md"},
	{"What does the rate_limited error code mean?", "websocket.md"},
	{"How can I ask a question with curl and wait for the reply?", "chat-http.md"},
	{"How do I delete a conversation?", "chat-http.md"},
	{"Where can I read the history of a session?", "chat-http.md"},
	{"When does a session expire?", "chat-http.md"},
	{"Is there a web page to chat in the browser?", "chat-http.md"},
	{"How do I use Ollama to generate answers?", "answerer.md"},
	{"Which generator is the default and does it need a model?", "answerer.md"},
	{"Can I write my own answering worker in Python?", "answerer.md"},
	{"How do I answer questions from my own documentation files?", "answerer.md"},
	{"How are documents split into passages?", "answerer.md"},
	{"Which environment variable sets the Kafka brokers?", "configuration.md"},
	{"How do I change the log level?", "configuration.md"},
	{"What is the default number of partitions for new topics?", "configuration.md"},
	{"Which variable holds the Redis URL for sessions?", "configuration.md"},
	{"Why does readyz return 503?", "troubleshooting.md"},
	{"What happens when Redis goes down?", "troubleshooting.md"},
	{"My question was acknowledged but no answer ever came back", "troubleshooting.md"},
	{"The service refuses to start with a configuration error", "troubleshooting.md"},
	{"How do I require tokens from users?", "security.md"},
	{"Can another user read my session?", "security.md"},
	{"How do I allow my website's origin to open the websocket?", "security.md"},
	{"Should I expose the producer service to the internet?", "security.md"},
	{"What is kchat?", "overview.md"},
	{"Which Kafka topics does a question go through?", "overview.md"},
	{"What fields does the message envelope have?", "overview.md"},
}

// offTopic are questions the embedded knowledge base cannot answer.
var offTopic = []string{
	"What is the capital of France?",
	"best pizza recipe",
	"How tall is Mount Everest?",
	"Who won the football world cup in 2018?",
	"How do I bake sourdough bread?",
	"What is the weather like tomorrow in Paris?",
	"Recommend a good novel to read on holiday",
	"How many legs does a spider have?",
}

func TestEvalRecall(t *testing.T) {
	ix := newDefault(t)
	const k = 3
	hits := 0
	for _, tt := range evalSet {
		got, err := ix.Retrieve(context.Background(), domain.Query{Text: tt.give}, k)
		if err != nil {
			t.Fatalf("Retrieve(%q): %v", tt.give, err)
		}
		if slices.ContainsFunc(got, func(p domain.Passage) bool { return p.Source == tt.want }) {
			hits++
			continue
		}
		t.Logf("miss: %q: want %s, got %s", tt.give, tt.want, describe(got))
	}
	recall := float64(hits) / float64(len(evalSet))
	t.Logf("recall@%d = %.2f (%d/%d)", k, recall, hits, len(evalSet))
	if recall < 0.8 {
		t.Errorf("recall@%d = %.2f, want at least 0.80", k, recall)
	}
}

func TestOffTopicGetsNoPassage(t *testing.T) {
	ix := newDefault(t)
	for _, q := range offTopic {
		got, err := ix.Retrieve(context.Background(), domain.Query{Text: q}, 3)
		if err != nil {
			t.Fatalf("Retrieve(%q): %v", q, err)
		}
		if len(got) != 0 {
			t.Errorf("Retrieve(%q) = %s, want no passage", q, describe(got))
		}
	}
}

func newDefault(t *testing.T) *rag.Index {
	t.Helper()
	ix, err := rag.New(rag.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	return ix
}

// describe lists passages as source (score) for failure messages.
func describe(ps []domain.Passage) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s [%s] (%.2f)", p.Source, p.Title, p.Score))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// TestCalibration shows the margin MinScore sits in: the best unfiltered
// score of each off-topic question against the best score of each eval
// question. It fails if MinScore no longer separates them.
func TestCalibration(t *testing.T) {
	ix := newDefault(t)
	top := func(q string) domain.Passage {
		ps, err := rag.RetrieveUnfiltered(ix, context.Background(), q, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			return domain.Passage{}
		}
		return ps[0]
	}
	var offMax float64
	for _, q := range offTopic {
		p := top(q)
		t.Logf("off-topic %-45q best %.3f %s", q, p.Score, p.Source)
		offMax = max(offMax, p.Score)
	}
	onMin := math.Inf(1)
	var scores []float64
	for _, tt := range evalSet {
		p := top(tt.give)
		scores = append(scores, p.Score)
		onMin = min(onMin, p.Score)
	}
	slices.Sort(scores)
	t.Logf("off-topic best score max = %.3f; eval best score min = %.3f, p10 = %.3f, median = %.3f; MinScore = %.2f",
		offMax, onMin, scores[len(scores)/10], scores[len(scores)/2], rag.MinScore)
	if offMax >= rag.MinScore {
		t.Errorf("an off-topic question scores %.3f >= MinScore %.2f", offMax, rag.MinScore)
	}
	if onMin < rag.MinScore {
		t.Errorf("an eval question's best passage scores %.3f < MinScore %.2f", onMin, rag.MinScore)
	}
}
