package main

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/cmd/internal/wire"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/spanchain"
	"github.com/kchat/kchat/internal/testenv"
)

// Issue 18, point 1: one question over WebSocket in the all-in-one binary
// is one trace, its spans parent-linked from the socket's receive to the
// socket's write (docs/design.md, "Tracing"), with the query published by
// the gateway itself or through the producer service.
func TestOneTracePerQuestion(t *testing.T) {
	for _, publisher := range []string{wire.PublishToKafka, wire.PublishToProducer} {
		t.Run(publisher, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp, err := tracing.WithExporter("kchat", exp)
			if err != nil {
				t.Fatal(err)
			}
			cfg := allInOneConfig(t, kafkatest.Fake(t), testenv.Prefix("kfake"), auth.ModeNone)
			cfg.Gateway.QueryPublisher = publisher
			app := startAllInOneWith(t, cfg, fx.Decorate(func(*tracing.Provider) *tracing.Provider { return tp }))
			waitReady(t, app.base["gateway"]+"/readyz")
			askOverWebSocket(t, app.base["gateway"], "How do I start kchat?")

			// The socket write ends after the frame is out: wait for it.
			var spans []spanchain.Span
			deadline := time.Now().Add(5 * time.Second)
			for {
				spans = spans[:0]
				for _, s := range exp.GetSpans() {
					spans = append(spans, spanchain.Span{
						TraceID: s.SpanContext.TraceID().String(), SpanID: s.SpanContext.SpanID().String(),
						ParentID: parentID(s), Name: s.Name, Service: "kchat",
					})
				}
				err = spanchain.Check(spans, spanchain.Question("kchat", "kchat"))
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := spanchain.Check(spans, spanchain.GeneratorCall("kchat")); err != nil {
				t.Fatal(err)
			}
			if publisher == wire.PublishToProducer {
				// The producer's HTTP span sits between the socket's
				// receive and the publish.
				err := spanchain.Check(spans, []spanchain.Step{{Suffix: "ws receive query"}, {Suffix: "POST /messages"}, {Suffix: "query publish"}})
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func parentID(s tracetest.SpanStub) string {
	if !s.Parent.IsValid() {
		return ""
	}
	return s.Parent.SpanID().String()
}

// askOverWebSocket asks one question on a new socket and waits for its
// answer frame.
func askOverWebSocket(t *testing.T, gateway, question string) {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(gateway, "http")+"/ws", nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.WriteJSON(map[string]string{"type": "query", "id": "q1", "message": question}); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var f map[string]any
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for the answer: %v", err)
		}
		if f["type"] == "answer" {
			return
		}
	}
}
