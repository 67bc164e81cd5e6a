package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/kchat/kchat/domain"
)

// RetryAfter is what a 503 tells clients to wait before retrying, in seconds.
const RetryAfter = 2

// maxEchoedValue bounds how much of a rejected value a problem echoes back.
const maxEchoedValue = 256

// problemTransformer keeps what an error response echoes short and what a
// 500 says generic: huma echoes rejected values (whole request bodies
// included) and puts the text of an unexpected error in its details. It is
// set on each API NewServer builds, never for the whole process.
func problemTransformer(_ huma.Context, _ string, v any) (any, error) {
	em, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	if em.Status == http.StatusInternalServerError {
		em.Errors = nil
	}
	for _, d := range em.Errors {
		if s, ok := d.Value.(string); ok && len(s) > maxEchoedValue {
			d.Value = s[:maxEchoedValue] + "…"
		}
	}
	return em, nil
}

// problem maps any error a use case returns to the HTTP problem the client
// sees. It is the only place that does: unknown errors become a generic 500,
// logged here with the request id, and their text never reaches the client.
func problem(ctx context.Context, log *slog.Logger, err error) error {
	var verr *domain.ValidationError
	switch {
	case errors.As(err, &verr):
		return huma.Error422UnprocessableEntity("validation failed: "+verr.Error(),
			&huma.ErrorDetail{Location: "body." + verr.Field, Message: verr.Reason})
	case errors.Is(err, domain.ErrUnavailable):
		log.WarnContext(ctx, "dependency unavailable", "err", err, "request_id", middleware.GetReqID(ctx))
		return huma.ErrorWithHeaders(
			huma.Error503ServiceUnavailable("a dependency (Kafka or Redis) did not answer in time; retry later"),
			http.Header{"Retry-After": {strconv.Itoa(RetryAfter)}})
	case errors.Is(err, domain.ErrNotFound):
		return huma.Error404NotFound("not found")
	case errors.Is(err, domain.ErrForbidden):
		return huma.Error403Forbidden("forbidden")
	case errors.Is(err, domain.ErrRateLimited):
		return huma.ErrorWithHeaders(huma.Error429TooManyRequests("too many questions; slow down"),
			http.Header{"Retry-After": {"1"}})
	default:
		log.ErrorContext(ctx, "request failed", "err", err, "request_id", middleware.GetReqID(ctx))
		return huma.Error500InternalServerError("internal error")
	}
}

// problemModel is problem for places that embed the problem in a larger
// body, such as one item of a batch.
func problemModel(ctx context.Context, log *slog.Logger, err error) *huma.ErrorModel {
	var em *huma.ErrorModel
	if errors.As(problem(ctx, log, err), &em) {
		return em
	}
	return &huma.ErrorModel{Status: http.StatusInternalServerError, Title: "Internal Server Error", Detail: "internal error"}
}
