package app

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Limits of one fetch (docs/design.md, "Consumer").
const (
	MaxFetchLimit = 500
	MaxFetchWait  = 30 * time.Second
)

// FetchNextInput asks for the next unconsumed messages of a type.
type FetchNextInput struct {
	Type  domain.MessageType
	Limit int
	Wait  time.Duration
	// Manual leases the messages until acknowledged (ack=manual); otherwise
	// they count as consumed once the response is written (ack=auto).
	Manual bool
}

// FetchNextResult is what was fetched. With ack=auto the caller must call
// Settle once it knows whether the response reached the client.
type FetchNextResult struct {
	Deliveries []domain.Delivery
	Gaps       []domain.Gap
	settle     func(ctx context.Context, written bool) error
}

// Settle acknowledges the deliveries when written (the committed offset may
// move past them) or puts them back at the head when not. With ack=manual
// it does nothing: the client acknowledges.
func (r FetchNextResult) Settle(ctx context.Context, written bool) error {
	if r.settle == nil {
		return nil
	}
	return r.settle(ctx, written)
}

// FetchNext hands out the next unconsumed messages of a topic, with
// profanity masked in queries.
type FetchNext struct {
	Queue  ports.MessageQueue
	Censor ports.Censor
	// Lease is how long ack=manual messages stay invisible.
	Lease time.Duration
}

// autoLease bounds an ack=auto lease: the response write settles it long
// before, unless the process is stuck.
const autoLease = 30 * time.Second

// Execute returns a *domain.ValidationError for a bad request and
// domain.ErrUnavailable when Kafka does not answer.
func (uc *FetchNext) Execute(ctx context.Context, in FetchNextInput) (FetchNextResult, error) {
	switch {
	case !in.Type.Valid():
		return FetchNextResult{}, &domain.ValidationError{Field: "type", Reason: fmt.Sprintf("must be one of query, prompt, answer; got %q", in.Type)}
	case in.Limit < 1 || in.Limit > MaxFetchLimit:
		return FetchNextResult{}, &domain.ValidationError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d, got %d", MaxFetchLimit, in.Limit)}
	case in.Wait < 0 || in.Wait > MaxFetchWait:
		return FetchNextResult{}, &domain.ValidationError{Field: "wait", Reason: fmt.Sprintf("must be between 0s and %s, got %s", MaxFetchWait, in.Wait)}
	}
	lease := autoLease
	if in.Manual {
		lease = uc.Lease
	}
	b, err := uc.Queue.Next(ctx, ports.NextRequest{Type: in.Type, Limit: in.Limit, Wait: in.Wait, Lease: lease, AutoAck: !in.Manual})
	if err != nil {
		return FetchNextResult{}, err
	}
	res := FetchNextResult{Deliveries: b.Deliveries, Gaps: b.Gaps}
	censor(uc.Censor, in.Type, res.Deliveries)
	if !in.Manual && len(res.Deliveries) > 0 {
		receipts := make([]string, len(res.Deliveries))
		for i := range res.Deliveries {
			// With ack=auto the receipt is the use case's business, not the client's.
			receipts[i], res.Deliveries[i].Receipt = res.Deliveries[i].Receipt, ""
		}
		res.settle = func(ctx context.Context, written bool) error {
			if written {
				return uc.Queue.Ack(ctx, receipts)
			}
			return uc.Queue.Release(ctx, receipts)
		}
	}
	return res, nil
}

// censor masks profanity in the deliveries of typ when it is the query
// topic: in a message's text, and in a poison record's raw bytes, masked as
// text when they are UTF-8 and withheld when they are not, so that no path
// serves a query unmasked (docs/design.md, "Consumer").
func censor(c ports.Censor, typ domain.MessageType, ds []domain.Delivery) {
	if c == nil || typ != domain.TypeQuery {
		return
	}
	for i := range ds {
		d := &ds[i]
		if d.Poison == "" {
			d.Message.Text, d.Censored = c.Censor(d.Message.Text)
			continue
		}
		if !utf8.Valid(d.Raw) {
			d.Raw, d.Censored = nil, true
			continue
		}
		var raw string
		raw, d.Censored = c.Censor(string(d.Raw))
		d.Raw = []byte(raw)
	}
}
