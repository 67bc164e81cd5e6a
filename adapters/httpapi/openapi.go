package httpapi

import (
	"log/slog"

	"github.com/danielgtaylor/huma/v2"

	"github.com/kchat/kchat/app"
)

// OpenAPI renders the OpenAPI 3.1 document of kchat's two REST services,
// the producer (port 8000) and the consumer (port 8001): the committed
// openapi.yaml (make openapi) that generated clients are built from. Each
// running service serves its own part at /openapi.yaml. Both services have
// a GET and a POST /messages, so each operation names its server (OpenAPI's
// per-operation servers): a client generator that reads them sends each
// call to its service; one that does not is given the producer's and the
// consumer's base URL (README, "Generated clients").
func OpenAPI() ([]byte, error) {
	s := NewServer(ServerConfig{}, "kchat REST API", nil, slog.New(slog.DiscardHandler))
	api := s.API().OpenAPI()
	api.Info.Description = "The producer service (port 8000) publishes messages to kchat's Kafka topics " +
		"(query, prompt, answer) and answers only after Kafka acknowledged them. The consumer service (port 8001) " +
		"hands out the next unconsumed messages of a topic, by committed offsets, to any number of HTTP clients. " +
		"Each operation names the service that serves it."
	producer := &huma.Server{URL: "http://localhost:8000", Description: "the producer service"}
	consumer := &huma.Server{URL: "http://localhost:8001", Description: "the consumer service"}
	both := operations(api) // the health checks, on every service
	(&Producer{Submit: &app.SubmitMessage{}, Batch: &app.SubmitBatch{}}).Register(s.API())
	produced := operations(api)
	(&Consumer{Fetch: &app.FetchNext{}, Ack: &app.Acknowledge{}, Browse: &app.Browse{}}).Register(s.API())
	for op := range operations(api) {
		switch {
		case both[op]:
			op.Servers = []*huma.Server{producer, consumer}
		case produced[op]:
			op.Servers = []*huma.Server{producer}
		default:
			op.Servers = []*huma.Server{consumer}
		}
	}
	return api.YAML()
}

// GatewayOpenAPI renders the gateway's OpenAPI document (port 8002): its
// chat and session operations, and the seed's routes and the WebSocket it
// serves beside them (DocumentGatewayRoutes); make openapi commits it as
// openapi-gateway.yaml. The running gateway serves it at /openapi.yaml.
func GatewayOpenAPI() ([]byte, error) {
	s := NewServer(ServerConfig{}, "kchat gateway", nil, slog.New(slog.DiscardHandler))
	api := s.API().OpenAPI()
	api.Info.Description = "The gateway (port 8002) serves the chat: the web page, the WebSocket, " +
		"POST /chat, the sessions' history, and the seed's input_api routes."
	api.Servers = []*huma.Server{{URL: "http://localhost:8002", Description: "the gateway"}}
	(&Gateway{}).Register(s.API())
	DocumentGatewayRoutes(s.API())
	return api.YAML()
}

// operations is the set of api's operations now.
func operations(api *huma.OpenAPI) map[*huma.Operation]bool {
	ops := map[*huma.Operation]bool{}
	for _, item := range api.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Options, item.Head, item.Patch, item.Trace} {
			if op != nil {
				ops[op] = true
			}
		}
	}
	return ops
}
