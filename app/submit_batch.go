package app

import (
	"context"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// MaxBatch is the largest number of messages one batch may hold.
const MaxBatch = 500

// SubmitBatch validates and publishes several messages with one call.
type SubmitBatch struct {
	Publisher ports.Publisher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Execute submits several messages in one go: invalid ones fail alone,
// the valid ones are published together. Results come in input order.
func (uc *SubmitBatch) Execute(ctx context.Context, ins []SubmitMessageInput) []BatchItemResult {
	results := make([]BatchItemResult, len(ins))
	valid := make([]domain.Message, 0, len(ins))
	where := make([]int, 0, len(ins))
	for i, in := range ins {
		msg, err := newMessage(in, uc.Now)
		results[i] = BatchItemResult{MessageID: msg.MessageID, Err: err}
		if err == nil {
			valid = append(valid, msg)
			where = append(where, i)
		}
	}
	if len(valid) == 0 {
		return results
	}
	for j, r := range uc.Publisher.PublishBatch(ctx, valid) {
		results[where[j]].Position, results[where[j]].Err = r.Position, r.Err
	}
	return results
}

// BatchItemResult is the outcome of one message of a batch.
type BatchItemResult struct {
	MessageID string
	Position  domain.Position
	Err       error
}
