package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/app"
)

// Answerer serves the answerer's POST /answers, where external workers
// answer prompts when KCHAT_GENERATOR=external (docs/security.md,
// "Answers").
type Answerer struct {
	Post *app.PostAnswer
	Log  *slog.Logger
}

// AnswerInput is a worker's answer to a prompt: the prompt's session_id
// and reply_to say which question it answers.
type AnswerInput struct {
	SessionID string          `json:"session_id" minLength:"1" maxLength:"128" doc:"The prompt's session_id" example:"session-42"`
	ReplyTo   string          `json:"reply_to" minLength:"1" maxLength:"128" doc:"The prompt's reply_to: the message_id of the question"`
	Message   string          `json:"message" minLength:"1" maxLength:"32768" doc:"The answer text; it cites the prompt's passages as [n]" example:"Run make run [1]."`
	Citations []wire.Citation `json:"citations,omitempty" maxItems:"100" doc:"The passages the answer cites"`
	Error     string          `json:"error,omitempty" maxLength:"1000" doc:"Set when the worker could not answer: why (message then tells the user)"`
}

type postAnswerInput struct {
	Body AnswerInput
}

type postAnswerOutput struct {
	Body Queued
}

// Register adds POST /answers to api.
func (h *Answerer) Register(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "postAnswer",
		Method:      http.MethodPost,
		Path:        "/answers",
		Summary:     "Answer a prompt (external generator)",
		Description: "Records the answer in the question's session, signs it and publishes it to the answer topic; 202 once Kafka " +
			"acknowledged it. 404 when the session does not record the question; 409 when the question has another answer " +
			"already (posting the same answer again publishes it again).",
		Tags:          []string{"answers"},
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  maxMessageBody,
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, h.postAnswer)
}

func (h *Answerer) postAnswer(ctx context.Context, in *postAnswerInput) (*postAnswerOutput, error) {
	res, err := h.Post.Execute(ctx, app.PostAnswerInput{
		SessionID: in.Body.SessionID, ReplyTo: in.Body.ReplyTo, Text: in.Body.Message,
		Citations: wire.DomainCitations(in.Body.Citations), Failure: in.Body.Error,
	})
	switch {
	case errors.Is(err, app.ErrAnswered):
		// Only this route can meet it, so it is mapped here rather than in problem.
		return nil, huma.Error409Conflict("the question has another answer already")
	case err != nil:
		return nil, problem(ctx, h.Log, err)
	}
	return &postAnswerOutput{Body: queued(res.Answer.MessageID, res.Position)}, nil
}
