package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
)

// TestIntegrationPeekTransactionalAnswers writes two answers in a
// transaction, as the answerer does, and peeks at three: the consumer must
// answer at once with the two, not 503 after waiting 10 s for the commit
// marker below the last stable offset (issue 13).
func TestIntegrationPeekTransactionalAnswers(t *testing.T) {
	w := newWorld(t, "it-peek-tx")
	tx, err := kgo.NewClient(kgo.SeedBrokers(w.brokers...), kgo.TransactionalID(w.prefix+"answerer"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Close)
	ctx := context.Background()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for range 2 {
		m := domain.Message{MessageID: domain.NewMessageID(), SessionID: "s1", UserID: "u", Type: domain.TypeAnswer, Text: "an answer", ReplyTo: domain.NewMessageID()}
		rec, err := kafka.NewRecord(domain.TopicName(w.prefix, domain.TypeAnswer), m)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want = append(want, m.MessageID)
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// The coordinator writes the commit marker after EndTransaction returns.
	adm := kadm.NewClient(tx)
	waitUntil(t, func() bool {
		stable, err := adm.ListCommittedOffsets(ctx, domain.TopicName(w.prefix, domain.TypeAnswer))
		n := int64(0)
		stable.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return err == nil && n == 3 // two answers and the marker
	}, 10*time.Second, "the transaction's commit marker")

	c := w.consumer()
	for _, path := range []string{"/messages/peek?type=answer&limit=3", "/messages?topic=answer&limit=3"} {
		start := time.Now()
		status, f, err := get(c.URL + path)
		took := time.Since(start)
		if err != nil || status != 200 {
			t.Fatalf("GET %s: %d %v after %s", path, status, err, took)
		}
		if took > 2*time.Second {
			t.Fatalf("GET %s took %s; it should answer at once with what is there", path, took)
		}
		var got []string
		for _, m := range f.Messages {
			got = append(got, m.id)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("GET %s = %s, want the two answers %s", path, strings.Join(got, ","), strings.Join(want, ","))
		}
	}
}
