package llm

import (
	"fmt"
	"net/url"
	"time"
)

// The generators KCHAT_GENERATOR chooses from.
const (
	// GeneratorExtractive quotes the best-matching passage sentences.
	GeneratorExtractive = "extractive"
	// GeneratorOpenAI asks an OpenAI-compatible chat-completions endpoint.
	GeneratorOpenAI = "openai"
	// GeneratorExternal means an outside service answers the prompts; kchat
	// runs no generate stage.
	GeneratorExternal = "external"
)

// Config chooses and configures the generator. The env tags name the
// KCHAT_* variables a binary loads it from.
type Config struct {
	// Generator is extractive, openai or external.
	Generator string `env:"KCHAT_GENERATOR" envDefault:"extractive"`
	// BaseURL is the OpenAI-compatible API root, e.g.
	// https://api.openai.com/v1 or http://localhost:11434/v1 (openai only).
	BaseURL string `env:"KCHAT_LLM_BASE_URL"`
	// Model is the chat model name (openai only).
	Model string `env:"KCHAT_LLM_MODEL"`
	// APIKey is sent as a bearer token; empty sends no Authorization header,
	// as local servers expect (openai only).
	APIKey string `env:"KCHAT_LLM_API_KEY"`
	// Timeout bounds one Generate call, the whole stream included; past it
	// the call fails with domain.ErrUnavailable (openai only).
	Timeout time.Duration `env:"KCHAT_LLM_TIMEOUT" envDefault:"60s"`
	// MaxTokens is each answer's token budget, sent as max_tokens; 0
	// sends none, leaving the server's own limit (openai only).
	MaxTokens int `env:"KCHAT_LLM_MAX_TOKENS" envDefault:"1024"`
	// Pace is the extractive generator's wait between the pieces it
	// streams, so an answer is seen being written; 0 sends them at once
	// (extractive only).
	Pace time.Duration `env:"KCHAT_EXTRACTIVE_PACE" envDefault:"0s"`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{Generator: GeneratorExtractive, Timeout: 60 * time.Second, MaxTokens: 1024}
}

// External reports whether an outside service answers the prompts, so the
// process must not run a generate stage.
func (c Config) External() bool { return c.Generator == GeneratorExternal }

// Validate reports the first setting that is wrong, naming its variable.
func (c Config) Validate() error {
	switch c.Generator {
	case GeneratorExtractive:
		if c.Pace < 0 || c.Pace > 10*time.Second {
			return fmt.Errorf("KCHAT_EXTRACTIVE_PACE must be between 0s and 10s, got %s", c.Pace)
		}
		return nil
	case GeneratorExternal:
		return nil
	case GeneratorOpenAI:
	default:
		return fmt.Errorf("KCHAT_GENERATOR must be extractive, openai or external, got %q", c.Generator)
	}
	if c.BaseURL == "" {
		return fmt.Errorf("KCHAT_LLM_BASE_URL is required with KCHAT_GENERATOR=openai: the API root, e.g. https://api.openai.com/v1")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("KCHAT_LLM_BASE_URL: %q is not an http(s) URL", c.BaseURL)
	}
	switch {
	case c.Model == "":
		return fmt.Errorf("KCHAT_LLM_MODEL is required with KCHAT_GENERATOR=openai")
	case c.Timeout < 100*time.Millisecond || c.Timeout > 30*time.Minute:
		return fmt.Errorf("KCHAT_LLM_TIMEOUT must be between 100ms and 30m, got %s", c.Timeout)
	case c.MaxTokens < 0 || c.MaxTokens > 1_000_000:
		return fmt.Errorf("KCHAT_LLM_MAX_TOKENS must be between 0 (no budget sent) and 1000000, got %d", c.MaxTokens)
	}
	return nil
}
