package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// starCensor masks the word "darn".
type starCensor struct{}

func (starCensor) Censor(s string) (string, bool) {
	out := strings.ReplaceAll(s, "darn", "****")
	return out, out != s
}

func setup(t *testing.T) (*memory.Broker, *app.FetchNext) {
	t.Helper()
	b := memory.NewBroker("")
	return b, &app.FetchNext{Queue: memory.NewQueue(b, "g", []byte("fetch-next-test-receipt-key-32-b")), Censor: starCensor{}, Lease: time.Minute}
}

func publish(t *testing.T, b *memory.Broker, typ domain.MessageType, text string) {
	t.Helper()
	msg := domain.Message{MessageID: domain.NewMessageID(), SessionID: "s", UserID: "u", Type: typ, Text: text}
	if _, err := b.Publish(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

func TestFetchNextValidates(t *testing.T) {
	_, uc := setup(t)
	tests := []struct {
		give      app.FetchNextInput
		wantField string
	}{
		{app.FetchNextInput{Type: "nope", Limit: 1}, "type"},
		{app.FetchNextInput{Type: domain.TypeQuery, Limit: 0}, "limit"},
		{app.FetchNextInput{Type: domain.TypeQuery, Limit: 501}, "limit"},
		{app.FetchNextInput{Type: domain.TypeQuery, Limit: 1, Wait: 31 * time.Second}, "wait"},
		{app.FetchNextInput{Type: domain.TypeQuery, Limit: 1, Wait: -time.Second}, "wait"},
	}
	for _, tt := range tests {
		_, err := uc.Execute(context.Background(), tt.give)
		var verr *domain.ValidationError
		if !errors.As(err, &verr) || verr.Field != tt.wantField {
			t.Errorf("Execute(%+v) = %v, want a validation error on %s", tt.give, err, tt.wantField)
		}
	}
}

func TestFetchNextCensorsQueriesOnly(t *testing.T) {
	b, uc := setup(t)
	publish(t, b, domain.TypeQuery, "well darn it")
	publish(t, b, domain.TypeAnswer, "darn is fine in answers")
	q, err := uc.Execute(context.Background(), app.FetchNextInput{Type: domain.TypeQuery, Limit: 1})
	if err != nil || len(q.Deliveries) != 1 {
		t.Fatalf("query: %v %v", q, err)
	}
	if d := q.Deliveries[0]; d.Message.Text != "well **** it" || !d.Censored {
		t.Errorf("query delivered %q censored=%v", d.Message.Text, d.Censored)
	}
	if stored := b.Messages("query"); stored[q.Deliveries[0].Partition][0].Text != "well darn it" {
		t.Errorf("the stored query changed: %q", stored[q.Deliveries[0].Partition][0].Text)
	}
	a, _ := uc.Execute(context.Background(), app.FetchNextInput{Type: domain.TypeAnswer, Limit: 1})
	if d := a.Deliveries[0]; d.Censored || d.Message.Text != "darn is fine in answers" {
		t.Errorf("answer delivered %q censored=%v", d.Message.Text, d.Censored)
	}
}

func TestFetchNextAutoSettles(t *testing.T) {
	b, uc := setup(t)
	publish(t, b, domain.TypeQuery, "one")
	publish(t, b, domain.TypeQuery, "two")
	ctx := context.Background()
	first, _ := uc.Execute(ctx, app.FetchNextInput{Type: domain.TypeQuery, Limit: 1})
	if err := first.Settle(ctx, false); err != nil { // the write failed
		t.Fatal(err)
	}
	again, _ := uc.Execute(ctx, app.FetchNextInput{Type: domain.TypeQuery, Limit: 1})
	if again.Deliveries[0].Message.Text != "one" {
		t.Fatalf("after a failed write got %q, want the same message back at the head", again.Deliveries[0].Message.Text)
	}
	if err := again.Settle(ctx, true); err != nil {
		t.Fatal(err)
	}
	next, _ := uc.Execute(ctx, app.FetchNextInput{Type: domain.TypeQuery, Limit: 5})
	if len(next.Deliveries) != 1 || next.Deliveries[0].Message.Text != "two" {
		t.Fatalf("after a written response got %d messages, want only the second", len(next.Deliveries))
	}
}

func TestFetchNextManualNeedsAcknowledge(t *testing.T) {
	b, uc := setup(t)
	publish(t, b, domain.TypeQuery, "one")
	ctx := context.Background()
	got, _ := uc.Execute(ctx, app.FetchNextInput{Type: domain.TypeQuery, Limit: 1, Manual: true})
	if err := got.Settle(ctx, true); err != nil { // a no-op for manual
		t.Fatal(err)
	}
	ack := &app.Acknowledge{Queue: uc.Queue}
	if err := ack.Execute(ctx, nil); err == nil {
		t.Error("acknowledging nothing was accepted")
	}
	if err := ack.Execute(ctx, []string{got.Deliveries[0].Receipt}); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}
	var unknown *domain.UnknownReceiptsError
	if err := ack.Execute(ctx, []string{got.Deliveries[0].Receipt}); !errors.As(err, &unknown) {
		t.Fatalf("acknowledging twice = %v, want UnknownReceiptsError", err)
	}
}

func TestBrowse(t *testing.T) {
	b, uc := setup(t)
	publish(t, b, domain.TypeQuery, "darn one")
	br := &app.Browse{Queue: uc.Queue, Censor: starCensor{}}
	ds, err := br.Execute(context.Background(), domain.TypeQuery, 10)
	if err != nil || len(ds) != 1 || ds[0].Message.Text != "**** one" {
		t.Fatalf("Browse = %v, %v", ds, err)
	}
	if _, err := br.Execute(context.Background(), domain.TypeQuery, 0); err == nil {
		t.Error("limit 0 accepted")
	}
	// Browsing consumed nothing.
	got, _ := uc.Execute(context.Background(), app.FetchNextInput{Type: domain.TypeQuery, Limit: 1})
	if len(got.Deliveries) != 1 {
		t.Fatal("the browsed message was consumed")
	}
}
