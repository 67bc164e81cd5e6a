package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// The answerer killed with -9 mid-stream 3 times over 100 streamed
// questions (a model slow enough that kills land mid-stream, the answerer
// restarted under its name each time): every question has exactly one
// final answer; on the stream topic each question's attempts come in
// increasing order, each with seqs 0, 1, 2… in order, and the last
// attempt's text is the final answer, so a client that keeps the greatest
// attempt never shows two mixed nor a text that differs from the answer.
func TestIntegrationStreamingAnswererKill9MidStream(t *testing.T) {
	prefix := testenv.Prefix("it-streamkill")
	brokers := kafkatest.Real(t, prefix)
	_, url := newSlowModel(t, 30, 15*time.Millisecond) // about 450 ms an answer
	rig := newFailoverRig(t, rigConfig{
		Brokers: brokers, RedisURL: testenv.RedisURL(t), Prefix: prefix,
		SessionTimeout: 6 * time.Second, TransactionTimeout: 10 * time.Second,
		Env: []string{"KCHAT_GENERATOR=openai", "KCHAT_LLM_BASE_URL=" + url, "KCHAT_LLM_MODEL=slow", "KCHAT_LLM_ATTEMPTS=1"},
	})
	rig.start("a")
	deltas := startDeltaClock(t, brokers, domain.StreamTopicName(prefix))
	rig.serving("a")

	const questions, kills = 100, 3
	var mu sync.Mutex
	var ids []string
	asked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(ids)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range questions {
			id, _ := rig.ask()
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
			time.Sleep(60 * time.Millisecond)
		}
	})

	midStream := 0
	for k := range kills {
		// Spread the kills over the questions.
		for asked() < (k+1)*questions/(kills+1) {
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		sofar := append([]string(nil), ids...)
		mu.Unlock()
		streaming := waitMidStream(t, rig, deltas, sofar)
		rig.procs["a"].kill()
		midStream += streaming
		t.Logf("kill %d: %d questions were mid-stream", k+1, streaming)
		rig.start("a")
	}
	wg.Wait()
	rig.answers.wait(t, ids, 180*time.Second)
	rig.checkExactlyOnce()

	key, err := domain.NewAnswerKey([]byte(testAnswerKey))
	if err != nil {
		t.Fatal(err)
	}
	finals := finalAnswers(t, brokers, prefix)
	retried := 0
	for _, id := range ids {
		if checkDeltas(t, key, deltas.of(id), finals[id]) > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatalf("no question streamed under two attempts: the kills (%d questions mid-stream) tested nothing", midStream)
	}
	t.Logf("%d questions, %d kills with %d questions mid-stream, %d questions streamed again under a new attempt", len(ids), kills, midStream, retried)
}

// waitMidStream waits until a question of ids has deltas and no final
// answer yet, and returns how many are so.
func waitMidStream(t *testing.T, rig *failoverRig, deltas *deltaClock, ids []string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rig.answers.mu.Lock()
		n := 0
		for _, id := range ids {
			if _, answered := rig.answers.at[id]; !answered && len(deltas.of(id)) > 0 {
				n++
			}
		}
		rig.answers.mu.Unlock()
		if n > 0 {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("no question was mid-stream within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finalAnswers reads the answer topic to its end (read_committed), by
// reply_to.
func finalAnswers(t *testing.T, brokers []string, prefix string) map[string]domain.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs, err := kafkatest.ReadToEnd(ctx, brokers, kafkatest.ReadOptions{Committed: true}, prefix+"answer")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]domain.Message{}
	for _, rec := range recs {
		m, err := kafka.DecodeValue(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		out[m.ReplyTo] = m
	}
	return out
}
