package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWarmAsksAgainUntilAnswered: a first question whose answer never
// comes is asked again, and warm says how often.
func TestWarmAsksAgainUntilAnswered(t *testing.T) {
	defer func(d time.Duration) { warmReask = d }(warmReask)
	warmReask = 50 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for n := 1; ; n++ {
			var q map[string]string
			if err := ws.ReadJSON(&q); err != nil {
				return
			}
			if n == 3 { // the first two are lost
				_ = ws.WriteJSON(map[string]string{"type": "answer", "reply_to": q["id"]})
			}
		}
	}))
	defer srv.Close()
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer ws.Close()
	reasked, err := (&chatConn{ws: ws}).warm(context.Background())
	if err != nil || reasked != 2 {
		t.Fatalf("warm: asked again %d times, %v; want 2, nil", reasked, err)
	}
}
