package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/spanchain"
	"github.com/kchat/kchat/internal/testenv"
)

// TestIntegrationTraceInJaeger (issue 18): with tracing on in the
// separate-process deployment, one question over WebSocket is one trace in
// the Jaeger of make services-up, holding the gateway's, the producer's
// (the gateway publishes through it) and the answerer's spans,
// parent-linked from the socket's receive to the socket's write; and the
// same without the producer, for a gateway that publishes to Kafka itself.
func TestIntegrationTraceInJaeger(t *testing.T) {
	jaeger, otlp := testenv.Jaeger(t)
	tracing := []string{
		"KCHAT_TRACING=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp,
		// Export within 100 ms rather than the SDK's 5 s.
		"OTEL_BSP_SCHEDULE_DELAY=100",
	}
	d := deploy(t, "it-trace", 1, tracing...)
	viaKafka := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/gateway"), "KCHAT_GATEWAY_ADDR",
		append(d.gatewayEnv(), "KCHAT_QUERY_PUBLISHER=kafka")...)

	for _, c := range []struct {
		name     string
		gw       *proctest.Proc
		producer bool
	}{{"through the producer", d.gateways[0], true}, {"to Kafka", viaKafka, false}} {
		t.Run(c.name, func(t *testing.T) {
			session := askOne(t, c.gw)
			spans := findTrace(t, jaeger, session)
			if err := spanchain.Check(spans, spanchain.Question("gateway", "answerer")); err != nil {
				t.Fatal(err)
			}
			if err := spanchain.Check(spans, spanchain.GeneratorCall("answerer")); err != nil {
				t.Fatal(err)
			}
			viaProducer := spanchain.Check(spans, []spanchain.Step{
				{Suffix: "ws receive query", Service: "gateway"}, {Suffix: "POST /messages", Service: "producer"},
				{Suffix: "query publish", Service: "producer"}, {Suffix: "retrieve", Service: "answerer"},
			})
			if c.producer && viaProducer != nil {
				t.Fatal(viaProducer)
			}
			if !c.producer {
				if err := spanchain.Check(spans, []spanchain.Step{{Suffix: "ws receive query", Service: "gateway"}, {Suffix: "query publish", Service: "gateway"}}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// askOne asks one question on a new socket of gw, waits for its answer,
// and returns the session's id.
func askOne(t *testing.T, gw *proctest.Proc) string {
	t.Helper()
	conn, status, err := newVisitor(t, 300).dial(hostOf(gw))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	session := ""
	for session == "" {
		var f frame
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatal(err)
		}
		if f["type"] == "session" {
			session, _ = f["session_id"].(string)
		}
	}
	if err := conn.WriteJSON(frame{"type": "query", "id": "q", "message": "How do I start kchat?"}); err != nil {
		t.Fatal(err)
	}
	for {
		var f frame
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for the answer: %v", err)
		}
		if f["type"] == "answer" {
			return session
		}
	}
}

// findTrace finds, in Jaeger's query API, the trace of the question
// asked in session (its root span carries kchat.session_id) once it holds
// the socket's write, and returns its spans.
func findTrace(t *testing.T, jaeger, session string) []spanchain.Span {
	t.Helper()
	q := url.Values{
		"service": {"gateway"}, "operation": {"ws receive query"}, "lookback": {"1h"}, "limit": {"5"},
		"tags": {fmt.Sprintf(`{"kchat.session_id":%q}`, session)},
	}
	var last []spanchain.Span
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var res jaegerTraces
		if err := getJSON(jaeger+"/api/traces?"+q.Encode(), &res); err != nil {
			t.Logf("jaeger: %v", err)
		}
		if len(res.Data) == 1 {
			last = res.Data[0].spans()
			if spanchain.Check(last, spanchain.Question("gateway", "answerer")) == nil {
				return last
			}
		} else if len(res.Data) > 1 {
			t.Fatalf("%d traces of session %s, want 1", len(res.Data), session)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if last == nil {
		t.Fatalf("no trace of session %s in Jaeger (%s) after 30 s", session, jaeger)
	}
	return last
}

// jaegerTraces is the part of Jaeger's /api/traces answer the test reads.
type jaegerTraces struct {
	Data []jaegerTrace `json:"data"`
}

type jaegerTrace struct {
	Spans []struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

// spans are the trace's spans, each with its CHILD_OF parent and the
// service of its process.
func (tr jaegerTrace) spans() []spanchain.Span {
	out := make([]spanchain.Span, 0, len(tr.Spans))
	for _, s := range tr.Spans {
		sp := spanchain.Span{TraceID: s.TraceID, SpanID: s.SpanID, Name: s.OperationName, Service: tr.Processes[s.ProcessID].ServiceName}
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				sp.ParentID = r.SpanID
			}
		}
		out = append(out, sp)
	}
	return out
}

func getJSON(u string, v any) error {
	res, err := http.Get(u) //nolint:gosec // the test's own Jaeger on loopback
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}
