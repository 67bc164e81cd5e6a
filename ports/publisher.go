package ports

import (
	"context"

	"github.com/kchat/kchat/domain"
)

// Publisher appends messages to the topic of their type.
//
// Publish blocks until the message is durably stored (for Kafka: acknowledged
// by all in-sync replicas) and returns where it landed. It is safe for
// concurrent use. Cancelling ctx never abandons a write that is already under
// way: the call returns within the implementation's bounded delivery timeout
// either way. Errors: domain.ErrUnavailable when the store did not accept the
// message in time (the message may or may not have been stored; a retry with
// the same message_id is the caller's choice), or a wrapped error for anything
// else. Messages must be valid (domain.Message.Validate).
//
// PublishBatch publishes several messages at once and returns one result per
// message, in input order. Messages with the same session keep their order.
type Publisher interface {
	Publish(ctx context.Context, msg domain.Message) (domain.Position, error)
	PublishBatch(ctx context.Context, msgs []domain.Message) []PublishResult
}

// PublishResult is the outcome of one message of a batch.
type PublishResult struct {
	Position domain.Position
	Err      error
}

// TopicAdmin manages kchat's topics.
//
// EnsureTopics creates the query, prompt and answer topics when they are
// missing and leaves existing ones as they are (reporting config drift through
// logs). It blocks until done or ctx ends; it returns domain.ErrUnavailable
// when the store does not answer. Safe for concurrent use and idempotent.
//
// DescribeTopics returns the three topics as the store sees them, in pipeline
// order; domain.ErrUnavailable when the store does not answer, and
// domain.ErrNotFound when a topic does not exist (yet).
type TopicAdmin interface {
	EnsureTopics(ctx context.Context) error
	DescribeTopics(ctx context.Context) ([]domain.TopicInfo, error)
}
