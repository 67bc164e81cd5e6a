package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Gateway serves the gateway's HTTP chat routes (SPEC §6): POST /chat and
// the session routes. Every operation authenticates its caller.
type Gateway struct {
	Ask     *app.Ask
	History *app.SessionHistory
	Feed    ports.AnswerFeed
	// Authenticate returns the caller's user id, or an error (401).
	Authenticate func(*http.Request) (string, error)
	// Timeout bounds how long POST /chat waits for the answer.
	Timeout time.Duration
	Log     *slog.Logger

	mu      sync.Mutex
	waiting map[string]chan domain.Message
}

// Run hands answers from the feed to the POST /chat requests waiting for
// them, until ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Feed.Subscribe(ctx, g.deliver); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (g *Gateway) deliver(m domain.Message) {
	g.mu.Lock()
	ch := g.waiting[m.ReplyTo]
	g.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default:
		}
	}
}

func (g *Gateway) wait(queryID string) (<-chan domain.Message, func()) {
	ch := make(chan domain.Message, 1)
	g.mu.Lock()
	if g.waiting == nil {
		g.waiting = map[string]chan domain.Message{}
	}
	g.waiting[queryID] = ch
	g.mu.Unlock()
	return ch, func() {
		g.mu.Lock()
		delete(g.waiting, queryID)
		g.mu.Unlock()
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
			_ = huma.WriteErr(api, hctx, http.StatusUnauthorized, "unauthorized: "+err.Error())
			return
		}
		next(huma.WithValue(hctx, userKey{}, user))
	}
}

func userOf(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// AnswerOutput is an answer as the chat routes return it.
type AnswerOutput struct {
	MessageID string            `json:"message_id"`
	Message   string            `json:"message"`
	Citations []CitationPayload `json:"citations"`
	Error     string            `json:"error,omitempty" doc:"Set when the answer failed; message then says so"`
}

type chatInput struct {
	Body struct {
		SessionID string `json:"session_id,omitempty" maxLength:"128" doc:"Continue this session; a new one is created when omitted"`
		Message   string `json:"message" minLength:"1" maxLength:"32768" doc:"The question" example:"How do I start kchat?"`
	}
}

type chatOutput struct {
	Body struct {
		SessionID string       `json:"session_id"`
		MessageID string       `json:"message_id" doc:"The question's id"`
		Answer    AnswerOutput `json:"answer"`
	}
}

// TurnOutput is one turn of a session's history.
type TurnOutput struct {
	Role      string            `json:"role" enum:"user,assistant"`
	MessageID string            `json:"message_id"`
	Text      string            `json:"text"`
	Citations []CitationPayload `json:"citations,omitempty"`
	At        time.Time         `json:"at"`
}

type sessionInput struct {
	ID    string `path:"id" maxLength:"128"`
	After string `query:"after" doc:"Only turns after this message id"`
}

type historyOutput struct {
	Body struct {
		SessionID string       `json:"session_id"`
		Turns     []TurnOutput `json:"turns"`
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
		Description: "Publishes the question and waits for its answer; 504 with the question's message_id when it does not come in time (the answer still arrives on the session's WebSocket and in its history).",
		Tags:        []string{"chat"},
		Middlewares: auth,
		Errors:      []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusServiceUnavailable, http.StatusGatewayTimeout},
	}, g.chat)
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

func (g *Gateway) chat(ctx context.Context, in *chatInput) (*chatOutput, error) {
	session := in.Body.SessionID
	if session == "" {
		session = domain.NewMessageID()
	}
	id := domain.NewMessageID()
	answers, done := g.wait(id) // before publishing: the answer cannot slip past
	defer done()
	q, err := g.Ask.Execute(ctx, app.AskInput{UserID: userOf(ctx), SessionID: session, Text: in.Body.Message, MessageID: id})
	if err != nil {
		return nil, problem(ctx, g.Log, err)
	}
	timer := time.NewTimer(g.Timeout)
	defer timer.Stop()
	select {
	case a := <-answers:
		out := &chatOutput{}
		out.Body.SessionID, out.Body.MessageID = session, q.MessageID
		out.Body.Answer = AnswerOutput{MessageID: a.MessageID, Message: a.Text, Citations: citationPayloads(a.Citations)}
		if e, ok := a.Metadata["error"].(string); ok {
			out.Body.Answer.Error = e
		}
		return out, nil
	case <-timer.C:
		return nil, huma.Error504GatewayTimeout("no answer within "+g.Timeout.String()+"; it will still arrive in the session's history",
			&huma.ErrorDetail{Location: "message_id", Message: "the question's id", Value: q.MessageID})
	case <-ctx.Done():
		return nil, huma.Error504GatewayTimeout("request cancelled", &huma.ErrorDetail{Location: "message_id", Value: q.MessageID})
	}
}

func (g *Gateway) sessionHistory(ctx context.Context, in *sessionInput) (*historyOutput, error) {
	turns, err := g.History.Turns(ctx, userOf(ctx), in.ID, in.After)
	if err != nil {
		return nil, problem(ctx, g.Log, err)
	}
	out := &historyOutput{}
	out.Body.SessionID = in.ID
	out.Body.Turns = make([]TurnOutput, len(turns))
	for i, t := range turns {
		out.Body.Turns[i] = TurnOutput{Role: string(t.Role), MessageID: t.MessageID, Text: t.Text, Citations: citationPayloads(t.Citations), At: t.At}
	}
	return out, nil
}

func (g *Gateway) deleteSession(ctx context.Context, in *deleteInput) (*struct{}, error) {
	if err := g.History.Delete(ctx, userOf(ctx), in.ID); err != nil {
		return nil, problem(ctx, g.Log, err)
	}
	return nil, nil
}

func citationPayloads(cs []domain.Citation) []CitationPayload {
	out := make([]CitationPayload, len(cs))
	for i, c := range cs {
		out[i] = CitationPayload(c)
	}
	return out
}
