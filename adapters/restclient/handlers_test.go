package restclient_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/kchat/kchat/adapters/restclient"
)

const queuedBody = `{"$schema":"http://localhost:8000/schemas/SendMessageOutputBody.json","status":"queued","message_id":"m-1"}`

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
			rec := post(t, restclient.SendHandler(config(producer.URL, "")), seedForm())

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
			if rec.Code != http.StatusOK || rec.Body.String() != queuedBody || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("answer %d %q %s, want the producer's 200 application/json %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, queuedBody)
			}
		})
	}
}

func TestSendLeavesOptionalFieldsToTheProducer(t *testing.T) {
	producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	form := seedForm()
	form.Del("message_id")
	form.Del("type")
	if rec := postForm(t, restclient.SendHandler(config(producer.URL, "")), form); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(producer.only(t).Body, &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["message_id"]; ok {
		t.Errorf("forwarded a message_id: %v", body)
	}
	if _, ok := body["type"]; ok {
		t.Errorf("forwarded a type: %v", body)
	}
}

func TestSendMissingFieldsIs422(t *testing.T) {
	producer := newFakeService(t, http.StatusOK, jsonHeader, queuedBody)
	h := restclient.SendHandler(config(producer.URL, ""))
	tests := []struct {
		name string
		give func(url.Values)
		want []string // fields the problem names
	}{
		{"no session_id", func(f url.Values) { f.Del("session_id") }, []string{"session_id"}},
		{"empty user_id", func(f url.Values) { f.Set("user_id", "") }, []string{"user_id"}},
		{"no message nor session", func(f url.Values) { f.Del("message"); f.Del("session_id") }, []string{"session_id", "message"}},
		{"empty form", func(f url.Values) {
			for k := range f {
				f.Del(k)
			}
		}, []string{"session_id", "user_id", "message"}},
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
	h := restclient.SendHandler(config(producer.URL, ""))
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
			rec := postForm(t, restclient.SendHandler(config(producer.URL, "")), seedForm())
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
	rec := postForm(t, restclient.SendHandler(config(deadURL(t), "")), seedForm())
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
		{"?type=query&limit=5&latest=true", url.Values{"type": {"query"}, "limit": {"5"}, "latest": {"true"}}},
		{"?topic=answer&latest=false", url.Values{"topic": {"answer"}, "latest": {"false"}}},
		{"?topic=query&latest=1&limit=2", url.Values{"topic": {"query"}, "latest": {"true"}, "limit": {"2"}}},
		{"?type=prompt&wait=5s&ack=manual", url.Values{"type": {"prompt"}}},
		{"?type=&limit=", url.Values{}},
		{"", url.Values{}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			consumer := newFakeService(t, http.StatusOK, jsonHeader, messagesBody)
			rec := getMessages(t, restclient.MessagesHandler(config("", consumer.URL)), tt.give)

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
	rec := getMessages(t, restclient.MessagesHandler(config("", consumer.URL)), "?type=nope")
	if got := consumer.only(t).Query.Get("type"); got != "nope" {
		t.Fatalf("consumer got type %q, want nope (it validates)", got)
	}
	if rec.Code != http.StatusUnprocessableEntity || rec.Body.String() != body || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("answer %d %q %s, want the consumer's 422 unchanged", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

func TestMessagesBadParametersAre422(t *testing.T) {
	consumer := newFakeService(t, http.StatusOK, jsonHeader, messagesBody)
	h := restclient.MessagesHandler(config("", consumer.URL))
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
	rec := getMessages(t, restclient.MessagesHandler(config("", deadURL(t))), "?type=query")
	problem(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestMessagesOnlyGET(t *testing.T) {
	rec := httptest.NewRecorder()
	restclient.MessagesHandler(config("", deadURL(t))).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/messages", nil))
	problem(t, rec, http.StatusMethodNotAllowed)
	if rec.Header().Get("Allow") != http.MethodGet {
		t.Errorf("Allow %q, want GET", rec.Header().Get("Allow"))
	}
}
