package httpapi

import (
	"errors"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/kchat/kchat/app"
)

// POST /chat as Server-Sent Events (docs/design.md, "Streaming answers"):
// once the question is published, the answer's deltas as they come
// (`event: delta`), then `event: answer` with the JSON body POST /chat
// answers otherwise, or `event: error` with a problem.

// chatDelta is the data of a delta event: a piece of the answer. Per
// attempt, seq 0, 1, 2… in order; seq 0 of a greater attempt replaces the
// text so far, and the answer event replaces it all.
type chatDelta struct {
	ReplyTo string `json:"reply_to" doc:"The question's id"`
	Attempt int64  `json:"attempt" doc:"The generation this text is part of; a greater one replaces the text so far"`
	Seq     int    `json:"seq" doc:"The delta's place in its attempt, from 0"`
	Text    string `json:"text" doc:"The text that follows the attempt's previous deltas"`
}

// wantsEvents reports whether an Accept header asks for text/event-stream.
func wantsEvents(accept string) bool {
	for _, r := range strings.Split(accept, ",") {
		if t, _, err := mime.ParseMediaType(strings.TrimSpace(r)); err == nil && t == "text/event-stream" {
			return true
		}
	}
	return false
}

// events writes s as Server-Sent Events until its answer, or the error
// that ends the wait; each event's data is one line of JSON.
func (g *Gateway) events(api huma.API, hctx huma.Context, s *app.ChatStream) {
	defer s.Close()
	ctx := hctx.Context()
	hctx.SetHeader("Content-Type", "text/event-stream")
	hctx.SetHeader("Cache-Control", "no-cache")
	hctx.SetHeader("X-Accel-Buffering", "no") // proxies: pass each event on as it comes
	hctx.SetStatus(http.StatusOK)
	w := hctx.BodyWriter()
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush() // the question is published: the client knows now
	send := func(event string, data any) bool {
		if _, err := w.Write([]byte("event: " + event + "\ndata: ")); err != nil {
			return false
		}
		// jsonFormat writes one line and its newline; a blank line ends
		// the event.
		if err := api.Marshal(w, "application/json", data); err != nil {
			return false
		}
		if _, err := w.Write([]byte("\n")); err != nil {
			return false
		}
		flush()
		return true
	}
	for {
		ev, err := s.Next(ctx)
		switch {
		case err != nil:
			var late *app.AnswerTimeoutError
			if ctx.Err() == nil && errors.As(err, &late) {
				send("error", lateProblem(late))
			}
			return
		case ev.Final:
			if send("answer", chatBodyOf(s.SessionID, s.Query, ev.Answer)) {
				inc(g.Delivered)
			}
			return
		case !send("delta", chatDelta{ReplyTo: ev.Delta.ReplyTo, Attempt: ev.Delta.Attempt, Seq: ev.Delta.Seq, Text: ev.Delta.Text}):
			return // the client is gone
		}
	}
}

// chatResponse describes POST /chat's 200: the JSON body, or its events.
func chatResponse(reg huma.Registry) *huma.Response {
	event := func(name, doc string, data *huma.Schema) *huma.Schema {
		return &huma.Schema{
			Type: "object", Title: "Event " + name, Description: doc, Required: []string{"data", "event"},
			Properties: map[string]*huma.Schema{
				"event": {Type: "string", Enum: []any{name}, Description: "The event name."},
				"data":  data,
			},
		}
	}
	body := reg.Schema(reflect.TypeFor[chatOutputBody](), true, "ChatOutputBody")
	return &huma.Response{
		Description: "The answer: a JSON body, or with Accept: text/event-stream its Server-Sent Events",
		Content: map[string]*huma.MediaType{
			"application/json": {Schema: body},
			"text/event-stream": {Schema: &huma.Schema{
				Title:       "Server-Sent Events",
				Description: "Each oneOf object in the array is one possible event, written as UTF-8 text by the SSE specification (event: <name>, data: <one line of JSON>): delta events in order, then answer or error.",
				Type:        "array",
				Items: &huma.Schema{OneOf: []*huma.Schema{
					event("delta", "A piece of the answer as it is generated.", reg.Schema(reflect.TypeFor[chatDelta](), true, "ChatDelta")),
					event("answer", "The final answer: it replaces the deltas.", body),
					event("error", "The wait ended without the answer (504: it still arrives in the session's history).", reg.Schema(reflect.TypeFor[huma.ErrorModel](), true, "ErrorModel")),
				}},
			}},
		},
	}
}
