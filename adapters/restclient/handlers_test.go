package restclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/kchat/kchat/adapters/restclient"
	"github.com/kchat/kchat/domain"
)

const queuedBody = `{"$schema":"http://localhost:8000/schemas/SendMessageOutputBody.json","status":"queued","message_id":"m-1"}`

// seed is the seed's routes on cfg, for a caller authenticated as alice.
func seed(cfg restclient.Config) restclient.Seed {
	return restclient.Seed{Config: cfg, Authenticate: func(*http.Request) (string, error) { return "alice", nil }, Log: slog.New(slog.DiscardHandler)}
}

func seedForm() url.Values {
	return url.Values{
		"session_id": {"session-42"},
		"user_id":    {"alice"},
		"message_id": {"m-1"},
		"type":       {"query"},
		"message":    {"How do I run kchat?"},
	}
}

func postForm(t *testing.T, h http.Handler, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/send", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func postMultipart(t *testing.T, h http.Handler, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range form {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/send", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// problem decodes a problem+json answer, failing when it is not one.
func problem(t *testing.T, rec *httptest.ResponseRecorder, wantStatus int) map[string]any {
	t.Helper()
	if rec.Code != wantStatus {
		t.Fatalf("status %d, want %d; body %s", rec.Code, wantStatus, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem %s: %v", rec.Body, err)
	}
	if p["status"] != float64(wantStatus) || p["title"] != http.StatusText(wantStatus) || p["detail"] == "" || p["detail"] == nil {
		t.Fatalf("problem %v lacks status %d, its title or a detail", p, wantStatus)
	}
	return p
}

func TestSendForwardsTheForm(t *testing.T) {
	for name, post := range map[string]func(*testing.T, http.Handler, url.Values) *httptest.ResponseRecorder{
		"urlencoded": postForm,
		"multipart":  postMultipart,
	} {
		t.Run(name, func(t *testing.T) {
			producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
			rec := post(t, seed(config(producer.URL, "")).Send(), seedForm())

			got := producer.only(t)
			if got.Method != http.MethodPost || got.Path != "/send_message" || got.ContentType != "application/json" {
				t.Fatalf("producer got %s %s (%s), want POST /send_message (application/json)", got.Method, got.Path, got.ContentType)
			}
			var body map[string]any
			if err := json.Unmarshal(got.Body, &body); err != nil {
				t.Fatalf("body %s: %v", got.Body, err)
			}
			want := map[string]any{"session_id": "session-42", "user_id": "alice", "message_id": "m-1", "type": "query", "message": "How do I run kchat?"}
			if !reflect.DeepEqual(body, want) {
				t.Fatalf("producer got %v, want %v", body, want)
			}
			// The seed's input_api answer: the producer's inside it.
			var answer struct {
				Status           string          `json:"status"`
				ProducerResponse json.RawMessage `json:"producer_response"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" ||
				answer.Status != "Message forwarded" || string(answer.ProducerResponse) != queuedBody {
				t.Fatalf("answer %d %q %s, want 200 application/json {status: Message forwarded, producer_response: %s}", rec.Code, rec.Header().Get("Content-Type"), rec.Body, queuedBody)
			}
		})
	}
}

func TestSendLeavesTheMessageIDToTheProducer(t *testing.T) {
	producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	form := seedForm()
	form.Del("message_id")
	form.Del("type")
	if rec := postForm(t, seed(config(producer.URL, "")).Send(), form); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(producer.only(t).Body, &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["message_id"]; ok {
		t.Errorf("forwarded a message_id: %v", body)
	}
	if body["type"] != "query" {
		t.Errorf("forwarded type %v, want query (the only type /send publishes)", body["type"])
	}
}

func TestSendMissingFieldsIs422(t *testing.T) {
	producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	h := seed(config(producer.URL, "")).Send()
	tests := []struct {
		name string
		give func(url.Values)
		want []string // fields the problem names
	}{
		{"no session_id", func(f url.Values) { f.Del("session_id") }, []string{"session_id"}},
		{"empty message", func(f url.Values) { f.Set("message", "") }, []string{"message"}},
		{"no message nor session", func(f url.Values) { f.Del("message"); f.Del("session_id") }, []string{"session_id", "message"}},
		{"empty form", func(f url.Values) {
			for k := range f {
				f.Del(k)
			}
		}, []string{"session_id", "message"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := seedForm()
			tt.give(form)
			p := problem(t, postForm(t, h, form), http.StatusUnprocessableEntity)
			var locations []string
			errs, _ := p["errors"].([]any)
			for _, e := range errs {
				locations = append(locations, e.(map[string]any)["location"].(string))
			}
			var want []string
			for _, f := range tt.want {
				want = append(want, "body."+f)
			}
			if !reflect.DeepEqual(locations, want) {
				t.Fatalf("problem names %v, want %v", locations, want)
			}
		})
	}
	if n := producer.count(); n != 0 {
		t.Fatalf("the producer got %d requests, want none", n)
	}
}

func TestSendBadRequests(t *testing.T) {
	producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	h := seed(config(producer.URL, "")).Send()
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		want        int
	}{
		{"JSON body", http.MethodPost, "application/json", `{"session_id":"s"}`, http.StatusUnsupportedMediaType},
		{"GET", http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{"broken multipart", http.MethodPost, "multipart/form-data; boundary=x", "not multipart", http.StatusBadRequest},
		{"too large", http.MethodPost, "application/x-www-form-urlencoded", "message=" + strings.Repeat("a", 300<<10), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/send", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			problem(t, rec, tt.want)
		})
	}
	if n := producer.count(); n != 0 {
		t.Fatalf("the producer got %d requests, want none", n)
	}
}

// TestSendRelaysTheProducersErrors checks that the producer's own problems
// reach the client unchanged, Retry-After included.
func TestSendRelaysTheProducersErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
	}{
		{"422", http.StatusUnprocessableEntity, problemHeader, `{"title":"Unprocessable Entity","status":422,"detail":"validation failed","errors":[{"location":"body.type","message":"expected value to be one of \"query, prompt, answer\""}]}`},
		{"503", http.StatusServiceUnavailable, http.Header{"Content-Type": {"application/problem+json"}, "Retry-After": {"2"}}, `{"title":"Service Unavailable","status":503,"detail":"retry later"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			producer := newFakeService(t, tt.status, tt.header, tt.body)
			rec := postForm(t, seed(config(producer.URL, "")).Send(), seedForm())
			if rec.Code != tt.status || rec.Body.String() != tt.body {
				t.Fatalf("answer %d %s, want the producer's %d %s", rec.Code, rec.Body, tt.status, tt.body)
			}
			for k := range tt.header {
				if got, want := rec.Header().Get(k), tt.header.Get(k); got != want {
					t.Errorf("%s %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestSendProducerDownIs503(t *testing.T) {
	rec := postForm(t, seed(config(deadURL(t), "")).Send(), seedForm())
	problem(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

const messagesBody = `{"status":"success","count":1,"messages":[{"topic":"query","partition":0,"offset":3,"key":"session-42","value":{"v":1,"message_id":"m-1","session_id":"session-42","user_id":"alice","type":"query","message":"hi"},"timestamp":"2026-01-02T03:04:05Z","censored":false}]}`

func getMessages(t *testing.T, h http.Handler, query string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/messages"+query, nil))
	return rec
}

func TestMessagesProxiesTheConsumer(t *testing.T) {
	tests := []struct {
		give string
		want url.Values
	}{
		// input_api's type= becomes the consumer's seed form, topic=: the
		// same semantics as the old input_api (latest=false browses).
		{"?type=query&limit=5&latest=true", url.Values{"topic": {"query"}, "limit": {"5"}, "latest": {"true"}}},
		{"?type=query&limit=10&latest=false", url.Values{"topic": {"query"}, "limit": {"10"}, "latest": {"false"}}},
		{"?topic=answer&latest=false", url.Values{"topic": {"answer"}, "latest": {"false"}}},
		{"?topic=query&latest=Yes&limit=2", url.Values{"topic": {"query"}, "latest": {"Yes"}, "limit": {"2"}}},
		{"?type=prompt&wait=5s&ack=manual", url.Values{"topic": {"prompt"}}},
		{"?type=&limit=", url.Values{}},
		{"", url.Values{}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			consumer := newFakeService(t, http.StatusOK, jsonHeader, messagesBody)
			rec := getMessages(t, seed(config("", consumer.URL)).Messages(), tt.give)

			got := consumer.only(t)
			if got.Method != http.MethodGet || got.Path != "/messages" {
				t.Fatalf("consumer got %s %s, want GET /messages", got.Method, got.Path)
			}
			if !reflect.DeepEqual(got.Query, tt.want) {
				t.Fatalf("consumer got query %v, want %v", got.Query, tt.want)
			}
			if rec.Code != http.StatusOK || rec.Body.String() != messagesBody || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("answer %d %q %s, want the consumer's body unchanged", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
		})
	}
}

func TestMessagesRelaysTheConsumersErrors(t *testing.T) {
	body := `{"title":"Unprocessable Entity","status":422,"detail":"validation failed","errors":[{"location":"query.type","message":"expected value to be one of \"query, prompt, answer\"","value":"nope"}]}`
	consumer := newFakeService(t, http.StatusUnprocessableEntity, problemHeader, body)
	rec := getMessages(t, seed(config("", consumer.URL)).Messages(), "?type=nope")
	if got := consumer.only(t).Query.Get("topic"); got != "nope" {
		t.Fatalf("consumer got topic %q, want nope (it validates)", got)
	}
	if rec.Code != http.StatusUnprocessableEntity || rec.Body.String() != body || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("answer %d %q %s, want the consumer's 422 unchanged", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

func TestMessagesBadParametersAre422(t *testing.T) {
	consumer := newFakeService(t, http.StatusOK, jsonHeader, messagesBody)
	h := seed(config("", consumer.URL)).Messages()
	for _, q := range []string{"?limit=many", "?latest=maybe"} {
		t.Run(q, func(t *testing.T) {
			problem(t, getMessages(t, h, q), http.StatusUnprocessableEntity)
		})
	}
	if n := consumer.count(); n != 0 {
		t.Fatalf("the consumer got %d requests, want none", n)
	}
}

func TestMessagesConsumerDownIs503(t *testing.T) {
	rec := getMessages(t, seed(config("", deadURL(t))).Messages(), "?type=query")
	problem(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestMessagesOnlyGET(t *testing.T) {
	rec := httptest.NewRecorder()
	seed(config("", deadURL(t))).Messages().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/messages", nil))
	problem(t, rec, http.StatusMethodNotAllowed)
	if rec.Header().Get("Allow") != http.MethodGet {
		t.Errorf("Allow %q, want GET", rec.Header().Get("Allow"))
	}
}

// Every seed route obeys KCHAT_AUTH (issue 13, item 1): without a valid
// credential, 401 and nothing reaches the producer or the consumer.
func TestSeedRoutesAuthenticate(t *testing.T) {
	upstream := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	s := seed(config(upstream.URL, upstream.URL))
	s.Authenticate = func(*http.Request) (string, error) { return "", errors.New("unauthorized: token expired") }
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"POST /send":    postForm(t, s.Send(), seedForm()),
		"GET /messages": getMessages(t, s.Messages(), "?topic=query"),
	} {
		p := problem(t, rec, http.StatusUnauthorized)
		if rec.Header().Get("WWW-Authenticate") != "Bearer" || strings.Contains(p["detail"].(string), "expired") {
			t.Errorf("%s: WWW-Authenticate %q, detail %q; want Bearer and no reason", name, rec.Header().Get("WWW-Authenticate"), p["detail"])
		}
	}
	if n := upstream.count(); n != 0 {
		t.Fatalf("upstream got %d requests, want none", n)
	}
}

// The user of /send is the caller, never the form's user_id.
func TestSendPublishesAsTheCaller(t *testing.T) {
	producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	form := seedForm()
	form.Set("user_id", "bob")
	if rec := postForm(t, seed(config(producer.URL, "")).Send(), form); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(producer.only(t).Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["user_id"] != "alice" {
		t.Fatalf("published as %v, want the caller alice", body["user_id"])
	}
}

// /send publishes questions only: prompts and answers are the answerer's.
func TestSendRefusesPromptsAndAnswers(t *testing.T) {
	producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	h := seed(config(producer.URL, "")).Send()
	for _, typ := range []string{"answer", "prompt", "Answer", "nonsense"} {
		form := seedForm()
		form.Set("type", typ)
		p := problem(t, postForm(t, h, form), http.StatusUnprocessableEntity)
		if errs, _ := p["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["location"] != "body.type" {
			t.Errorf("type=%s: problem %v, want one error at body.type", typ, p)
		}
	}
	if n := producer.count(); n != 0 {
		t.Fatalf("the producer got %d requests, want none", n)
	}
}

// limiter answers Allow with ok and err.
type limiter struct {
	ok  bool
	err error
}

func (l limiter) Allow(context.Context, string) (bool, error) { return l.ok, l.err }

// /send counts against the caller's limits like every entry point.
func TestSendIsRateLimited(t *testing.T) {
	producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	s := seed(config(producer.URL, ""))
	s.Limiter = limiter{ok: false}
	rec := postForm(t, s.Send(), seedForm())
	problem(t, rec, http.StatusTooManyRequests)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	s.Limiter = limiter{err: errors.New("down")}
	problem(t, postForm(t, s.Send(), seedForm()), http.StatusServiceUnavailable)
	if n := producer.count(); n != 0 {
		t.Fatalf("the producer got %d requests, want none", n)
	}
	s.Limiter = limiter{ok: true}
	if rec := postForm(t, s.Send(), seedForm()); rec.Code != http.StatusOK {
		t.Fatalf("allowed: status %d", rec.Code)
	}
}

// /send posts into a session only for its owner, as POST /chat does.
func TestSendChecksTheSession(t *testing.T) {
	producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	s := seed(config(producer.URL, ""))
	var asked []string
	for _, tt := range []struct {
		give error
		want int
	}{
		{fmt.Errorf("session: %w", domain.ErrForbidden), http.StatusForbidden},
		{&domain.ValidationError{Field: "session_id", Reason: "must not contain control characters"}, http.StatusUnprocessableEntity},
		{fmt.Errorf("redis: %w", domain.ErrUnavailable), http.StatusServiceUnavailable},
	} {
		s.MayAsk = func(_ context.Context, user, session string) error {
			asked = append(asked, user+"@"+session)
			return tt.give
		}
		problem(t, postForm(t, s.Send(), seedForm()), tt.want)
	}
	if n := producer.count(); n != 0 {
		t.Fatalf("the producer got %d requests, want none", n)
	}
	if len(asked) != 3 || asked[0] != "alice@session-42" {
		t.Fatalf("checked %v, want alice's right to session-42", asked)
	}
	s.MayAsk = func(context.Context, string, string) error { return nil }
	if rec := postForm(t, s.Send(), seedForm()); rec.Code != http.StatusOK {
		t.Fatalf("allowed: status %d", rec.Code)
	}
}

const browseBody = `{"status":"success","count":4,"messages":[` +
	`{"topic":"answer","partition":0,"offset":1,"key":"s-a","value":{"v":1,"message_id":"m-1","session_id":"s-a","user_id":"alice","type":"answer","message":"yours"}},` +
	`{"topic":"answer","partition":0,"offset":2,"key":"s-b","value":{"v":1,"message_id":"m-2","session_id":"s-b","user_id":"bob","type":"answer","message":"bob's"}},` +
	`{"topic":"answer","partition":1,"offset":0,"key":"s-x","value":null,"poison":"not JSON","raw":"eA=="},` +
	`{"topic":"answer","partition":2,"offset":7,"key":"s-a","value":{"v":1,"message_id":"m-3","session_id":"s-a","user_id":"alice","type":"answer","message":"also yours"}}]}`

// With callers told apart (KCHAT_AUTH=token or header), GET /messages only
// browses, and shows the caller's records only (issue 13, item 1).
func TestMessagesOwnRecordsOnly(t *testing.T) {
	consumer := newFakeService(t, http.StatusOK, jsonHeader, browseBody)
	s := seed(config("", consumer.URL))
	s.OwnRecordsOnly = true
	h := s.Messages()
	for _, q := range []string{"?type=answer&latest=true", "?type=query&limit=5&latest=on", "?topic=answer&latest=true", "?topic=answer&latest=1&type=answer"} {
		t.Run(q, func(t *testing.T) {
			problem(t, getMessages(t, h, q), http.StatusForbidden)
		})
	}
	if n := consumer.count(); n != 0 {
		t.Fatalf("consuming forms reached the consumer %d times", n)
	}
	rec := getMessages(t, h, "?topic=answer&limit=10")
	if got := consumer.only(t).Query; got.Get("topic") != "answer" || got.Get("latest") != "" {
		t.Fatalf("the consumer got %v, want a browse of answer", got)
	}
	var page struct {
		Status   string `json:"status"`
		Count    int    `json:"count"`
		Messages []struct {
			Value struct {
				UserID    string `json:"user_id"`
				MessageID string `json:"message_id"`
			} `json:"value"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if page.Status != "success" || page.Count != 2 || len(page.Messages) != 2 ||
		page.Messages[0].Value.MessageID != "m-1" || page.Messages[1].Value.MessageID != "m-3" {
		t.Fatalf("browse answered %s, want alice's m-1 and m-3 only", rec.Body)
	}
	if strings.Contains(rec.Body.String(), "bob") || strings.Contains(rec.Body.String(), "poison") {
		t.Fatalf("browse shows others' records: %s", rec.Body)
	}
}

// The consumer's errors and a browse it cannot answer pass through the
// filter as they are, and an unreadable page is a 503, never a 500.
func TestMessagesOwnRecordsOnlyErrors(t *testing.T) {
	body := `{"title":"Unprocessable Entity","status":422,"detail":"validation failed"}`
	consumer := newFakeService(t, http.StatusUnprocessableEntity, problemHeader, body)
	s := seed(config("", consumer.URL))
	s.OwnRecordsOnly = true
	if rec := getMessages(t, s.Messages(), "?topic=nope"); rec.Code != http.StatusUnprocessableEntity || rec.Body.String() != body {
		t.Fatalf("answer %d %s, want the consumer's 422 unchanged", rec.Code, rec.Body)
	}
	broken := newFakeService(t, http.StatusOK, jsonHeader, `{"messages":"nope"`)
	s.Config = config("", broken.URL)
	problem(t, getMessages(t, s.Messages(), "?topic=answer"), http.StatusServiceUnavailable)
}
