package httpapi

import (
	"net/http"
	"reflect"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
)

// The gateway's routes that huma does not serve, described in its OpenAPI
// document so that generated clients and the fuzzer know them: the seed's
// POST /send and GET /messages (adapters/restclient) and the WebSocket
// (adapters/ws). Only the description is added; the routes are mounted
// beside the API (cmd/internal/wire/gateway.go).

// SendForm is the seed's POST /send form.
type SendForm struct {
	SessionID string `json:"session_id" minLength:"1" maxLength:"128" doc:"The session; a new one is yours, another user's is refused (403)"`
	Message   string `json:"message" minLength:"1" maxLength:"32768"`
	MessageID string `json:"message_id,omitempty" maxLength:"128" doc:"Generated when omitted"`
	Type      string `json:"type,omitempty" enum:"query" doc:"Only query: prompts and answers are the answerer's"`
	UserID    string `json:"user_id,omitempty" doc:"Ignored: the user is the caller"`
}

// SendOutput is the seed's input_api answer: the producer's inside it.
type SendOutput struct {
	Status           string `json:"status" example:"Message forwarded"`
	ProducerResponse struct {
		Status    string `json:"status" example:"queued"`
		MessageID string `json:"message_id"`
	} `json:"producer_response"`
}

// DocumentGatewayRoutes adds the descriptions of POST /send, GET /messages
// and GET /ws to api's document.
func DocumentGatewayRoutes(api huma.API) {
	reg := api.OpenAPI().Components.Schemas
	problemResponses := func(codes ...int) map[string]*huma.Response {
		out := map[string]*huma.Response{}
		for _, c := range codes {
			out[strconv.Itoa(c)] = &huma.Response{Description: http.StatusText(c), Content: map[string]*huma.MediaType{
				"application/problem+json": {Schema: reg.Schema(reflect.TypeFor[huma.ErrorModel](), true, "ErrorModel")},
			}}
		}
		return out
	}
	withOK := func(rs map[string]*huma.Response, desc string, body any) map[string]*huma.Response {
		rs["200"] = &huma.Response{Description: desc, Content: map[string]*huma.MediaType{
			"application/json": {Schema: reg.Schema(reflect.TypeOf(body), true, "")},
		}}
		return rs
	}
	query := func(name, typ, doc string) *huma.Param {
		return &huma.Param{Name: name, In: "query", Description: doc, Schema: &huma.Schema{Type: typ}}
	}

	api.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "send",
		Method:      http.MethodPost,
		Path:        "/send",
		Summary:     "Ask a question (the seed's input_api route)",
		Description: "Publishes a question of the caller through the producer service and answers as the seed's input_api did. " +
			"It counts against the caller's limits (429); errors are problem+json with their status (docs/migration.md).",
		Tags: []string{"compatibility"},
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"application/x-www-form-urlencoded": {Schema: reg.Schema(reflect.TypeFor[SendForm](), true, "SendForm")},
		}},
		Responses: withOK(problemResponses(http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable),
			"The producer queued the question", SendOutput{}),
	})
	api.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "seedMessages",
		Method:      http.MethodGet,
		Path:        "/messages",
		Summary:     "Read a topic (the seed's input_api route)",
		Description: "Asks the consumer service's GET /messages?topic=<type>&limit=&latest= and relays its answer: latest=true takes the next one " +
			"unconsumed message, latest=false browses from the beginning. With KCHAT_AUTH=token or header it only browses, the caller's records only (403 for latest=true).",
		Tags: []string{"compatibility"},
		Parameters: []*huma.Param{
			query("type", "string", "query, prompt or answer"),
			query("topic", "string", "The same as type"),
			query("limit", "integer", "Most messages when browsing (10 by default)"),
			query("latest", "string", "true (1, yes, on) takes the next message; false (0, no, off), the default, browses"),
		},
		Responses: withOK(problemResponses(http.StatusUnauthorized, http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
			"The messages, in the seed's record shape", SeedMessagesOutput{}),
	})
	api.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "websocket",
		Method:      http.MethodGet,
		Path:        "/ws",
		Summary:     "The chat WebSocket",
		Description: "Upgrades to a WebSocket carrying JSON frames (docs/design.md, \"The WebSocket protocol\"): the server sends " +
			"{type:\"session\", session_id} first, then the history of a resumed session; the client sends {type:\"query\", id, message}, " +
			"answered by {type:\"ack\", id, message_id} or {type:\"error\", id, code, message}, and later {type:\"answer\", …}; " +
			"{type:\"ping\"} gets {type:\"pong\"}. On shutdown every socket is closed with 1001 (going away).",
		Tags: []string{"chat"},
		Parameters: []*huma.Param{
			query("session_id", "string", "Resume this session (yours)"),
			query("after", "string", "With session_id: only the turns after this message id"),
			query("access_token", "string", "KCHAT_AUTH=token: the bearer token, for browsers that cannot set headers"),
		},
		Responses: func() map[string]*huma.Response {
			rs := problemResponses()
			rs["101"] = &huma.Response{Description: "Switching to the WebSocket protocol"}
			for _, c := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable} {
				rs[strconv.Itoa(c)] = &huma.Response{Description: http.StatusText(c) + " (text/plain, before any upgrade)"}
			}
			return rs
		}(),
	})
}
