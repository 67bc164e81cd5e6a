package restclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/restclient"
	"github.com/kchat/kchat/domain"
)

func query() domain.Message {
	return domain.Message{
		MessageID: "0193a2f4-8c1e-7d2a-9f00-1c2d3e4f5a6b",
		SessionID: "session-42",
		UserID:    "alice",
		Type:      domain.TypeQuery,
		Text:      "How do I run kchat?",
		CreatedAt: time.Now(),
		Metadata:  map[string]any{"client": "web"},
	}
}

func TestPublisherPostsTheQuery(t *testing.T) {
	producer := newFakeService(t, http.StatusAccepted, jsonHeader,
		`{"status":"queued","message_id":"0193a2f4-8c1e-7d2a-9f00-1c2d3e4f5a6b","topic":"query","partition":0,"offset":7}`)
	p := restclient.NewPublisher(config(producer.URL, ""), nil)

	if err := p.PublishQuery(context.Background(), query()); err != nil {
		t.Fatalf("PublishQuery: %v", err)
	}
	got := producer.only(t)
	if got.Method != http.MethodPost || got.Path != "/messages" || got.ContentType != "application/json" {
		t.Fatalf("producer got %s %s (%s), want POST /messages (application/json)", got.Method, got.Path, got.ContentType)
	}
	var body map[string]any
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatalf("body %s: %v", got.Body, err)
	}
	want := map[string]any{
		"session_id": "session-42",
		"user_id":    "alice",
		"message_id": "0193a2f4-8c1e-7d2a-9f00-1c2d3e4f5a6b",
		"type":       "query",
		"message":    "How do I run kchat?",
		"metadata":   map[string]any{"client": "web"},
	}
	if !reflect.DeepEqual(body, want) {
		t.Fatalf("body %v, want %v", body, want)
	}
}

func TestPublisherOmitsAnEmptyMessageID(t *testing.T) {
	producer := newFakeService(t, http.StatusAccepted, jsonHeader, `{}`)
	q := query()
	q.MessageID = ""
	q.Metadata = nil
	if err := restclient.NewPublisher(config(producer.URL, ""), nil).PublishQuery(context.Background(), q); err != nil {
		t.Fatalf("PublishQuery: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal(producer.only(t).Body, &body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"message_id", "metadata"} {
		if _, ok := body[k]; ok {
			t.Errorf("body has %s: %v; the producer should generate or omit it", k, body)
		}
	}
}

// TestPublisherKeepsTheBasePath checks that a producer behind a path prefix
// (a reverse proxy) is reached under that prefix.
func TestPublisherKeepsTheBasePath(t *testing.T) {
	producer := newFakeService(t, http.StatusAccepted, jsonHeader, `{}`)
	if err := restclient.NewPublisher(config(producer.URL+"/producer", ""), nil).PublishQuery(context.Background(), query()); err != nil {
		t.Fatalf("PublishQuery: %v", err)
	}
	if got := producer.only(t).Path; got != "/producer/messages" {
		t.Fatalf("path %s, want /producer/messages", got)
	}
}

func TestPublisherErrors(t *testing.T) {
	tests := []struct {
		name            string
		giveStatus      int
		giveHeader      http.Header
		giveBody        string
		wantUnavailable bool
		wantValidation  *domain.ValidationError
		wantText        string
	}{
		{
			name:       "503 is unavailable",
			giveStatus: http.StatusServiceUnavailable, giveHeader: problemHeader,
			giveBody:        `{"title":"Service Unavailable","status":503,"detail":"a dependency (Kafka or Redis) did not answer in time; retry later"}`,
			wantUnavailable: true, wantText: "did not answer in time",
		},
		{
			name:       "502 from a proxy is unavailable",
			giveStatus: http.StatusBadGateway, giveHeader: http.Header{"Content-Type": {"text/html"}},
			giveBody:        "<html>bad gateway</html>",
			wantUnavailable: true, wantText: "502",
		},
		{
			name:       "422 names the field",
			giveStatus: http.StatusUnprocessableEntity, giveHeader: problemHeader,
			giveBody:       `{"title":"Unprocessable Entity","status":422,"detail":"validation failed","errors":[{"location":"body.message","message":"expected length >= 1","value":""}]}`,
			wantValidation: &domain.ValidationError{Field: "message", Reason: "expected length >= 1"},
		},
		{
			name:       "422 without details",
			giveStatus: http.StatusUnprocessableEntity, giveHeader: problemHeader,
			giveBody:       `{"title":"Unprocessable Entity","status":422,"detail":"validation failed: message must be valid UTF-8"}`,
			wantValidation: &domain.ValidationError{Field: "body", Reason: "validation failed: message must be valid UTF-8"},
		},
		{
			name:       "413 is a validation error",
			giveStatus: http.StatusRequestEntityTooLarge, giveHeader: problemHeader,
			giveBody:       `{"title":"Request Entity Too Large","status":413}`,
			wantValidation: &domain.ValidationError{Field: "message", Reason: "is too large"},
		},
		{
			name:       "415 is a plain error with the detail",
			giveStatus: http.StatusUnsupportedMediaType, giveHeader: problemHeader,
			giveBody: `{"title":"Unsupported Media Type","status":415,"detail":"unsupported content type"}`,
			wantText: "415: Unsupported Media Type: unsupported content type",
		},
		{
			name:       "500 is a plain error",
			giveStatus: http.StatusInternalServerError, giveHeader: problemHeader,
			giveBody: `{"title":"Internal Server Error","status":500,"detail":"internal error"}`,
			wantText: "500: Internal Server Error: internal error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			producer := newFakeService(t, tt.giveStatus, tt.giveHeader, tt.giveBody)
			err := restclient.NewPublisher(config(producer.URL, ""), nil).PublishQuery(context.Background(), query())
			if err == nil {
				t.Fatal("PublishQuery: nil error")
			}
			if got := errors.Is(err, domain.ErrUnavailable); got != tt.wantUnavailable {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v, want %v", err, got, tt.wantUnavailable)
			}
			var verr *domain.ValidationError
			isValidation := errors.As(err, &verr)
			switch {
			case tt.wantValidation != nil && !isValidation:
				t.Errorf("error %v is no *domain.ValidationError", err)
			case tt.wantValidation != nil && *verr != *tt.wantValidation:
				t.Errorf("validation error %+v, want %+v", *verr, *tt.wantValidation)
			case tt.wantValidation == nil && isValidation:
				t.Errorf("error %v is a validation error, want not", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
		})
	}
}

func TestPublisherUnreachableIsUnavailable(t *testing.T) {
	err := restclient.NewPublisher(config(deadURL(t), ""), nil).PublishQuery(context.Background(), query())
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("PublishQuery to a closed port: %v, want ErrUnavailable", err)
	}
}

func TestPublisherTimeoutIsUnavailable(t *testing.T) {
	cfg := config(hangingURL(t), "")
	cfg.Timeout = 200 * time.Millisecond
	start := time.Now()
	err := restclient.NewPublisher(cfg, nil).PublishQuery(context.Background(), query())
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("PublishQuery to a producer that never answers: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s with a 200ms timeout", took)
	}
}

// TestPublisherKeepsTheContextError checks that a caller's cancellation
// stays visible under ErrUnavailable.
func TestPublisherKeepsTheContextError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := restclient.NewPublisher(config(hangingURL(t), ""), nil).PublishQuery(ctx, query())
	if !errors.Is(err, domain.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PublishQuery past the caller's deadline: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
}

func TestPublisherRejectsOtherTypes(t *testing.T) {
	producer := newFakeService(t, http.StatusAccepted, jsonHeader, `{}`)
	q := query()
	q.Type = domain.TypeAnswer
	if err := restclient.NewPublisher(config(producer.URL, ""), nil).PublishQuery(context.Background(), q); err == nil {
		t.Fatal("PublishQuery of an answer: nil error")
	}
	if n := producer.count(); n != 0 {
		t.Fatalf("the producer got %d requests, want none", n)
	}
}

func TestPublisherReady(t *testing.T) {
	up := newFakeService(t, http.StatusOK, jsonHeader, `{"status":"ok"}`)
	if err := restclient.NewPublisher(config(up.URL, ""), nil).Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if got := up.only(t); got.Method != http.MethodGet || got.Path != "/readyz" {
		t.Fatalf("producer got %s %s, want GET /readyz", got.Method, got.Path)
	}
	down := newFakeService(t, http.StatusServiceUnavailable, problemHeader, `{"status":503,"detail":"kafka"}`)
	if err := restclient.NewPublisher(config(down.URL, ""), nil).Ready(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Ready on 503: %v, want ErrUnavailable", err)
	}
	if err := restclient.NewPublisher(config(deadURL(t), ""), nil).Ready(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Ready on a closed port: %v, want ErrUnavailable", err)
	}
}
