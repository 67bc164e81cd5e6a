package restclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Publisher sends queries to Kafka through the producer service's
// POST /messages: the gateway's "producer" QueryPublisher (docs/design.md,
// "Gateway").
type Publisher struct {
	producer *Client
}

var _ ports.QueryPublisher = (*Publisher)(nil)

// NewPublisher returns a publisher to cfg.ProducerURL whose calls each take
// at most cfg.Timeout, traced with tr (nil: not traced). cfg should have
// passed Validate.
func NewPublisher(cfg Config, tr *tracing.Provider) *Publisher {
	return &Publisher{producer: newClient(cfg.ProducerURL, cfg.Timeout, tr)}
}

// PublishQuery posts q to the producer, which answers 202 only once Kafka
// acknowledged it. Errors: domain.ErrUnavailable (wrapped with the cause)
// when the producer answers 502/503/504, cannot be reached or does not
// answer in time; *domain.ValidationError when it rejects the message (422,
// 413); a plain error with the problem detail for any other status.
func (p *Publisher) PublishQuery(ctx context.Context, q domain.Message) error {
	if q.Type != domain.TypeQuery {
		return fmt.Errorf("publish query: type %q", q.Type)
	}
	body := MessageInput{
		SessionId: q.SessionID,
		UserId:    q.UserID,
		Type:      MessageInputTypeQuery,
		Message:   q.Text,
	}
	if q.MessageID != "" {
		body.MessageId = &q.MessageID
	}
	if len(q.Metadata) > 0 {
		body.Metadata = &q.Metadata
	}
	// The raw response, not PostMessageWithResponse: its parser fails on a
	// body that does not match the schema, and the status alone decides.
	var params PostMessageParams
	if q.Reply.Set {
		// The gateway's answer routing (docs/design.md, "Answer routing").
		reply := strconv.FormatInt(int64(q.Reply.Partition), 10)
		params.KchatReplyPartition = &reply
	}
	res, err := p.producer.PostMessage(ctx, &params, body)
	if err != nil {
		return fmt.Errorf("producer post message %s: %w: %w", q.MessageID, domain.ErrUnavailable, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode == http.StatusAccepted {
		return nil
	}
	return fmt.Errorf("producer post message %s: %w", q.MessageID, statusError(res))
}

// Ready reports whether the producer answers its readiness check (its
// Kafka is reachable); domain.ErrUnavailable when it does not.
func (p *Publisher) Ready(ctx context.Context) error {
	res, err := p.producer.Readyz(ctx)
	if err != nil {
		return fmt.Errorf("producer readyz: %w: %w", domain.ErrUnavailable, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("producer readyz: %w: %s", domain.ErrUnavailable, problemText(readProblem(res)))
	}
	return nil
}

// statusError translates a producer's non-success answer into a domain
// error.
func statusError(res *http.Response) error {
	p := readProblem(res)
	switch res.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		// 502 and 504 come from a proxy in front of an unreachable producer.
		return fmt.Errorf("%w: %s", domain.ErrUnavailable, problemText(p))
	case http.StatusUnprocessableEntity:
		return validationError(p)
	case http.StatusRequestEntityTooLarge:
		return &domain.ValidationError{Field: "message", Reason: "is too large"}
	default:
		return errors.New(problemText(p))
	}
}

// validationError names the first field a huma 422 problem lists
// ("body.message" → "message"), or the whole body when it lists none.
func validationError(p ErrorModel) *domain.ValidationError {
	verr := &domain.ValidationError{Field: "body", Reason: "is invalid"}
	if p.Detail != nil && *p.Detail != "" {
		verr.Reason = *p.Detail
	}
	if p.Errors == nil || len(*p.Errors) == 0 {
		return verr
	}
	d := (*p.Errors)[0]
	if d.Location != nil && *d.Location != "" {
		verr.Field = strings.TrimPrefix(*d.Location, "body.")
	}
	if d.Message != nil && *d.Message != "" {
		verr.Reason = *d.Message
	}
	return verr
}
