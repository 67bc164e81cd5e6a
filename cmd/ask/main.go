// Command ask is a command-line chat client: it asks kchat's gateway one
// question over the WebSocket protocol and prints the answer with its
// sources.
//
//	go run ./cmd/ask "How do I start kchat?"
//
// KCHAT_GATEWAY_WS (default ws://localhost:8002/ws) says where the gateway
// is; KCHAT_ACCESS_TOKEN is sent as a bearer token when set.
package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/adapters/wire"
)

func main() {
	if err := run(os.Args[1:], os.Getenv("KCHAT_GATEWAY_WS"), os.Getenv("KCHAT_ACCESS_TOKEN")); err != nil {
		fmt.Fprintln(os.Stderr, "ask:", err)
		os.Exit(1)
	}
}

type frame struct {
	Type      string          `json:"type"`
	ID        string          `json:"id,omitempty"`
	Message   string          `json:"message,omitempty"`
	MessageID string          `json:"message_id,omitempty"`
	ReplyTo   string          `json:"reply_to,omitempty"`
	Code      string          `json:"code,omitempty"`
	Citations []wire.Citation `json:"citations,omitempty"`
}

func run(args []string, url, token string) error {
	if len(args) == 0 {
		return errors.New(`usage: ask "your question"`)
	}
	if url == "" {
		url = "ws://localhost:8002/ws"
	}
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(url, header)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	if err := conn.WriteJSON(frame{Type: "query", ID: "ask", Message: strings.Join(args, " ")}); err != nil {
		return err
	}
	var asked string
	for {
		var f frame
		if err := conn.ReadJSON(&f); err != nil {
			return fmt.Errorf("waiting for the answer: %w", err)
		}
		switch f.Type {
		case "ack":
			asked = f.MessageID
		case "error":
			return fmt.Errorf("%s: %s", f.Code, f.Message)
		case "answer":
			if asked != "" && f.ReplyTo != asked {
				continue
			}
			fmt.Println(f.Message)
			for _, c := range f.Citations {
				fmt.Printf("  [%d] %s › %s\n", c.N, c.Source, c.Title)
			}
			return nil
		}
	}
}
