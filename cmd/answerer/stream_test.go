package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/fakemodel"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// newSlowModel is the fake model (internal/fakemodel) streaming answers of
// n tokens, one every delay, to questions tagged "zqref<n>".
func newSlowModel(t *testing.T, n int, delay time.Duration) (*fakemodel.Server, string) {
	t.Helper()
	m := fakemodel.Start(n, delay, "zqref")
	t.Cleanup(m.Close)
	return m, m.URL()
}

// arrivedDelta is a delta as a gateway would read it, and when.
type arrivedDelta struct {
	wire.Delta
	at time.Time
}

// deltaClock reads the stream topic at read_uncommitted, as gateways do,
// and keeps every delta with its arrival time, in topic order.
type deltaClock struct {
	mu      sync.Mutex
	byReply map[string][]arrivedDelta
}

func startDeltaClock(t *testing.T, brokers []string, topic string) *deltaClock {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// The answerer creates the topic; a reader started before it exists
	// would learn of it only at a later metadata refresh, late.
	adm := kadm.NewClient(cl)
	for deadline := time.Now().Add(60 * time.Second); ; {
		details, err := adm.ListTopics(context.Background(), topic)
		if err == nil && details.Has(topic) && details[topic].Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream topic %s was never created", topic)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := &deltaClock{byReply: map[string][]arrivedDelta{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			now := time.Now()
			fetches.EachRecord(func(rec *kgo.Record) {
				var d wire.Delta
				if json.Unmarshal(rec.Value, &d) != nil {
					t.Errorf("stream record %d@%d is not a delta: %q", rec.Partition, rec.Offset, rec.Value)
					return
				}
				if string(rec.Key) != d.SessionID {
					t.Errorf("delta of %s keyed %q, want its session %q", d.ReplyTo, rec.Key, d.SessionID)
				}
				c.mu.Lock()
				c.byReply[d.ReplyTo] = append(c.byReply[d.ReplyTo], arrivedDelta{d, now})
				c.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return c
}

func (c *deltaClock) of(replyTo string) []arrivedDelta {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.byReply[replyTo])
}

// checkDeltas checks the deltas of one question: each verifies with key;
// attempts come in increasing order, each attempt's seqs 0, 1, 2… with no
// gap or repeat; the greatest attempt adds up to the final answer. It
// returns the attempts seen.
func checkDeltas(t *testing.T, key *domain.AnswerKey, ds []arrivedDelta, final domain.Message) int {
	t.Helper()
	if len(ds) == 0 {
		t.Errorf("question %s: no delta", final.ReplyTo)
		return 0
	}
	var attempts []int64
	texts := map[int64]string{}
	next := map[int64]int{}
	for _, d := range ds {
		if err := key.VerifyDelta(d.Domain()); err != nil {
			t.Errorf("question %s: delta %d/%d does not verify: %v", final.ReplyTo, d.Attempt, d.Seq, err)
		}
		if d.Attempt != attemptsLast(attempts) {
			if d.Attempt < attemptsLast(attempts) || slices.Contains(attempts, d.Attempt) {
				t.Errorf("question %s: attempt %d after attempts %v: not increasing", final.ReplyTo, d.Attempt, attempts)
			}
			attempts = append(attempts, d.Attempt)
		}
		if d.Seq != next[d.Attempt] {
			t.Errorf("question %s attempt %d: seq %d, want %d", final.ReplyTo, d.Attempt, d.Seq, next[d.Attempt])
		}
		next[d.Attempt] = d.Seq + 1
		texts[d.Attempt] += d.Text
	}
	if got := texts[attemptsLast(attempts)]; got != final.Text {
		t.Errorf("question %s: the last attempt's deltas add up to %q, the final answer is %q", final.ReplyTo, got, final.Text)
	}
	return len(attempts)
}

func attemptsLast(a []int64) int64 {
	if len(a) == 0 {
		return -1
	}
	return a[len(a)-1]
}

func TestStreamingAnswersKfake(t *testing.T) {
	testStreamingAnswers(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationStreamingAnswers(t *testing.T) {
	prefix := testenv.Prefix("it-stream")
	testStreamingAnswers(t, kafkatest.Real(t, prefix), prefix)
}

// testStreamingAnswers: with a model writing 50 tokens 20 ms apart, the
// first delta of each of 20 questions is on the stream topic before the
// model wrote its 10th token, and the deltas add up to the final answer.
func testStreamingAnswers(t *testing.T, brokers []string, prefix string) {
	const questions, tokens, delay = 20, 50, 20 * time.Millisecond
	model, url := newSlowModel(t, tokens, delay)
	cfg := testConfig(brokers, prefix)
	cfg.Answerer.LLM.Generator, cfg.Answerer.LLM.BaseURL, cfg.Answerer.LLM.Model = "openai", url, "test-model"
	cfg.Answerer.Stage.Concurrency = questions
	startApp(t, cfg)
	key, err := domain.NewAnswerKey([]byte(testAnswerKey))
	if err != nil {
		t.Fatal(err)
	}
	deltas := startDeltaClock(t, brokers, domain.StreamTopicName(prefix))

	asked := make([]domain.Message, questions)
	var wg sync.WaitGroup
	for i := range asked {
		wg.Go(func() {
			asked[i] = askIn(t, brokers, prefix, fmt.Sprintf("s%d", i), fmt.Sprintf("How do I start kchat? zqref%d", i))
		})
	}
	wg.Wait()
	answers := reader{t, brokers, prefix + "answer"}
	var leads []time.Duration
	for i, q := range asked {
		a := answers.replyTo(q.MessageID)
		if _, failed := a.Failure(); failed {
			t.Fatalf("question %d failed: %v", i, a.Metadata)
		}
		ref := fmt.Sprint(i)
		ds := deltas.of(q.MessageID)
		checkDeltas(t, key, ds, a)
		tenth, ok := model.TokenAt(ref, 9)
		if !ok || len(ds) == 0 {
			t.Fatalf("question %d: the model wrote no 10th token, or no delta came", i)
		}
		first, _ := model.TokenAt(ref, 0)
		if !ds[0].at.Before(tenth) {
			t.Errorf("question %d: first delta %s after the first token, the 10th came after %s", i, ds[0].at.Sub(first), tenth.Sub(first))
		}
		leads = append(leads, ds[0].at.Sub(first))
		// At most one delta per 50 ms of the model's writing (as long as
		// it really took) and one per sentence, plus the first and the last.
		last, _ := model.TokenAt(ref, tokens-1)
		if n := len(ds); n > int(last.Sub(first)/(50*time.Millisecond))+tokens/10+2 {
			t.Errorf("question %d: %d deltas for %d tokens over %s: more than one per 50 ms and per sentence", i, n, tokens, last.Sub(first))
		}
	}
	slices.Sort(leads)
	t.Logf("first delta after the model's first token: p50 %s, max %s (the 10th token comes %s after the first)", leads[len(leads)/2], leads[len(leads)-1], 9*delay)
}

// A generation that fails after streaming part of its answer is followed by
// the failure answer, never a silent stop.
func TestStreamEndingInFailureIsFollowedByTheFailureAnswer(t *testing.T) {
	brokers, prefix := kafkatest.Fake(t), testenv.Prefix("kfake")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Half an answer\"}}]}\n\n")
		w.(http.Flusher).Flush()
		fmt.Fprint(w, "data: {broken\n\n") // the stream breaks
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(brokers, prefix)
	cfg.Answerer.LLM.Generator, cfg.Answerer.LLM.BaseURL, cfg.Answerer.LLM.Model = "openai", srv.URL, "test-model"
	cfg.Answerer.Attempts = 1
	startApp(t, cfg)
	deltas := startDeltaClock(t, brokers, domain.StreamTopicName(prefix))
	q := askOne(t, brokers, prefix, "How do I start kchat?")
	a := reader{t, brokers, prefix + "answer"}.replyTo(q.MessageID)
	if _, failed := a.Failure(); !failed || a.Text != domain.FailedAnswerText {
		t.Fatalf("answer %q metadata %v, want the failure answer", a.Text, a.Metadata)
	}
	// The delta travels on another topic, read by another reader: it may
	// be read just after the answer (docs/design.md, "Streaming answers").
	ds := deltas.of(q.MessageID)
	for deadline := time.Now().Add(3 * time.Second); len(ds) == 0 && time.Now().Before(deadline); ds = deltas.of(q.MessageID) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(ds) != 1 || ds[0].Text != "Half an answer" {
		t.Fatalf("deltas %+v, want the half answer streamed before the failure", ds)
	}
}

// askIn publishes a question in session (each question of its own, so they
// are answered side by side).
func askIn(t *testing.T, brokers []string, prefix, session, text string) domain.Message {
	t.Helper()
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix = brokers, prefix
	cl, err := kafka.NewClient(kcfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	q := domain.Message{MessageID: domain.NewMessageID(), SessionID: session, UserID: "bob", Type: domain.TypeQuery, Text: text, CreatedAt: time.Now()}
	if _, err := kafka.NewPublisher(cl, kcfg).Publish(context.Background(), q); err != nil {
		t.Error(err)
	}
	return q
}
