package llm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/llm"
)

func TestConfigValidate(t *testing.T) {
	openai := func(edit func(*llm.Config)) llm.Config {
		c := llm.DefaultConfig()
		c.Generator, c.BaseURL, c.Model = "openai", "http://localhost:11434/v1", "llama3"
		edit(&c)
		return c
	}
	tests := []struct {
		name string
		give llm.Config
		want string // "" for valid, else the variable the error must name
	}{
		{"default", llm.DefaultConfig(), ""},
		{"external", llm.Config{Generator: "external"}, ""},
		{"openai", openai(func(*llm.Config) {}), ""},
		{"unknown generator", llm.Config{Generator: "gpt"}, "KCHAT_GENERATOR"},
		{"openai without url", openai(func(c *llm.Config) { c.BaseURL = "" }), "KCHAT_LLM_BASE_URL"},
		{"openai with bad url", openai(func(c *llm.Config) { c.BaseURL = "localhost:8080" }), "KCHAT_LLM_BASE_URL"},
		{"openai with ftp url", openai(func(c *llm.Config) { c.BaseURL = "ftp://x/v1" }), "KCHAT_LLM_BASE_URL"},
		{"openai without model", openai(func(c *llm.Config) { c.Model = "" }), "KCHAT_LLM_MODEL"},
		{"openai with zero timeout", openai(func(c *llm.Config) { c.Timeout = 0 }), "KCHAT_LLM_TIMEOUT"},
		{"openai without a token budget", openai(func(c *llm.Config) { c.MaxTokens = 0 }), ""},
		{"openai with a negative token budget", openai(func(c *llm.Config) { c.MaxTokens = -1 }), "KCHAT_LLM_MAX_TOKENS"},
		{"extractive paced", llm.Config{Generator: "extractive", Pace: 40 * time.Millisecond}, ""},
		{"extractive with a negative pace", llm.Config{Generator: "extractive", Pace: -time.Millisecond}, "KCHAT_EXTRACTIVE_PACE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := llm.DefaultConfig()
	if c.Generator != "extractive" || c.Timeout != 60*time.Second || c.External() {
		t.Fatalf("got %+v", c)
	}
}

func TestNew(t *testing.T) {
	g, err := llm.New(llm.DefaultConfig())
	if _, ok := g.(*llm.Extractive); !ok || err != nil {
		t.Errorf("default: got %T, %v, want *llm.Extractive", g, err)
	}
	g, err = llm.New(llm.Config{Generator: "openai", BaseURL: "https://api.example/v1", Model: "m", Timeout: time.Second})
	if _, ok := g.(*llm.OpenAI); !ok || err != nil {
		t.Errorf("openai: got %T, %v, want *llm.OpenAI", g, err)
	}
	g, err = llm.New(llm.Config{Generator: "external"})
	if g != nil || err != nil {
		t.Errorf("external: got %v, %v, want nil, nil", g, err)
	}
	if _, err = llm.New(llm.Config{Generator: "openai"}); err == nil || !strings.Contains(err.Error(), "KCHAT_LLM_BASE_URL") {
		t.Errorf("invalid: got %v, want an error naming KCHAT_LLM_BASE_URL", err)
	}
}
