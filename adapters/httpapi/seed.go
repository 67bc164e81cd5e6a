package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/kchat/kchat/domain"
)

// The seed's shapes: the old services' routes GET / and GET /health, and
// the records of GET /messages?topic= as the old consumer returned them
// (docs/migration.md, "Routes").

// SeedRootOutput answers GET / as the old services did, with kchat's
// additions: the service's name and where a newcomer goes next.
type SeedRootOutput struct {
	Body struct {
		Message string    `json:"message" example:"Consumer service is running"`
		Service string    `json:"service" example:"consumer" doc:"kchat's: the service answering"`
		Links   RootLinks `json:"links" doc:"kchat's: the service's documentation and health check"`
	}
}

// RootLinks are the paths a service's GET / points to.
type RootLinks struct {
	Docs    string `json:"docs" example:"/docs" doc:"API documentation (Swagger UI)"`
	OpenAPI string `json:"openapi" example:"/openapi.yaml" doc:"The OpenAPI 3.1 description"`
	Healthz string `json:"healthz" example:"/healthz" doc:"Liveness; /readyz checks the dependencies"`
}

// SeedHealthOutput answers GET /health as the old services did, with the
// old consumer's fields on both services.
type SeedHealthOutput struct {
	Body seedHealthBody
}

type seedHealthBody struct {
	Status         string `json:"status" enum:"healthy,unhealthy"`
	KafkaConnected bool   `json:"kafka_connected"`
	MessageCount   *int64 `json:"message_count,omitempty" doc:"Consumer: messages this process delivered since it started"`
	Error          string `json:"error,omitempty" doc:"Why the service is unhealthy"`
}

// RegisterSeedRoutes adds the old services' GET / and GET /health: GET /
// says "<service> service is running"; GET /health answers 200, as the
// old services did, with status healthy when every readiness check passes,
// else unhealthy with kafka_connected false and the error (the old
// consumer's shape; a check that reads the status code uses /readyz).
// count, when set, is the consumer's message_count.
func (s *Server) RegisterSeedRoutes(service string, count func() int64) {
	s.RegisterRoot(service)
	huma.Register(s.api, huma.Operation{
		OperationID: "seedHealth",
		Method:      http.MethodGet,
		Path:        "/health",
		Summary:     "The seed's health check",
		Description: "Always 200, as the seed's: status healthy when Kafka answers, unhealthy otherwise (a status-code check: /readyz).",
		Tags:        []string{"system"},
	}, func(ctx context.Context, _ *struct{}) (*SeedHealthOutput, error) {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		out := &SeedHealthOutput{}
		out.Body.Status, out.Body.KafkaConnected = "healthy", true
		if count != nil {
			n := count()
			out.Body.MessageCount = &n
		}
		for _, c := range s.checks {
			if err := c.Check(ctx); err != nil {
				out.Body.Status, out.Body.KafkaConnected, out.Body.Error = "unhealthy", false, c.Name+" unavailable"
				s.log.WarnContext(ctx, "health check failed", "check", c.Name, "err", err)
				break
			}
		}
		return out, nil
	})
}

// RegisterRoot adds GET /, the banner of a service without a page of its
// own: the seed's "<service> service is running" (kept as it was for the
// old clients), the service's name and links to its docs and health check.
func (s *Server) RegisterRoot(service string) {
	huma.Register(s.api, huma.Operation{
		OperationID: "seedRoot",
		Method:      http.MethodGet,
		Path:        "/",
		Summary:     "The service banner",
		Description: "The seed's message, the service's name and links to its documentation and health check.",
		Tags:        []string{"system"},
	}, func(context.Context, *struct{}) (*SeedRootOutput, error) {
		out := &SeedRootOutput{}
		out.Body.Message = service + " service is running"
		out.Body.Service = strings.ToLower(service)
		out.Body.Links = RootLinks{Docs: "/docs", OpenAPI: "/openapi.yaml", Healthz: "/healthz"}
		return out, nil
	})
}

// SeedRecord is one record as the old consumer returned it: value is the
// stored message's five fields (null for a poison record), timestamp the
// record's time in milliseconds since the epoch, key null when the record
// has none. censored, poison and raw are kchat's additions.
type SeedRecord struct {
	Topic     string     `json:"topic"`
	Partition int32      `json:"partition"`
	Offset    int64      `json:"offset"`
	Key       *string    `json:"key"`
	Value     *SeedValue `json:"value"`
	Timestamp int64      `json:"timestamp" doc:"Milliseconds since the epoch"`
	Censored  bool       `json:"censored"`
	Receipt   string     `json:"receipt,omitempty"`
	Poison    string     `json:"poison,omitempty"`
	Raw       []byte     `json:"raw,omitempty"`
}

// SeedValue is the value the old producer stored: its request's five
// fields, and kchat's reply_to (an answer's question) as an addition.
type SeedValue struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	MessageID string `json:"message_id"`
	Type      string `json:"type"`
	Message   string `json:"message"`
	ReplyTo   string `json:"reply_to,omitempty" doc:"kchat's: the question a prompt or an answer replies to"`
}

// SeedMessagesOutput is the body of GET /messages?topic=.
type SeedMessagesOutput struct {
	Status   string       `json:"status" example:"success"`
	Count    int          `json:"count"`
	Messages []SeedRecord `json:"messages"`
}

func seedMessagesOutput(ds []domain.Delivery) SeedMessagesOutput {
	out := SeedMessagesOutput{Status: "success", Count: len(ds), Messages: make([]SeedRecord, len(ds))}
	for i, d := range ds {
		r := SeedRecord{
			Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, Timestamp: d.Timestamp.UnixMilli(),
			Censored: d.Censored, Receipt: d.Receipt, Poison: d.Poison, Raw: d.Raw,
		}
		if d.Key != "" {
			k := d.Key
			r.Key = &k
		}
		if d.Poison == "" {
			m := d.Message
			r.Value = &SeedValue{SessionID: m.SessionID, UserID: m.UserID, MessageID: m.MessageID, Type: string(m.Type), Message: m.Text, ReplyTo: m.ReplyTo}
		}
		out.Messages[i] = r
	}
	return out
}

// parseSeedBool reads a boolean as the old services did: true/false,
// 1/0, yes/no, on/off, in any case.
func parseSeedBool(field, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, huma.Error422UnprocessableEntity("validation failed",
		&huma.ErrorDetail{Location: "query." + field, Message: "must be a boolean: true/false, 1/0, yes/no or on/off", Value: v})
}
