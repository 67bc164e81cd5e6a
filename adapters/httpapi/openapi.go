package httpapi

import (
	"log/slog"

	"github.com/kchat/kchat/app"
)

// OpenAPI renders the OpenAPI 3.1 document of kchat's two REST services,
// the producer (port 8000) and the consumer (port 8001): the committed
// openapi.yaml (make openapi) that generated clients are built from. Each
// running service serves its own part at /openapi.yaml.
func OpenAPI() ([]byte, error) {
	s := NewServer(ServerConfig{}, "kchat REST API", nil, slog.New(slog.DiscardHandler))
	s.API().OpenAPI().Info.Description = "The producer service (port 8000) publishes messages to kchat's Kafka topics " +
		"(query, prompt, answer) and answers only after Kafka acknowledged them. The consumer service (port 8001) " +
		"hands out the next unconsumed messages of a topic, by committed offsets, to any number of HTTP clients."
	(&Producer{Submit: &app.SubmitMessage{}, Batch: &app.SubmitBatch{}}).Register(s.API())
	(&Consumer{Fetch: &app.FetchNext{}, Ack: &app.Acknowledge{}, Browse: &app.Browse{}}).Register(s.API())
	return s.API().OpenAPI().YAML()
}
