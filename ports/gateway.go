package ports

import (
	"context"

	"github.com/kchat/kchat/domain"
)

// QueryPublisher sends a user's question into the pipeline.
//
// PublishQuery stores q (a valid query message) on the query topic and
// returns once it is durably stored; domain.ErrUnavailable when that could
// not be confirmed in time. Safe for concurrent use.
type QueryPublisher interface {
	PublishQuery(ctx context.Context, q domain.Message) error
}

// AnswerFeed delivers the answers of the pipeline to this process as they
// are committed.
//
// Subscribe calls fn with every answer committed from now on, in commit
// order per session, until ctx ends; fn must not block for long. Several
// subscribers each get every answer. It returns an error only if the feed
// cannot start. Safe for concurrent use.
type AnswerFeed interface {
	Subscribe(ctx context.Context, fn func(domain.Message)) error
}
