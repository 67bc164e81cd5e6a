package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// twoProducers serves POST /messages twice: with the single-pass path and
// with huma alone (the reference), each on a broker of its own.
type twoProducers struct {
	fast, ref           http.Handler
	fastBroker, refBrkr *memory.Broker
	route               *decodedRoute[MessageInput]
}

func newTwoProducers(t testing.TB) *twoProducers {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	tp := &twoProducers{fastBroker: memory.NewBroker(""), refBrkr: memory.NewBroker("")}
	for _, decoded := range []bool{true, false} {
		b := tp.refBrkr
		if decoded {
			b = tp.fastBroker
		}
		s := NewServer(ServerConfig{Addr: ":0", ShutdownTimeout: time.Second}, "kchat producer", nil, log)
		p := NewProducer(&app.SubmitMessage{Publisher: b}, &app.SubmitBatch{Publisher: b}, &app.ListTopics{Topics: b}, log)
		route := p.register(s.API(), decoded)
		if decoded {
			tp.fast, tp.route = s.Handler(), route
		} else {
			tp.ref = s.Handler()
		}
	}
	return tp
}

// generatedID is a message id the service generated: it differs between
// the two paths and is compared as a placeholder.
var generatedID = regexp.MustCompile(`"message_id":"[0-9a-f-]{36}"`)

// comparable is a response body with what may differ between two answers
// to one request replaced: a generated message id, and the order of a
// problem's errors and where it says unknown members are (huma lists them
// in map order, and with several of them the locations come out garbled
// differently from one answer to the next).
func comparable(body string) string {
	body = generatedID.ReplaceAllString(body, `"message_id":"ID"`)
	var problem map[string]any
	if json.Unmarshal([]byte(body), &problem) != nil {
		return body
	}
	if errs, ok := problem["errors"].([]any); ok {
		for _, e := range errs {
			if d, ok := e.(map[string]any); ok && d["message"] == "unexpected property" {
				delete(d, "location")
			}
		}
		slices.SortFunc(errs, func(a, b any) int {
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			return bytes.Compare(ja, jb)
		})
	}
	out, _ := json.Marshal(problem)
	return string(out)
}

// post sends one request to h and returns what a client sees.
func post(h http.Handler, body []byte, header http.Header) (int, http.Header, string) {
	req := httptest.NewRequest(http.MethodPost, "/messages", bytes.NewReader(body))
	req.Header = header.Clone()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	return rec.Code, rec.Header(), string(raw)
}

// same sends the request down both paths and fails if a client could tell
// them apart: status, headers, body, and what was published.
func (tp *twoProducers) same(t *testing.T, body []byte, header http.Header) (status int) {
	t.Helper()
	fs, fh, fb := post(tp.fast, body, header)
	rs, rh, rb := post(tp.ref, body, header)
	if fs != rs || !reflect.DeepEqual(fh, rh) || comparable(fb) != comparable(rb) {
		t.Fatalf("body %.300q, header %v:\nsingle pass: %d %v %.500s\nhuma:        %d %v %.500s", body, header, fs, fh, fb, rs, rh, rb)
	}
	for _, typ := range domain.MessageTypes {
		fm, rm := tp.fastBroker.Messages(string(typ)), tp.refBrkr.Messages(string(typ))
		if len(fm) != len(rm) {
			t.Fatalf("published to %d %s partitions, huma to %d", len(fm), typ, len(rm))
		}
		for p := range fm {
			if len(fm[p]) != len(rm[p]) {
				t.Fatalf("published %d messages to %s[%d], huma %d", len(fm[p]), typ, p, len(rm[p]))
			}
			if n := len(fm[p]); n > 0 && !sameMessage(fm[p][n-1], rm[p][n-1]) {
				t.Fatalf("published %+v, huma %+v", fm[p][n-1], rm[p][n-1])
			}
		}
	}
	return fs
}

// sameMessage compares two published messages but for what each path makes
// up on its own: a generated id and the time.
func sameMessage(a, b domain.Message) bool {
	if len(a.MessageID) == 36 && len(b.MessageID) == 36 {
		a.MessageID, b.MessageID = "", ""
	}
	if a.SessionID == "" || strings.Count(a.SessionID, "-") == 4 {
		a.SessionID, b.SessionID = "", ""
	}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// decodedBodies are bodies the single-pass path must take itself.
var decodedBodies = []string{
	`{"session_id":"s1","user_id":"u1","type":"query","message":"hello"}`,
	`{"message":"hi","type":"prompt","user_id":"u","session_id":"s","reply_to":"q1","message_id":"m-1"}`,
	` {"session_id":"s","user_id":"u","type":"answer","message":"a\nb \"c\" \u00e9\u20ac \ud83d\ude00","metadata":{"k":[1,2.5,{"x":null}],"b":true}} ` + "\n",
	`{"session_id":"` + strings.Repeat("é", 128) + `","user_id":"u","type":"query","message":"` + strings.Repeat("€", 500) + `"}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"x","message_id":"","metadata":{}}`,
	// The schema allows these; the use case refuses them, on either path.
	`{"session_id":"s\u0000x","user_id":"u","type":"query","message":"hi"}`,
	`{"session_id":"s","user_id":"u\u202e","type":"query","message":"hi"}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"` + strings.Repeat("é", 20000) + `"}`,
}

// humaBodies are bodies the single-pass path must leave to huma: invalid
// ones, and valid ones it does not check itself.
var humaBodies = []string{
	``,
	`null`,
	`[1,2]`,
	`"text"`,
	`{`,
	`{"session_id":"s",`,
	`{"session_id":"s","user_id":"u","type":"query","message":"hi"} {}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"hi"}x`,
	`{"session_id":"s","user_id":"u","type":"shout","message":"hi"}`,
	`{"session_id":"s","user_id":"u","type":"Query","message":"hi"}`,
	`{"session_id":"s","user_id":"u","type":"query","message":""}`,
	`{"session_id":"s","user_id":"u","type":"query"}`,
	`{"user_id":"u","type":"query","message":"hi"}`,
	`{"session_id":"","user_id":"u","type":"query","message":"hi"}`,
	`{"session_id":"` + strings.Repeat("é", 129) + `","user_id":"u","type":"query","message":"hi"}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"` + strings.Repeat("a", 32769) + `"}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"hi","colour":"red"}`,
	`{"Session_ID":"s","user_id":"u","type":"query","message":"hi"}`,
	`{"session\u005fid":"s","user_id":"u","type":"query","message":"hi"}`,
	`{"session_id":"s","user_id":"u","type":"query","type":"answer","message":"hi"}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"hi","metadata":{"a":1,"a":2}}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"hi","metadata":null}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"hi","metadata":[1]}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"hi","message_id":null}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"hi","reply_to":7}`,
	`{"session_id":5,"user_id":"u","type":"query","message":"hi"}`,
	`{"session_id":"s","user_id":"u","type":"answer","message":"hi","citations":[{"n":1,"source":"a","text":"t"}]}`,
	`{"session_id":"s","user_id":"u","type":"answer","message":"hi","citations":null}`,
	`{"session_id":"s","user_id":"u","type":"answer","message":"hi","citations":[{"n":"one","source":"a"}]}`,
	"{\"session_id\":\"s\",\"user_id\":\"u\",\"type\":\"query\",\"message\":\"h\xffi\"}",
	`{"session_id":"s","user_id":"u","type":"query","message":"\ud800"}`,
	"\xef\xbb\xbf" + `{"session_id":"s","user_id":"u","type":"query","message":"hi"}`,
	`{"session_id":"s","user_id":"u","type":"query","message":"` + strings.Repeat("a", 300<<10) + `"}`,
}

// TestDecodedRouteTakesPlainBodies: the single-pass path takes what clients
// send, and leaves the rest to huma.
func TestDecodedRouteTakesPlainBodies(t *testing.T) {
	tp := newTwoProducers(t)
	if tp.route == nil || tp.route.shape == nil {
		t.Fatal("POST /messages has no single-pass path: its schema holds something the decoder does not check")
	}
	decodes := func(body string) bool {
		d := new(bodyDecoder)
		d.buf.WriteString(body)
		var in MessageInput
		return tp.route.shape.decode(d, reflect.ValueOf(&in).Elem())
	}
	for _, body := range decodedBodies {
		if !decodes(body) {
			t.Errorf("left to huma: %.200s", body)
		}
	}
	for _, body := range humaBodies {
		if decodes(body) {
			t.Errorf("decoded: %.200s", body)
		}
	}
}

// TestDecodedRouteAnswersAsHuma: whichever path a request takes, the
// client gets the same answer, byte for byte, and the same message is
// published, for every body, content type, Accept and header.
func TestDecodedRouteAnswersAsHuma(t *testing.T) {
	tp := newTwoProducers(t)
	headers := []http.Header{
		jsonHeader,
		{},
		{"Content-Type": {"application/json; charset=utf-8"}},
		{"Content-Type": {"text/plain"}},
		{"Content-Type": {"application/json"}, "Accept": {"application/json"}},
		{"Content-Type": {"application/json"}, "Accept": {"text/html"}},
		{"Content-Type": {"application/json"}, "Accept": {"application/problem+json"}},
		{"Content-Type": {"application/json"}, "Kchat-Reply-Partition": {"3"}},
		{"Content-Type": {"application/json"}, "Kchat-Reply-Partition": {"x3"}},
		{"Content-Type": {"application/json"}, "Kchat-Reply-Partition": {"1234567890"}},
	}
	accepted := 0
	for _, body := range append(append([]string{}, decodedBodies...), humaBodies...) {
		for _, h := range headers {
			if tp.same(t, []byte(body), h) == http.StatusAccepted {
				accepted++
			}
		}
	}
	if accepted == 0 {
		t.Fatal("no request was accepted: the comparison proves nothing")
	}
}

// FuzzDecodedRoute looks for a body the two paths answer differently.
func FuzzDecodedRoute(f *testing.F) {
	for _, body := range append(append([]string{}, decodedBodies...), humaBodies[:len(humaBodies)-1]...) {
		f.Add([]byte(body), "application/json", "")
	}
	f.Add([]byte(decodedBodies[0]), "", "2")
	tp := newTwoProducers(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType, reply string) {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		if reply != "" {
			h.Set("Kchat-Reply-Partition", reply)
		}
		tp.same(t, body, h)
	})
}
