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
//
// Reply names where the answer to a question of sessionID asked now must
// go for this process to read it (docs/design.md, "Answer routing"); unset
// when the feed reads every answer anyway.
//
// Widen has the feed read every answer committed from its return on,
// wherever it was routed, until release is called (or the feed's grace
// period ends): a session resumed in this process while its answer was
// routed to another gets it. Errors: the feed could not widen (Kafka does
// not answer).
type AnswerFeed interface {
	Subscribe(ctx context.Context, fn func(domain.Message)) error
	Reply(sessionID string) domain.Reply
	Widen(ctx context.Context) (release func(), err error)
}

// Limiter bounds how often something may happen per key: kchat limits the
// questions of each user, over every entry point (WebSocket, POST /chat).
//
// Allow reports whether one more event for key is allowed now and counts
// it when it is; false means over the limit, and nothing is counted. It
// never blocks. Errors: domain.ErrUnavailable when a limiter kept outside
// the process does not answer (the caller then refuses the event: limits
// fail closed). Safe for concurrent use.
type Limiter interface {
	Allow(ctx context.Context, key string) (bool, error)
}

// DeltaFeed delivers the answer deltas of the pipeline to this process as
// they are written (read uncommitted: they ride no transaction).
//
// Subscribe calls fn with every delta written from now on, in order per
// session, until ctx ends; fn must not block for long. Unverified: the
// subscriber checks each delta's signature. Safe for concurrent use.
type DeltaFeed interface {
	Subscribe(ctx context.Context, fn func(domain.Delta)) error
}
