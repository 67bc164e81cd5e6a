package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// Gateway serves the gateway's HTTP chat routes (docs/design.md,
// "Gateway"): POST /chat and the session routes. Every operation
// authenticates its caller.
type Gateway struct {
	Chat *app.Chat
	// StreamChat serves POST /chat with Accept: text/event-stream.
	StreamChat *app.StreamChat
	History    *app.SessionHistory
	// Authenticate returns the caller's user id, or an error (401).
	Authenticate func(*http.Request) (string, error)
	Log          *slog.Logger
	// Asked counts the questions POST /chat published, Delivered the
	// answers it returned (nil: not counted).
	Asked, Delivered prometheus.Counter
}

// inc adds one to c, if counted.
func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

type userKey struct{}

// authenticate is the operations' middleware: 401 problem without a valid
// credential, the user id in the context otherwise.
func (g *Gateway) authenticate(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(hctx huma.Context, next func(huma.Context)) {
		r, _ := humachi.Unwrap(hctx)
		user, err := g.Authenticate(r)
		if err != nil {
			// Which check failed is for the log, not for whoever probes.
			g.Log.InfoContext(hctx.Context(), "request refused: no valid credential", "err", err, "path", r.URL.Path)
			hctx.SetHeader("WWW-Authenticate", "Bearer")
			_ = huma.WriteErr(api, hctx, http.StatusUnauthorized, "missing or invalid credentials")
			return
		}
		next(huma.WithValue(hctx, userKey{}, user))
	}
}

func userOf(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

type chatInput struct {
	Accept string `header:"Accept" doc:"text/event-stream: the answer as Server-Sent Events, its deltas as it is generated (event delta) then the answer (event answer, the JSON body), or event error with a problem; otherwise the JSON body once the answer is complete"`
	Body   struct {
		SessionID string `json:"session_id,omitempty" maxLength:"128" doc:"Continue this session; a new one is created when omitted"`
		Message   string `json:"message" minLength:"1" maxLength:"32768" doc:"The question" example:"How do I start kchat?"`
	}
}

// chatOutput is written by its Body: the JSON body, or the events
// (chat_events.go); the 200 response is described in Register.
type chatOutput struct {
	Body func(huma.Context)
}

type chatOutputBody struct {
	SessionID string      `json:"session_id"`
	MessageID string      `json:"message_id" doc:"The question's id"`
	Answer    wire.Answer `json:"answer"`
}

type sessionInput struct {
	ID    string `path:"id" maxLength:"128"`
	After string `query:"after" doc:"Only turns after this message id"`
}

type historyOutput struct {
	Body struct {
		SessionID string      `json:"session_id"`
		Turns     []wire.Turn `json:"turns"`
	}
}

type deleteInput struct {
	ID string `path:"id" maxLength:"128"`
}

// Register adds the gateway's chat operations to api.
func (g *Gateway) Register(api huma.API) {
	auth := huma.Middlewares{g.authenticate(api)}
	huma.Register(api, huma.Operation{
		OperationID: "chat",
		Method:      http.MethodPost,
		Path:        "/chat",
		Summary:     "Ask a question and wait for the answer",
		Description: "Publishes the question and waits for its answer; 504 with the question's message_id when it does not come in time (the answer still arrives on the session's WebSocket and in its history). 429 when the user asks too often. " +
			"With Accept: text/event-stream the answer streams as Server-Sent Events once the question is published: `delta` events as it is generated, then `answer` (the JSON body); " +
			"a timeout is then an `error` event with the 504 problem. Errors before the question is published are problems with their status either way.",
		Tags:        []string{"chat"},
		Middlewares: auth,
		Responses:   map[string]*huma.Response{"200": chatResponse(api.OpenAPI().Components.Schemas)},
		Errors:      []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout},
	}, g.chat(api))
	huma.Register(api, huma.Operation{
		OperationID: "sessionHistory",
		Method:      http.MethodGet,
		Path:        "/sessions/{id}/history",
		Summary:     "A session's turns, oldest first",
		Tags:        []string{"sessions"},
		Middlewares: auth,
		Errors:      []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable},
	}, g.sessionHistory)
	huma.Register(api, huma.Operation{
		OperationID:   "deleteSession",
		Method:        http.MethodDelete,
		Path:          "/sessions/{id}",
		Summary:       "Delete a session",
		Tags:          []string{"sessions"},
		DefaultStatus: http.StatusNoContent,
		Middlewares:   auth,
		Errors:        []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable},
	}, g.deleteSession)
}

func (g *Gateway) chat(api huma.API) func(context.Context, *chatInput) (*chatOutput, error) {
	return func(ctx context.Context, in *chatInput) (*chatOutput, error) {
		input := app.ChatInput{UserID: userOf(ctx), SessionID: in.Body.SessionID, Text: in.Body.Message}
		if wantsEvents(in.Accept) {
			s, err := g.StreamChat.Execute(ctx, input)
			if err != nil {
				return nil, problem(ctx, g.Log, err)
			}
			inc(g.Asked)
			return &chatOutput{Body: func(hctx huma.Context) { g.events(api, hctx, s) }}, nil
		}
		res, err := g.Chat.Execute(ctx, input)
		var late *app.AnswerTimeoutError
		if errors.As(err, &late) {
			inc(g.Asked) // published; its answer comes later, to the history
			return nil, lateProblem(late)
		}
		if err != nil {
			return nil, problem(ctx, g.Log, err)
		}
		inc(g.Asked)
		inc(g.Delivered)
		body := chatBodyOf(res.SessionID, res.Query, res.Answer)
		return &chatOutput{Body: func(hctx huma.Context) {
			hctx.SetHeader("Content-Type", "application/json")
			hctx.SetStatus(http.StatusOK)
			if err := api.Marshal(hctx.BodyWriter(), "application/json", body); err != nil {
				g.Log.WarnContext(ctx, "chat: writing the answer", "err", err)
			}
		}}, nil
	}
}

// lateProblem is the 504 of an answer that did not come in time.
func lateProblem(late *app.AnswerTimeoutError) huma.StatusError {
	return huma.Error504GatewayTimeout(late.Error()+"; it will still arrive in the session's history",
		&huma.ErrorDetail{Location: "message_id", Message: "the question's id", Value: late.QueryID})
}

func chatBodyOf(session string, q, a domain.Message) chatOutputBody {
	return chatOutputBody{SessionID: session, MessageID: q.MessageID, Answer: wire.AnswerOf(a)}
}

func (g *Gateway) sessionHistory(ctx context.Context, in *sessionInput) (*historyOutput, error) {
	turns, err := g.History.Turns(ctx, userOf(ctx), in.ID, in.After)
	if err != nil {
		return nil, problem(ctx, g.Log, err)
	}
	out := &historyOutput{}
	out.Body.SessionID, out.Body.Turns = in.ID, wire.TurnsOf(turns)
	return out, nil
}

func (g *Gateway) deleteSession(ctx context.Context, in *deleteInput) (*struct{}, error) {
	if err := g.History.Delete(ctx, userOf(ctx), in.ID); err != nil {
		return nil, problem(ctx, g.Log, err)
	}
	return nil, nil
}
