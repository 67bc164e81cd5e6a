// Command ask is a command-line chat client: it asks kchat's gateway one
// question over the WebSocket protocol and prints the answer with its
// sources.
//
//	go run ./cmd/ask "How do I start kchat?"
//
// KCHAT_GATEWAY_WS says where the gateway is; KCHAT_ACCESS_TOKEN is sent as
// a bearer token when set (Config).
package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/cmd/internal/config"
)

// Config is everything ask reads from the environment.
type Config struct {
	// GatewayWS is the gateway's WebSocket URL.
	GatewayWS string `env:"KCHAT_GATEWAY_WS" envDefault:"ws://localhost:8002/ws"`
	// AccessToken is sent as a bearer token (KCHAT_AUTH=token); empty: none.
	AccessToken string `env:"KCHAT_ACCESS_TOKEN"`
}

const about = `ask asks kchat's gateway one question over the WebSocket protocol and prints the
answer with its sources:
  ask "How do I start kchat?"
  ask -- "-v: what does it do?"   (after --, words starting with - are the question's)
`

func main() {
	if err := run(os.Args[1:], os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ask:", err)
		os.Exit(1)
	}
}

// question reads args: an optional flag first (-h/--help, or -- which
// makes the rest the question even when it starts with -), then the words
// of the question. help is true when asked for it.
func question(args []string) (q string, help bool, err error) {
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "--":
			args = args[1:]
		case a == "-h" || a == "-help" || a == "--help":
			return "", true, nil
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return "", false, fmt.Errorf("unknown flag %s (put -- before a question that starts with -)", a)
		}
	}
	q = strings.TrimSpace(strings.Join(args, " "))
	if q == "" {
		return "", false, errors.New(`usage: ask "your question" (ask --help lists its variables)`)
	}
	return q, false, nil
}

func run(args, environ []string, out io.Writer) error {
	q, help, err := question(args)
	if help {
		vars, err := config.Vars(nil, &Config{})
		if err != nil {
			return err
		}
		return config.Help(out, about, vars)
	}
	if err != nil {
		return err
	}
	var cfg Config
	if err := loadConfig(&cfg, environ); err != nil {
		return err
	}
	return ask(out, cfg, q)
}

func loadConfig(cfg *Config, environ []string) error {
	return config.Load(cfg, environ, func() error {
		if !strings.HasPrefix(cfg.GatewayWS, "ws://") && !strings.HasPrefix(cfg.GatewayWS, "wss://") {
			return fmt.Errorf("KCHAT_GATEWAY_WS must be a ws:// or wss:// URL, got %q", cfg.GatewayWS)
		}
		return nil
	})
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

// ask sends q and prints the answer to it.
func ask(out io.Writer, cfg Config, q string) error {
	header := http.Header{}
	if cfg.AccessToken != "" {
		header.Set("Authorization", "Bearer "+cfg.AccessToken)
	}
	url := cfg.GatewayWS
	conn, resp, err := websocket.DefaultDialer.Dial(url, header)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	if err := conn.WriteJSON(frame{Type: "query", ID: "ask", Message: q}); err != nil {
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
			fmt.Fprintln(out, f.Message)
			for _, c := range f.Citations {
				fmt.Fprintf(out, "  [%d] %s › %s\n", c.N, c.Source, c.Title)
			}
			return nil
		}
	}
}
