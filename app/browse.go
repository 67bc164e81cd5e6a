package app

import (
	"context"
	"fmt"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Browse reads a topic from its beginning without consuming anything, with
// profanity masked in queries.
type Browse struct {
	Queue  ports.MessageQueue
	Censor ports.Censor
}

// Execute returns up to limit messages of typ from the beginning.
func (uc *Browse) Execute(ctx context.Context, typ domain.MessageType, limit int) ([]domain.Delivery, error) {
	switch {
	case !typ.Valid():
		return nil, &domain.ValidationError{Field: "type", Reason: fmt.Sprintf("must be one of query, prompt, answer; got %q", typ)}
	case limit < 1 || limit > MaxFetchLimit:
		return nil, &domain.ValidationError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d, got %d", MaxFetchLimit, limit)}
	}
	ds, err := uc.Queue.Browse(ctx, typ, limit)
	if err != nil {
		return nil, err
	}
	censor(uc.Censor, typ, ds)
	return ds, nil
}
