package app

import (
	"context"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// ListTopics describes the query, prompt and answer topics.
type ListTopics struct {
	Topics ports.TopicAdmin
}

// Execute returns the three topics in pipeline order. Errors:
// domain.ErrUnavailable when the broker does not answer, domain.ErrNotFound
// while a topic does not exist yet.
func (uc *ListTopics) Execute(ctx context.Context) ([]domain.TopicInfo, error) {
	return uc.Topics.DescribeTopics(ctx)
}
