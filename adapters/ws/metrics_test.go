package ws

import (
	"testing"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsCountSocketsAndFramesByType(t *testing.T) {
	s := start(t, nil)
	m := s.h.metrics
	conn := s.dial("")
	sess := readType(t, conn, "session")
	eventually(t, "one open socket", func() bool { return testutil.ToFloat64(m.open) == 1 })

	for _, msg := range []string{`{"type":"ping"}`, `{"type":"query","id":"r1","message":"hi"}`, `{"type":"nope"}`, `not json`} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	readType(t, conn, "pong")
	readType(t, conn, "ack")
	readType(t, conn, "error")
	readType(t, conn, "error")

	received := []struct {
		give string
		want float64
	}{{"ping", 1}, {"query", 1}, {"unknown", 1}, {"invalid", 1}}
	for _, tt := range received {
		if got := testutil.ToFloat64(m.received.WithLabelValues(tt.give)); got != tt.want {
			t.Errorf("kchat_ws_frames_received_total{type=%q} = %v, want %v", tt.give, got, tt.want)
		}
	}
	sent := []struct {
		give string
		want float64
	}{{"session", 1}, {"pong", 1}, {"ack", 1}, {"error", 2}}
	for _, tt := range sent {
		give, want := tt.give, tt.want
		eventually(t, "kchat_ws_frames_sent_total{type="+give+"}", func() bool {
			return testutil.ToFloat64(m.sent.WithLabelValues(give)) == want
		})
	}

	if got := testutil.ToFloat64(m.Asked); got != 1 {
		t.Errorf("questions asked over WebSocket = %v, want 1", got)
	}
	s.answer(sess["session_id"].(string), "a1", "the answer")
	readType(t, conn, "answer")
	eventually(t, "kchat_ws_frames_sent_total{type=answer} and an answer delivered", func() bool {
		return testutil.ToFloat64(m.sent.WithLabelValues("answer")) == 1 && testutil.ToFloat64(m.Delivered) == 1
	})

	_ = conn.Close()
	s.released()
	if got := testutil.ToFloat64(m.open); got != 0 {
		t.Errorf("kchat_ws_connections_open = %v after the socket closed, want 0", got)
	}
}

func TestNewMetricsRegistersOncePerRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	if a.sent != b.sent || a.open != b.open {
		t.Fatal("a second NewMetrics on the same registry made other collectors")
	}
	a.open.Inc()
	if n, err := testutil.GatherAndCount(reg, "kchat_ws_connections_open"); err != nil || n != 1 {
		t.Fatalf("kchat_ws_connections_open series in the registry: %d, %v", n, err)
	}
}
