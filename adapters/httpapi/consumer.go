package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	json "github.com/goccy/go-json"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// Consumer serves the consumer service's routes (docs/design.md, "Consumer").
type Consumer struct {
	Fetch  *app.FetchNext
	Ack    *app.Acknowledge
	Browse *app.Browse
	// TopicPrefix lets the seed's topic parameter name a prefixed topic.
	TopicPrefix string
	Log         *slog.Logger

	delivered atomic.Int64 // messages whose response was written: the seed's message_count
}

// Delivered is how many messages this process served with GET /messages
// (responses written); the seed's GET /health reports it as message_count.
func (c *Consumer) Delivered() int64 { return c.delivered.Load() }

// seedWait is how long the seed's form topic=X&latest=true waits for a
// message when the request names no wait: the old consumer waited until
// one came (docs/migration.md, "Routes").
const seedWait = 5 * time.Second

// NewConsumer returns the consumer handlers.
func NewConsumer(fetch *app.FetchNext, ack *app.Acknowledge, browse *app.Browse, log *slog.Logger) *Consumer {
	return &Consumer{Fetch: fetch, Ack: ack, Browse: browse, Log: log}
}

// ConsumedMessage is one record in the seed's response shape.
type ConsumedMessage struct {
	Topic     string         `json:"topic"`
	Partition int32          `json:"partition"`
	Offset    int64          `json:"offset"`
	Key       string         `json:"key"`
	Value     *wire.Envelope `json:"value" doc:"The envelope; null for a poison record"`
	Timestamp time.Time      `json:"timestamp"`
	Censored  bool           `json:"censored" doc:"Profanity was masked in value.message, or in raw (queries only; the record in Kafka is unchanged)"`
	Receipt   string         `json:"receipt,omitempty" doc:"With ack=manual: pass it to POST /messages/ack"`
	Poison    string         `json:"poison,omitempty" doc:"Why the record is not a valid envelope; it is delivered, never skipped"`
	Raw       []byte         `json:"raw,omitempty" doc:"A poison record's bytes, base64; on the query topic masked as text, or left out when they are not UTF-8"`
}

// GapOutput reports offsets retention deleted before they were consumed.
type GapOutput struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
}

// MessagesOutput is the body of GET /messages and GET /messages/peek.
type MessagesOutput struct {
	Status   string            `json:"status" example:"success"`
	Count    int               `json:"count"`
	Messages []ConsumedMessage `json:"messages"`
	Gaps     []GapOutput       `json:"gaps,omitempty" doc:"Offsets deleted by retention before the group consumed them"`
}

type getMessagesInput struct {
	Type   string `query:"type" enum:"query,prompt,answer" doc:"Topic to read; the seed's topic parameter also works"`
	Topic  string `query:"topic" doc:"The seed's parameter: a type (or prefixed topic name); without latest=true it browses. Answers in the seed's record shape"`
	Latest string `query:"latest" doc:"The seed's parameter, with topic: true (also 1, yes, on, in any case) takes the next unconsumed message, one whatever limit says; false (0, no, off) browses from the beginning"`
	Limit  int    `query:"limit" minimum:"1" maximum:"500" doc:"Most messages to return; 1 by default, 10 when browsing with topic"`
	Wait   string `query:"wait" doc:"Long-poll up to this long for the first message: 0s to 30s (\"5s\", \"500ms\" or seconds); 0s by default, 5s with topic and latest=true"`
	Ack    string `query:"ack" enum:"auto,manual" default:"auto" doc:"auto: consumed once this response is written; manual: leased until POST /messages/ack"`
}

type peekInput struct {
	Type  string `query:"type" required:"true" enum:"query,prompt,answer"`
	Limit int    `query:"limit" minimum:"1" maximum:"500" default:"10"`
}

type ackInput struct {
	Body struct {
		Receipts []string `json:"receipts" minItems:"1" maxItems:"500" doc:"Receipts from ack=manual responses"`
	}
}

type ackOutput struct {
	Body struct {
		Status string `json:"status" example:"acknowledged"`
		Count  int    `json:"count"`
	}
}

// Register adds the consumer operations to api.
func (c *Consumer) Register(api huma.API) {
	registry := api.OpenAPI().Components.Schemas
	schema := registry.Schema(reflect.TypeFor[MessagesOutput](), true, "MessagesOutput")
	either := &huma.Schema{AnyOf: []*huma.Schema{schema, registry.Schema(reflect.TypeFor[SeedMessagesOutput](), true, "SeedMessagesOutput")}}
	jsonResponse := func(desc string, s *huma.Schema) map[string]*huma.Response {
		return map[string]*huma.Response{"200": {Description: desc, Content: map[string]*huma.MediaType{"application/json": {Schema: s}}}}
	}
	huma.Register(api, huma.Operation{
		OperationID: "getMessages",
		Method:      http.MethodGet,
		Path:        "/messages",
		Summary:     "Take the next unconsumed messages of a topic",
		Description: "Messages come in offset order per partition; concurrent callers never get the same one. " +
			"With ack=auto a message counts as consumed once this response was written (a failed write puts it back). " +
			"With ack=manual it is leased until POST /messages/ack or until the lease expires. " +
			"The seed's form `topic=X&latest=true` takes the next one message (limit ignored) and `topic=X` alone browses from the beginning, " +
			"both answering in the seed's record shape (SeedMessagesOutput).",
		Tags:      []string{"messages"},
		Responses: jsonResponse("The next messages (count 0 when none came within wait)", either),
		Errors:    []int{http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, c.getMessages)

	huma.Register(api, huma.Operation{
		OperationID: "ackMessages",
		Method:      http.MethodPost,
		Path:        "/messages/ack",
		Summary:     "Acknowledge ack=manual messages",
		Description: "404 names receipts that are not leased (never issued, already acknowledged, or expired); the others are acknowledged.",
		Tags:        []string{"messages"},
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity},
	}, c.ack)

	huma.Register(api, huma.Operation{
		OperationID: "peekMessages",
		Method:      http.MethodGet,
		Path:        "/messages/peek",
		Summary:     "Browse a topic from the beginning without consuming",
		Tags:        []string{"messages"},
		Responses:   jsonResponse("Messages from the beginning of the topic", schema),
		Errors:      []int{http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, c.peek)
}

func (c *Consumer) getMessages(ctx context.Context, in *getMessagesInput) (*huma.StreamResponse, error) {
	form, err := c.selectForm(in)
	if err != nil {
		return nil, err
	}
	if form.browse {
		return c.browse(ctx, form.typ, form.limit, form.seed)
	}
	res, err := c.Fetch.Execute(ctx, app.FetchNextInput{Type: form.typ, Limit: form.limit, Wait: form.wait, Manual: in.Ack == "manual"})
	if err != nil {
		return nil, problem(ctx, c.Log, err)
	}
	var body any = messagesOutput(res.Deliveries, res.Gaps)
	if form.seed {
		body = seedMessagesOutput(res.Deliveries)
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		written := writeJSON(hctx, body)
		if written {
			c.delivered.Add(int64(len(res.Deliveries)))
		}
		if err := res.Settle(context.WithoutCancel(ctx), written); err != nil {
			c.Log.ErrorContext(ctx, "settling delivered messages failed", "err", err)
		}
	}}, nil
}

// messagesForm is what a GET /messages asks for.
type messagesForm struct {
	typ    domain.MessageType
	seed   bool // the seed's form (topic=): its record shape
	browse bool
	limit  int
	wait   time.Duration
}

// selectForm resolves kchat's form (type=) or the seed's (topic= with
// latest), with each form's defaults.
func (c *Consumer) selectForm(in *getMessagesInput) (messagesForm, error) {
	f := messagesForm{limit: in.Limit}
	switch {
	case in.Type != "":
		f.typ = domain.MessageType(in.Type)
	case in.Topic != "":
		f.typ, f.seed = domain.MessageType(strings.TrimPrefix(in.Topic, c.TopicPrefix)), true
		if !f.typ.Valid() {
			return f, huma.Error422UnprocessableEntity("validation failed",
				&huma.ErrorDetail{Location: "query.topic", Message: "must be one of query, prompt, answer", Value: in.Topic})
		}
		latest := false
		if in.Latest != "" {
			var err error
			if latest, err = parseSeedBool("latest", in.Latest); err != nil {
				return f, err
			}
		}
		f.browse = !latest
	default:
		return f, huma.Error422UnprocessableEntity("validation failed",
			&huma.ErrorDetail{Location: "query.type", Message: "type (or the seed's topic) is required"})
	}
	switch {
	case f.seed && !f.browse:
		f.limit = 1 // the next unconsumed message, whatever limit says
	case f.limit == 0 && f.browse:
		f.limit = 10
	case f.limit == 0:
		f.limit = 1
	}
	f.wait = 0
	if f.seed && !f.browse {
		f.wait = seedWait
	}
	if in.Wait != "" {
		var err error
		if f.wait, err = parseWait(in.Wait); err != nil {
			return f, err
		}
	}
	return f, nil
}

func (c *Consumer) peek(ctx context.Context, in *peekInput) (*huma.StreamResponse, error) {
	return c.browse(ctx, domain.MessageType(in.Type), in.Limit, false)
}

func (c *Consumer) browse(ctx context.Context, typ domain.MessageType, limit int, seed bool) (*huma.StreamResponse, error) {
	ds, err := c.Browse.Execute(ctx, typ, limit)
	if err != nil {
		return nil, problem(ctx, c.Log, err)
	}
	var body any = messagesOutput(ds, nil)
	if seed {
		body = seedMessagesOutput(ds)
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) { writeJSON(hctx, body) }}, nil
}

func (c *Consumer) ack(ctx context.Context, in *ackInput) (*ackOutput, error) {
	err := c.Ack.Execute(ctx, in.Body.Receipts)
	var unknown *domain.UnknownReceiptsError
	if errors.As(err, &unknown) {
		details := make([]error, len(unknown.Receipts))
		for i, r := range unknown.Receipts {
			details[i] = &huma.ErrorDetail{Location: "body.receipts", Message: "not leased: never issued for this consumer group, already acknowledged, or expired", Value: r}
		}
		return nil, huma.Error404NotFound(fmt.Sprintf("%d of %d receipts are unknown; the others were acknowledged", len(unknown.Receipts), len(in.Body.Receipts)), details...)
	}
	if err != nil {
		return nil, problem(ctx, c.Log, err)
	}
	out := &ackOutput{}
	out.Body.Status, out.Body.Count = "acknowledged", len(in.Body.Receipts)
	return out, nil
}

// parseWait accepts a Go duration ("5s", "500ms") or a number of seconds.
func parseWait(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, huma.Error422UnprocessableEntity("validation failed",
				&huma.ErrorDetail{Location: "query.wait", Message: `must be a duration such as "5s" or "500ms", or a number of seconds`, Value: s})
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 || d > app.MaxFetchWait {
		return 0, huma.Error422UnprocessableEntity("validation failed",
			&huma.ErrorDetail{Location: "query.wait", Message: "must be between 0s and 30s", Value: s})
	}
	return d, nil
}

// writeJSON writes body as the 200 response and reports whether all of it
// reached the connection. A client that already went away gets nothing
// written; one that reads the response and then closes the connection (as
// HTTP clients with a small idle pool do) got it.
func writeJSON(hctx huma.Context, body any) bool {
	raw, err := json.Marshal(body)
	if err != nil {
		hctx.SetStatus(http.StatusInternalServerError)
		return false
	}
	if hctx.Context().Err() != nil {
		return false
	}
	hctx.SetHeader("Content-Type", "application/json")
	hctx.SetHeader("Content-Length", strconv.Itoa(len(raw)))
	hctx.SetStatus(http.StatusOK)
	if _, err := hctx.BodyWriter().Write(raw); err != nil {
		return false
	}
	_, w := humachi.Unwrap(hctx)
	return http.NewResponseController(w).Flush() == nil
}

func messagesOutput(ds []domain.Delivery, gaps []domain.Gap) MessagesOutput {
	out := MessagesOutput{Status: "success", Count: len(ds), Messages: make([]ConsumedMessage, len(ds))}
	for i, d := range ds {
		m := ConsumedMessage{
			Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, Key: d.Key, Timestamp: d.Timestamp,
			Censored: d.Censored, Receipt: d.Receipt, Poison: d.Poison, Raw: d.Raw,
		}
		if d.Poison == "" {
			e := wire.EnvelopeOf(d.Message)
			m.Value = &e
		}
		out.Messages[i] = m
	}
	for _, g := range gaps {
		out.Gaps = append(out.Gaps, GapOutput(g))
	}
	return out
}
