package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// The compatibility suite (issue 15; docs/migration.md, "The compatibility
// suite"): the request and response pairs of every route the old services
// and their input_api served, as the old contract describes them, replayed
// against the all-in-one. Each response must match the old one's status,
// field names and JSON types, and its values where the old contract fixes
// them; the only differences allowed are those docs/migration.md lists,
// each marked here where it applies (allowed: …).

func TestCompatibility(t *testing.T) {
	testCompatibility(t, kafkatest.Fake(t), "")
}

func TestIntegrationCompatibility(t *testing.T) {
	prefix := testenv.Prefix("it-compat")
	testCompatibility(t, kafkatest.Real(t, prefix), prefix)
}

// Placeholders in a wanted body: a value of that JSON type, any value.
const (
	aString       = "<string>"
	anInt         = "<int>"
	aStringOrNull = "<string|null>"
)

// record is the old consumer's RECORD, with value the old producer's five
// fields, or null for a record that is no message (allowed: kchat serves
// such a record flagged as poison; the old one served whatever was stored).
func record() map[string]any {
	return map[string]any{
		"topic": aString, "partition": anInt, "offset": anInt, "key": aStringOrNull, "timestamp": anInt,
		"value": poisonOr{map[string]any{"session_id": aString, "user_id": aString, "message_id": aString, "type": aString, "message": aString}},
	}
}

// poisonOr matches its object, or null in a record that names its poison.
type poisonOr struct{ object map[string]any }

// page is the old consumer's answer to GET /messages.
func page() map[string]any {
	return map[string]any{"status": "success", "count": anInt, "messages": []any{record()}}
}

// exchange is one request and the response the old services gave to it.
type exchange struct {
	svc, method, path, contentType, body string
	status                               int
	// want is the old body: its fields must be there with these values or
	// placeholders' types; more fields may be there (allowed: kchat's
	// responses may carry extra fields). Nil with a 4xx: the old body was
	// {"detail": …} and kchat's is problem+json (allowed).
	want any
}

// compat is the suite's client of one all-in-one.
type compat struct {
	t    *testing.T
	base map[string]string
	hc   *http.Client // with a cookie jar, as a browser: the gateway's identity (KCHAT_AUTH=none)
	// queued is the message id the last accepted POST /send_message answered.
	queued string
}

func testCompatibility(t *testing.T, brokers []string, prefix string) {
	app := startAllInOne(t, allInOneConfig(t, brokers, prefix, auth.ModeNone))
	jar, _ := cookiejar.New(nil)
	c := &compat{t: t, base: app.base, hc: &http.Client{Jar: jar}}

	// Both services answer their health check healthy once Kafka answers.
	for _, svc := range []string{"producer", "consumer"} {
		for i := 0; ; i++ {
			_, _, body := c.do(svc, http.MethodGet, "/health", "", "")
			if strings.Contains(string(body), `"status":"healthy"`) {
				break
			}
			if i == 300 {
				t.Fatalf("%s GET /health: %s after 30 s", svc, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The producer (old port 8000).
	sent := map[string]bool{} // message ids of the questions in the query topic
	c.replay(
		exchange{svc: "producer", method: "GET", path: "/", status: 200, want: map[string]any{"message": "Producer service is running"}},
		exchange{svc: "producer", method: "GET", path: "/health", status: 200, want: map[string]any{"status": "healthy"}},
		// allowed: the message_id answered is the request's (the old one
		// answered a random number).
		exchange{svc: "producer", method: "POST", path: "/send_message", contentType: "application/json", status: 200,
			body: `{"session_id":"old-s1","user_id":"old-u","message_id":"compat-1","type":"query","message":"How do I start kchat?"}`,
			want: map[string]any{"status": "queued", "message_id": "compat-1"}},
		// Extra fields are ignored.
		exchange{svc: "producer", method: "POST", path: "/send_message", contentType: "application/json", status: 200,
			body: `{"session_id":"old-s1","user_id":"old-u","message_id":"compat-2","type":"query","message":"And then?","extra":1}`,
			want: map[string]any{"status": "queued", "message_id": "compat-2"}},
		// Empty strings are accepted.
		exchange{svc: "producer", method: "POST", path: "/send_message", contentType: "application/json", status: 200,
			body: `{"session_id":"","user_id":"","message_id":"","type":"query","message":"Empty ids"}`,
			want: map[string]any{"status": "queued", "message_id": aString}},
		exchange{svc: "producer", method: "POST", path: "/send_message", contentType: "application/json", status: 422,
			body: `{"session_id":"s","user_id":"u","message_id":"m","type":"query"}`},
		exchange{svc: "producer", method: "POST", path: "/send_message", contentType: "application/json", status: 422,
			body: `{"session_id":5,"user_id":"u","message_id":"m","type":"query","message":"x"}`},
		// allowed: malformed JSON is 400, not 422.
		exchange{svc: "producer", method: "POST", path: "/send_message", contentType: "application/json", status: 400, body: `{"session_id":`},
		// allowed: an unknown topic is 422 (the old one used it as a topic name).
		exchange{svc: "producer", method: "POST", path: "/send_message", contentType: "application/json", status: 422,
			body: `{"session_id":"s","user_id":"u","message_id":"m","type":"nope","message":"x"}`},
	)
	sent["compat-1"], sent["compat-2"] = true, true
	sent[c.queued] = true

	// Records the old producer wrote: key = message_id, the five fields, no
	// headers, no compression; one with an empty message, which is poison.
	c.produceOld(brokers, prefix+"query",
		`{"session_id":"old-s2","user_id":"old-u","message_id":"old-1","type":"query","message":"what the fuck is kchat"}`,
		`{"session_id":"old-s2","user_id":"","message_id":"old-2","type":"query","message":"and the old format?"}`,
		`{"session_id":"old-s2","user_id":"old-u","message_id":"old-3","type":"query","message":""}`)
	sent["old-1"], sent["old-2"] = true, true

	// The consumer (old port 8001).
	c.replay(
		exchange{svc: "consumer", method: "GET", path: "/", status: 200, want: map[string]any{"message": "Consumer service is running"}},
		exchange{svc: "consumer", method: "GET", path: "/health", status: 200, want: map[string]any{"status": "healthy", "kafka_connected": true, "message_count": anInt}},
		// Browsing: from the beginning, 10 at most by default, nothing consumed.
		exchange{svc: "consumer", method: "GET", path: "/messages?topic=query", status: 200, want: page()},
		exchange{svc: "consumer", method: "GET", path: "/messages?topic=query&latest=false&limit=2", status: 200, want: page()},
		exchange{svc: "consumer", method: "GET", path: "/messages", status: 422},
		exchange{svc: "consumer", method: "GET", path: "/messages?topic=query&limit=ten", status: 422},
		exchange{svc: "consumer", method: "GET", path: "/messages?topic=query&latest=maybe", status: 422},
		// allowed: an unknown topic is 422 (the old one answered 200, count 0).
		exchange{svc: "consumer", method: "GET", path: "/messages?topic=nope", status: 422},
	)
	if got := c.page("consumer", "/messages?topic=query&limit=2"); len(got) != 2 {
		t.Errorf("browse with limit=2: %d messages", len(got))
	}

	// latest=true takes the next unconsumed message: one, whatever limit
	// says, each once, in every spelling of true the old one took; the
	// old records among them, upgraded and masked; the poison one flagged.
	served := map[string]bool{}
	for i, latest := range []string{"true", "1", "yes", "on", "True", "YES"} {
		msgs := c.page("consumer", "/messages?topic=query&latest="+latest+"&limit=10&wait=5s")
		if len(msgs) != 1 {
			t.Fatalf("latest=%s (call %d): %d messages, want exactly one", latest, i+1, len(msgs))
		}
		m := msgs[0]
		if m["poison"] != nil {
			if m["value"] != nil || !strings.Contains(fmt.Sprint(m["poison"]), "message") {
				t.Errorf("the old record with an empty message: %v, want poison naming the message", m)
			}
			served["poison"] = true
			continue
		}
		v := m["value"].(map[string]any)
		id := fmt.Sprint(v["message_id"])
		if served[id] {
			t.Errorf("latest=%s served %s again", latest, id)
		}
		served[id] = true
		switch id {
		case "old-1":
			if v["message"] != "what the **** is kchat" || m["censored"] != true || m["key"] != "old-1" {
				t.Errorf("the old record old-1 served as %v, want its message masked and its key", m)
			}
		case "old-2":
			if v["user_id"] != "anonymous" || v["session_id"] != "old-s2" {
				t.Errorf("the old record old-2 served as %v, want user anonymous (it named none)", v)
			}
		}
	}
	for id := range sent {
		if !served[id] {
			t.Errorf("question %s was never served by latest=true (served %v)", id, served)
		}
	}
	if !served["poison"] {
		t.Error("the old record with an empty message was not served (as poison)")
	}
	if got := c.page("consumer", "/messages?topic=query&latest=1&wait=0s"); len(got) != 0 {
		t.Errorf("latest=true with everything consumed: %d messages, want none", len(got))
	}
	for _, no := range []string{"false", "0", "no", "off", "False", "OFF"} {
		if got := c.page("consumer", "/messages?topic=query&latest="+no); len(got) != 6 {
			t.Errorf("latest=%s: %d messages, want the topic's 6 from the beginning (a browse)", no, len(got))
		}
	}

	// The answerer reads the old records as questions too: each is answered.
	answered := map[string]bool{}
	for range 40 {
		if answered["old-1"] && answered["old-2"] {
			break
		}
		for _, m := range c.page("consumer", "/messages?topic=answer&latest=true&wait=5s") {
			if v, _ := m["value"].(map[string]any); v != nil {
				answered[fmt.Sprint(v["reply_to"])] = true
			}
		}
	}
	if !answered["old-1"] || !answered["old-2"] {
		t.Errorf("answers seen to %v, want old-1 and old-2 among them", answered)
	}

	// kchat's own form reads the old records too, in kchat's shape.
	c.produceOld(brokers, prefix+"query", `{"session_id":"old-s3","user_id":"old-u","message_id":"old-4","type":"query","message":"fuck, the new form?"}`)
	if msgs := c.page("consumer", "/messages?type=query&wait=5s"); len(msgs) != 1 {
		t.Errorf("type=query after an old record: %d messages", len(msgs))
	} else if v, _ := msgs[0]["value"].(map[string]any); v == nil || v["message_id"] != "old-4" || v["message"] != "****, the new form?" || v["v"] != 1.0 {
		t.Errorf("type=query served the old record as %v, want it upgraded to the envelope and masked", msgs[0])
	}

	// input_api (old port 8002): the gateway.
	form := neturl.Values{"session_id": {"old-s9"}, "user_id": {"old-u"}, "message_id": {"compat-9"}, "type": {"query"}, "message": {"How do I start kchat?"}}
	c.replay(
		exchange{svc: "gateway", method: "POST", path: "/send", contentType: "application/x-www-form-urlencoded", body: form.Encode(), status: 200,
			want: map[string]any{"status": "Message forwarded", "producer_response": map[string]any{"status": "queued", "message_id": "compat-9"}}},
		exchange{svc: "gateway", method: "POST", path: "/send", contentType: "application/x-www-form-urlencoded", body: "session_id=old-s9&type=query", status: 422},
		exchange{svc: "gateway", method: "GET", path: "/messages?type=query&limit=10&latest=false", status: 200, want: page()},
		// allowed: an unknown type is 422 (the old one answered 200 {"error": …}).
		exchange{svc: "gateway", method: "GET", path: "/messages?type=nope&limit=10&latest=false", status: 422},
	)
	if got := c.page("gateway", "/messages?type=query&limit=10&latest=false"); len(got) != 8 {
		t.Errorf("input_api's browse: %d messages, want the topic's 8", len(got))
	}
	if got := c.page("gateway", "/messages?type=query&limit=10&latest=true"); len(got) != 1 || got[0]["value"].(map[string]any)["message_id"] != "compat-9" {
		t.Errorf("input_api's latest=true: %v, want exactly the question just sent", got)
	}
}

// replay sends each exchange and checks its response.
func (c *compat) replay(xs ...exchange) {
	c.t.Helper()
	for _, x := range xs {
		name := fmt.Sprintf("%s %s %s", x.svc, x.method, x.path)
		status, ctype, body := c.do(x.svc, x.method, x.path, x.contentType, x.body)
		if status != x.status {
			c.t.Errorf("%s: status %d, want %d: %s", name, status, x.status, body)
			continue
		}
		if status >= 400 {
			if !strings.HasPrefix(ctype, "application/problem+json") {
				c.t.Errorf("%s: %d as %s, want problem+json: %s", name, status, ctype, body)
			}
			continue
		}
		if !strings.HasPrefix(ctype, "application/json") {
			c.t.Errorf("%s: content type %q, want application/json", name, ctype)
		}
		var got any
		if err := json.Unmarshal(body, &got); err != nil {
			c.t.Errorf("%s: %v: %s", name, err, body)
			continue
		}
		c.match(name, x.want, got)
		if x.path == "/send_message" {
			c.queued = fmt.Sprint(got.(map[string]any)["message_id"])
		}
	}
}

func (c *compat) do(svc, method, path, contentType, body string) (int, string, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base[svc]+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s%s: %v", method, svc, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), raw
}

// page gets a GET /messages page and returns its messages; in the old
// form (the consumer's topic=, the gateway's) it must be the old shape.
func (c *compat) page(svc, path string) []map[string]any {
	c.t.Helper()
	status, _, body := c.do(svc, http.MethodGet, path, "", "")
	var p struct {
		Status   string           `json:"status"`
		Count    int              `json:"count"`
		Messages []map[string]any `json:"messages"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &p) != nil || p.Status != "success" || p.Count != len(p.Messages) {
		c.t.Fatalf("%s %s: %d %s", svc, path, status, body)
	}
	for _, m := range p.Messages {
		if strings.Contains(path, "type=") && svc == "consumer" {
			break // kchat's own form, in kchat's shape
		}
		c.match(svc+" "+path, record(), m)
		if poison, _ := m["poison"].(string); m["value"] == nil && poison == "" {
			c.t.Errorf("%s %s: a record with a null value and no poison: %v", svc, path, m)
		}
	}
	return p.Messages
}

// match reports where got differs from want: a placeholder matches any
// value of its type, an object matches when every wanted field does, an
// array when each element matches the wanted one's only element.
func (c *compat) match(where string, want, got any) {
	c.t.Helper()
	for _, d := range differences("", want, got) {
		c.t.Errorf("%s: %s", where, d)
	}
}

func differences(path string, want, got any) []string {
	switch w := want.(type) {
	case poisonOr:
		if got == nil {
			return nil // page checks that the record names its poison
		}
		return differences(path, w.object, got)
	case string:
		switch w {
		case aString:
			if _, ok := got.(string); ok {
				return nil
			}
		case anInt:
			if f, ok := got.(float64); ok && f == math.Trunc(f) {
				return nil
			}
		case aStringOrNull:
			if _, ok := got.(string); ok || got == nil {
				return nil
			}
		default:
			if got == w {
				return nil
			}
		}
		return []string{fmt.Sprintf("%s is %#v, want %s", path, got, w)}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s is %#v, want an object", path, got)}
		}
		var out []string
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range w {
				if !yield(k) {
					return
				}
			}
		}) {
			v, present := g[k]
			if !present {
				out = append(out, fmt.Sprintf("%s.%s is missing", path, k))
				continue
			}
			out = append(out, differences(path+"."+k, w[k], v)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s is %#v, want an array", path, got)}
		}
		var out []string
		for i, e := range g {
			out = append(out, differences(fmt.Sprintf("%s[%d]", path, i), w[0], e)...)
		}
		return out
	default:
		if got != want {
			return []string{fmt.Sprintf("%s is %#v, want %#v", path, got, want)}
		}
		return nil
	}
}

// produceOld writes values to topic as the old producer did: key =
// message_id, no headers, no compression.
func (c *compat) produceOld(brokers []string, topic string, values ...string) {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range values {
		var f struct {
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal([]byte(v), &f); err != nil {
			c.t.Fatal(err)
		}
		if err := cl.ProduceSync(c.t.Context(), &kgo.Record{Topic: topic, Key: []byte(f.MessageID), Value: []byte(v)}).FirstErr(); err != nil {
			c.t.Fatal(err)
		}
	}
}
