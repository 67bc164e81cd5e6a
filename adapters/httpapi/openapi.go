package httpapi

import (
	"log/slog"

	"github.com/kchat/kchat/app"
)

// ProducerOpenAPI renders the producer service's OpenAPI 3.1 document, the
// committed openapi.yaml (make openapi).
func ProducerOpenAPI() ([]byte, error) {
	s := NewServer(ServerConfig{}, "kchat producer", nil, nil, slog.New(slog.DiscardHandler))
	s.API().OpenAPI().Info.Description = "Publishes messages to kchat's Kafka topics (query, prompt, answer) and answers only after Kafka acknowledged them."
	(&Producer{Submit: &app.SubmitMessage{}, Batch: &app.SubmitBatch{}}).Register(s.API())
	return s.API().OpenAPI().YAML()
}
