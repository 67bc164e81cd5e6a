package app

import (
	"context"
	"fmt"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Acknowledge marks ack=manual deliveries as consumed.
type Acknowledge struct {
	Queue ports.MessageQueue
}

// Execute returns a *domain.ValidationError for an empty or oversized list
// and a *domain.UnknownReceiptsError naming receipts not (or no longer)
// leased; the others are acknowledged.
func (uc *Acknowledge) Execute(ctx context.Context, receipts []string) error {
	if len(receipts) == 0 || len(receipts) > MaxFetchLimit {
		return &domain.ValidationError{Field: "receipts", Reason: fmt.Sprintf("must hold 1 to %d receipts, got %d", MaxFetchLimit, len(receipts))}
	}
	return uc.Queue.Ack(ctx, receipts)
}
