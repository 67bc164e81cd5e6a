package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// HealthOutput answers /healthz and /readyz.
type HealthOutput struct {
	Body struct {
		Status string            `json:"status" example:"ok" doc:"ok when alive; ready when every dependency answers"`
		Checks map[string]string `json:"checks,omitempty" doc:"Each dependency and its state"`
	}
}

func (s *Server) registerHealth() {
	huma.Register(s.api, huma.Operation{
		OperationID: "healthz",
		Method:      http.MethodGet,
		Path:        "/healthz",
		Summary:     "Liveness: the process is up",
		Tags:        []string{"system"},
	}, func(context.Context, *struct{}) (*HealthOutput, error) {
		out := &HealthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "readyz",
		Method:      http.MethodGet,
		Path:        "/readyz",
		Summary:     "Readiness: every dependency answers",
		Description: "503 while a dependency (Kafka, Redis) does not answer; the service keeps running and recovers by itself.",
		Tags:        []string{"system"},
		Errors:      []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*HealthOutput, error) {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		out := &HealthOutput{}
		out.Body.Status, out.Body.Checks = "ready", map[string]string{}
		var failed []error
		for _, c := range s.checks {
			if err := c.Check(ctx); err != nil {
				out.Body.Checks[c.Name] = "unavailable"
				failed = append(failed, &huma.ErrorDetail{Location: c.Name, Message: "unavailable"})
				s.log.WarnContext(ctx, "readiness check failed", "check", c.Name, "err", err)
				continue
			}
			out.Body.Checks[c.Name] = "ok"
		}
		if len(failed) > 0 {
			return nil, huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("not ready", failed...), http.Header{"Retry-After": {"2"}})
		}
		return out, nil
	})
}
