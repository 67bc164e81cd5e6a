package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// Body limits: a 32 KiB message may grow up to six times when JSON-escaped.
const (
	maxMessageBody = 256 << 10
	maxBatchBody   = 32 << 20
)

// Producer serves the producer service's routes (docs/design.md, "Producer").
type Producer struct {
	Submit *app.SubmitMessage
	Batch  *app.SubmitBatch
	Topics *app.ListTopics
	Log    *slog.Logger
}

// MessageInput is a message as a client posts it.
type MessageInput struct {
	SessionID string          `json:"session_id" minLength:"1" maxLength:"128" doc:"Conversation id; the Kafka record key, so a session keeps its order" example:"session-42"`
	UserID    string          `json:"user_id" minLength:"1" maxLength:"128" doc:"Who sent the message" example:"alice"`
	MessageID string          `json:"message_id,omitempty" maxLength:"128" doc:"Client-chosen id; a UUIDv7 is generated when omitted" example:"0193a2f4-8c1e-7d2a-9f00-1c2d3e4f5a6b"`
	Type      string          `json:"type" enum:"query,prompt,answer" doc:"Pipeline stage; selects the topic" example:"query"`
	Message   string          `json:"message" minLength:"1" maxLength:"32768" doc:"The text: 1 byte to 32 KiB of UTF-8" example:"How do I run kchat?"`
	ReplyTo   string          `json:"reply_to,omitempty" maxLength:"128" doc:"On prompts and answers: the message_id of the query"`
	Metadata  map[string]any  `json:"metadata,omitempty" doc:"Free-form JSON object carried with the message"`
	Citations []wire.Citation `json:"citations,omitempty" maxItems:"100" doc:"On answers: the passages the answer cites"`
}

func (in MessageInput) toApp() app.SubmitMessageInput {
	return app.SubmitMessageInput{
		SessionID: in.SessionID, UserID: in.UserID, MessageID: in.MessageID,
		Type: domain.MessageType(in.Type), Message: in.Message, ReplyTo: in.ReplyTo, Metadata: in.Metadata,
		Citations: wire.DomainCitations(in.Citations),
	}
}

// Queued says where an accepted message was stored.
type Queued struct {
	Status    string `json:"status" example:"queued" doc:"Always queued: Kafka acknowledged the message"`
	MessageID string `json:"message_id" doc:"The message's id"`
	Topic     string `json:"topic" example:"query"`
	Partition int32  `json:"partition" example:"0"`
	Offset    int64  `json:"offset" example:"42"`
}

func queued(id string, p domain.Position) Queued {
	return Queued{Status: "queued", MessageID: id, Topic: p.Topic, Partition: p.Partition, Offset: p.Offset}
}

type postMessageInput struct {
	PostMessageHeaders
	Body MessageInput
}

// PostMessageHeaders are POST /messages' header parameters, a type of
// their own so that the single-pass route (producer_fast.go) takes them
// too; exported, since huma looks only into exported embedded structs.
type PostMessageHeaders struct {
	// ReplyPartition is the gateway's answer routing (docs/design.md,
	// "Answer routing"): the partition of the answer topic a query's
	// answer is to go to, carried onto the record's headers.
	ReplyPartition string `header:"Kchat-Reply-Partition" pattern:"^[0-9]{1,9}$" doc:"For a query: the partition of the answer topic its answer and deltas are to go to (a gateway names one it reads). Omitted: by session."`
}

type postMessageOutput struct {
	Body Queued
}

// BatchItem is the outcome of one message of a batch.
type BatchItem struct {
	Status    string           `json:"status" enum:"queued,error" doc:"queued when Kafka acknowledged; error otherwise"`
	MessageID string           `json:"message_id"`
	Topic     string           `json:"topic,omitempty" doc:"Set when queued"`
	Partition *int32           `json:"partition,omitempty" doc:"Set when queued"`
	Offset    *int64           `json:"offset,omitempty" doc:"Set when queued"`
	Error     *huma.ErrorModel `json:"error,omitempty" doc:"Why this message was not queued (problem details)"`
}

type postBatchInput struct {
	Body struct {
		Messages []MessageInput `json:"messages" minItems:"1" maxItems:"500" doc:"Up to 500 messages"`
	}
}

type postBatchOutput struct {
	Body struct {
		Count   int         `json:"count" doc:"How many messages were queued"`
		Results []BatchItem `json:"results" doc:"One result per message, in request order"`
	}
}

// SendMessageInput is the seed's POST /send_message body. As the seed did,
// it takes empty strings for the ids and the type (docs/migration.md,
// "Routes"); only the message must have text.
type SendMessageInput struct {
	SessionID string   `json:"session_id" maxLength:"128" example:"session-42" doc:"Empty: the message id (a conversation of its own)"`
	UserID    string   `json:"user_id" maxLength:"128" example:"alice" doc:"Empty: anonymous"`
	MessageID string   `json:"message_id,omitempty" maxLength:"128" doc:"Generated when omitted or empty"`
	Type      string   `json:"type,omitempty" default:"query" doc:"query, prompt or answer; query when omitted or empty"`
	Message   string   `json:"message" minLength:"1" maxLength:"32768" example:"How do I run kchat?"`
	_         struct{} `json:"-" additionalProperties:"true"`
}

type sendMessageInput struct {
	Body SendMessageInput
}

type sendMessageOutput struct {
	Body struct {
		Status    string `json:"status" example:"queued"`
		MessageID string `json:"message_id"`
	}
}

// TopicOutput describes one topic.
type TopicOutput struct {
	Type              string `json:"type" example:"query"`
	Name              string `json:"name" example:"query"`
	Partitions        int    `json:"partitions" example:"3"`
	ReplicationFactor int    `json:"replication_factor" example:"1"`
	RetentionMS       int64  `json:"retention_ms" example:"120000"`
	CleanupPolicy     string `json:"cleanup_policy" example:"delete"`
}

type topicsOutput struct {
	Body struct {
		Topics []TopicOutput `json:"topics"`
	}
}

// Register adds the producer operations to api.
func (p *Producer) Register(api huma.API) { p.register(api, true) }

// register is Register; decoded false leaves POST /messages to huma alone
// (the reference its tests compare the single-pass path with). It returns
// the single-pass path, if any.
func (p *Producer) register(api huma.API, decoded bool) *decodedRoute[MessageInput] {
	post := huma.Operation{
		OperationID:   "postMessage",
		Method:        http.MethodPost,
		Path:          "/messages",
		Summary:       "Publish a message to the topic of its type",
		Description:   "Answers 202 only after Kafka acknowledged the message (acks=all, idempotent producer).",
		Tags:          []string{"messages"},
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  maxMessageBody,
		Errors:        []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}
	var route *decodedRoute[MessageInput]
	if decoded {
		route = registerDecoded[postMessageInput, MessageInput](api, post, p.postMessage, p.postDecoded)
	} else {
		huma.Register(api, post, p.postMessage)
	}

	huma.Register(api, huma.Operation{
		OperationID:  "postMessageBatch",
		Method:       http.MethodPost,
		Path:         "/messages/batch",
		Summary:      "Publish up to 500 messages",
		Description:  "The batch is validated as a whole first (a malformed item rejects the batch with 422 and nothing is published); then every message is published and each gets its own result.",
		Tags:         []string{"messages"},
		MaxBodyBytes: maxBatchBody,
		Errors:       []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity},
	}, p.postBatch)

	huma.Register(api, huma.Operation{
		OperationID:  "sendMessage",
		Method:       http.MethodPost,
		Path:         "/send_message",
		Summary:      "Publish a message (the Python seed's route)",
		Description:  "Kept for existing clients: the seed's body, type defaulting to query, unknown fields ignored.",
		Tags:         []string{"compatibility"},
		MaxBodyBytes: maxMessageBody,
		Errors:       []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, p.sendMessage)

	huma.Register(api, huma.Operation{
		OperationID: "listTopics",
		Method:      http.MethodGet,
		Path:        "/topics",
		Summary:     "The query, prompt and answer topics",
		Tags:        []string{"topics"},
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, p.listTopics)
	return route
}

func (p *Producer) postMessage(ctx context.Context, in *postMessageInput) (*postMessageOutput, error) {
	return p.publish(ctx, in.Body, in.PostMessageHeaders)
}

// postDecoded is postMessage for a body decodedRoute already decoded.
func (p *Producer) postDecoded(ctx context.Context, in *PostMessageHeaders) (*postMessageOutput, error) {
	body, ok := decodedBody[MessageInput](ctx)
	if !ok {
		return nil, problem(ctx, p.Log, errors.New("POST /messages: no decoded body"))
	}
	return p.publish(ctx, body, *in)
}

func (p *Producer) publish(ctx context.Context, body MessageInput, in PostMessageHeaders) (*postMessageOutput, error) {
	msg := body.toApp()
	if in.ReplyPartition != "" {
		n, err := strconv.ParseInt(in.ReplyPartition, 10, 32)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity("Kchat-Reply-Partition must be a partition number", &huma.ErrorDetail{Location: "header.Kchat-Reply-Partition", Value: in.ReplyPartition})
		}
		msg.Reply = domain.ReplyTo(int32(n))
	}
	res, err := p.Submit.Execute(ctx, msg)
	if err != nil {
		return nil, problem(ctx, p.Log, err)
	}
	return &postMessageOutput{Body: queued(res.MessageID, res.Position)}, nil
}

func (p *Producer) postBatch(ctx context.Context, in *postBatchInput) (*postBatchOutput, error) {
	ins := make([]app.SubmitMessageInput, len(in.Body.Messages))
	for i, m := range in.Body.Messages {
		ins[i] = m.toApp()
	}
	out := &postBatchOutput{}
	out.Body.Results = make([]BatchItem, len(ins))
	for i, r := range p.Batch.Execute(ctx, ins) {
		if r.Err != nil {
			out.Body.Results[i] = BatchItem{Status: "error", MessageID: r.MessageID, Error: problemModel(ctx, p.Log, r.Err)}
			continue
		}
		pos := r.Position
		out.Body.Results[i] = BatchItem{Status: "queued", MessageID: r.MessageID, Topic: pos.Topic, Partition: &pos.Partition, Offset: &pos.Offset}
		out.Body.Count++
	}
	return out, nil
}

func (p *Producer) sendMessage(ctx context.Context, in *sendMessageInput) (*sendMessageOutput, error) {
	b := in.Body
	if b.MessageID == "" {
		b.MessageID = domain.NewMessageID()
	}
	if b.SessionID == "" {
		b.SessionID = b.MessageID
	}
	if b.UserID == "" {
		b.UserID = domain.AnonymousUser
	}
	if b.Type == "" {
		b.Type = string(domain.TypeQuery)
	}
	res, err := p.Submit.Execute(ctx, app.SubmitMessageInput{
		SessionID: b.SessionID, UserID: b.UserID, MessageID: b.MessageID,
		Type: domain.MessageType(b.Type), Message: b.Message,
	})
	if err != nil {
		return nil, problem(ctx, p.Log, err)
	}
	out := &sendMessageOutput{}
	out.Body.Status, out.Body.MessageID = "queued", res.MessageID
	return out, nil
}

func (p *Producer) listTopics(ctx context.Context, _ *struct{}) (*topicsOutput, error) {
	infos, err := p.Topics.Execute(ctx)
	if err != nil {
		return nil, problem(ctx, p.Log, err)
	}
	out := &topicsOutput{}
	for _, t := range infos {
		out.Body.Topics = append(out.Body.Topics, TopicOutput{
			Type: string(t.Type), Name: t.Name, Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor,
			RetentionMS: t.Retention.Milliseconds(), CleanupPolicy: t.CleanupPolicy,
		})
	}
	return out, nil
}

// NewProducer returns the producer handlers.
func NewProducer(submit *app.SubmitMessage, batch *app.SubmitBatch, topics *app.ListTopics, log *slog.Logger) *Producer {
	return &Producer{Submit: submit, Batch: batch, Topics: topics, Log: log}
}
