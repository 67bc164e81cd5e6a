package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// poisonQueue serves the same deliveries to every Next and Browse, poison
// records among them, as a Kafka topic holding records that are no
// message would.
type poisonQueue struct {
	ports.MessageQueue
	ds []domain.Delivery
}

func (q poisonQueue) Next(context.Context, ports.NextRequest) (ports.Batch, error) {
	return ports.Batch{Deliveries: slices.Clone(q.ds)}, nil
}

func (q poisonQueue) Browse(context.Context, domain.MessageType, int) ([]domain.Delivery, error) {
	return slices.Clone(q.ds), nil
}

func (poisonQueue) Ack(context.Context, []string) error { return nil }

// A query record that cannot be decoded is masked too (issue 15, point 3):
// its raw bytes as text when they are UTF-8, withheld when they are not.
// Poison of the other topics is served as it is.
func TestPoisonQueriesAreMasked(t *testing.T) {
	q := poisonQueue{ds: []domain.Delivery{
		{Topic: "query", Offset: 1, Poison: "decode envelope: version 0, want 1", Raw: []byte(`{"message":"well darn it"`)},
		{Topic: "query", Offset: 2, Poison: "decode envelope: invalid character", Raw: []byte("darn\xff\xfe")},
		{Topic: "query", Offset: 3, Poison: "decode envelope: invalid character", Raw: []byte("clean")},
	}}
	fetch := &app.FetchNext{Queue: q, Censor: starCensor{}, Lease: time.Minute}
	res, err := fetch.Execute(context.Background(), app.FetchNextInput{Type: domain.TypeQuery, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	browsed, err := (&app.Browse{Queue: q, Censor: starCensor{}}).Execute(context.Background(), domain.TypeQuery, 3)
	if err != nil {
		t.Fatal(err)
	}
	for name, ds := range map[string][]domain.Delivery{"fetched": res.Deliveries, "browsed": browsed} {
		if got := string(ds[0].Raw); got != `{"message":"well **** it"` || !ds[0].Censored {
			t.Errorf("%s: poison query served raw %q censored=%v, want the word masked", name, got, ds[0].Censored)
		}
		if ds[1].Raw != nil || !ds[1].Censored {
			t.Errorf("%s: poison query that is no UTF-8 served raw %q, want it withheld", name, ds[1].Raw)
		}
		if string(ds[2].Raw) != "clean" || ds[2].Censored {
			t.Errorf("%s: clean poison served %q censored=%v", name, ds[2].Raw, ds[2].Censored)
		}
	}
	if string(q.ds[0].Raw) != `{"message":"well darn it"` {
		t.Error("masking changed the queue's own bytes")
	}

	answers, err := fetch.Execute(context.Background(), app.FetchNextInput{Type: domain.TypeAnswer, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if string(answers.Deliveries[0].Raw) != `{"message":"well darn it"` {
		t.Errorf("poison of the answer topic served %q, want it as it is", answers.Deliveries[0].Raw)
	}
}
