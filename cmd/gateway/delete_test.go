package main

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// Deleting a session closes its open sockets on the gateway: they must not
// stay bound to an id someone else may claim next.
func TestDeleteClosesTheSessionsSockets(t *testing.T) {
	addr := startVisitorsChat(t, kafkatest.Fake(t), testenv.Prefix("kfake"), "")
	v := newVisitor(t, 7)
	conn, status, err := v.dial(addr)
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	defer conn.Close()
	session := read(t, conn, "session")["session_id"].(string)
	_ = conn.WriteJSON(frame{"type": "query", "id": "q", "message": "How do I start kchat?"})
	read(t, conn, "answer") // the session is stored now

	req, _ := http.NewRequest(http.MethodDelete, "http://"+addr+"/sessions/"+session, nil)
	client := &http.Client{Jar: v.dialer.Jar, Transport: &http.Transport{DialContext: v.dialer.NetDialContext}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d, want 204", resp.StatusCode)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != websocket.CloseNormalClosure || ce.Text != "session deleted" {
				t.Fatalf("closed with %d %q, want 1000 session deleted", ce.Code, ce.Text)
			}
			return
		}
		if err != nil {
			t.Fatalf("the socket ended without a close frame: %v", err)
		}
	}
}
