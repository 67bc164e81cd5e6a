package main

import (
	"strings"
	"testing"

	"github.com/kchat/kchat/cmd/internal/config/configtest"
)

// -h and --help list the variables ask reads, as the README's table does.
func TestHelpListsWhatItReads(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var out strings.Builder
		if err := run([]string{arg}, nil, &out); err != nil {
			t.Fatalf("run %s: %v", arg, err)
		}
		configtest.CheckHelp(t, "ask", out.String(), &Config{})
	}
}

// Flags are never sent to the chat as a question; after -- anything is.
func TestQuestion(t *testing.T) {
	tests := []struct {
		give     []string
		want     string
		wantHelp bool
		wantErr  string
	}{
		{give: []string{"How do I start kchat?"}, want: "How do I start kchat?"},
		{give: []string{"How", "do", "I", "start", "kchat?"}, want: "How do I start kchat?"},
		{give: []string{"-h"}, wantHelp: true},
		{give: []string{"--help"}, wantHelp: true},
		{give: []string{"--", "-h"}, want: "-h"},
		{give: []string{"--", "--help", "does", "what?"}, want: "--help does what?"},
		{give: []string{"-v", "hi"}, wantErr: "unknown flag -v"},
		{give: nil, wantErr: "usage"},
		{give: []string{"--"}, wantErr: "usage"},
		{give: []string{"  "}, wantErr: "usage"},
	}
	for _, tt := range tests {
		got, help, err := question(tt.give)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("question(%q) error = %v, want one containing %q", tt.give, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want || help != tt.wantHelp {
			t.Errorf("question(%q) = %q, %v, %v; want %q, %v", tt.give, got, help, err, tt.want, tt.wantHelp)
		}
	}
}

// The gateway's address and the token come from the environment, through
// config.Load like every binary's settings.
func TestConfig(t *testing.T) {
	var cfg Config
	if err := loadConfig(&cfg, []string{"KCHAT_ACCESS_TOKEN=t0k"}); err != nil {
		t.Fatal(err)
	}
	if cfg.GatewayWS != "ws://localhost:8002/ws" || cfg.AccessToken != "t0k" {
		t.Errorf("config = %+v", cfg)
	}
}
