package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

var _ ports.Generator = (*OpenAI)(nil)

// OpenAI streams answers from an OpenAI-compatible chat-completions
// endpoint (OpenAI, vLLM, Ollama, llama.cpp, ...). Safe for concurrent use.
type OpenAI struct {
	chat    openai.ChatCompletionService
	model   string
	timeout time.Duration
}

// NewOpenAI returns a generator for cfg's endpoint and model. It reads no
// OPENAI_* variables: openai.NewClient would take the base URL, key,
// organisation and extra headers from them, so the chat service is built
// from cfg alone.
func NewOpenAI(cfg Config) (*OpenAI, error) {
	cfg.Generator = GeneratorOpenAI
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	chat := openai.NewChatCompletionService(
		option.WithHTTPClient(&http.Client{}),
		option.WithBaseURL(cfg.BaseURL),
		// An empty key sends no Authorization header.
		option.WithAPIKey(cfg.APIKey),
		// The stage runner retries; retrying here too would multiply the
		// attempts and outlast its deadlines.
		option.WithMaxRetries(0),
	)
	return &OpenAI{chat: chat, model: cfg.Model, timeout: cfg.Timeout}, nil
}

// Generate streams the model's answer, calling onChunk with each non-empty
// delta. When the stream breaks after some chunks were passed on, it returns
// the error; the caller discards the partial answer.
func (g *OpenAI) Generate(ctx context.Context, prompt domain.Prompt, onChunk func(string)) (string, error) {
	callCtx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()

	msgs := renderMessages(prompt)
	params := openai.ChatCompletionNewParams{
		Model:    g.model,
		Messages: make([]openai.ChatCompletionMessageParamUnion, 0, len(msgs)),
	}
	for _, m := range msgs {
		switch m.Role {
		case "system":
			params.Messages = append(params.Messages, openai.SystemMessage(m.Content))
		case "assistant":
			params.Messages = append(params.Messages, openai.AssistantMessage(m.Content))
		default:
			params.Messages = append(params.Messages, openai.UserMessage(m.Content))
		}
	}

	stream := g.chat.NewStreaming(callCtx, params)
	defer func() { _ = stream.Close() }()
	var answer strings.Builder
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			if c.Index != 0 || c.Delta.Content == "" {
				continue
			}
			answer.WriteString(c.Delta.Content)
			if onChunk != nil {
				onChunk(c.Delta.Content)
			}
		}
	}
	if err := stream.Err(); err != nil {
		return "", g.mapError(ctx, err)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if callCtx.Err() != nil {
		return "", fmt.Errorf("openai chat %s: no answer within %s: %w", g.model, g.timeout, domain.ErrUnavailable)
	}
	if strings.TrimSpace(answer.String()) == "" {
		return "", fmt.Errorf("openai chat %s: empty answer: %w", g.model, domain.ErrUnavailable)
	}
	return answer.String(), nil
}

// mapError translates an SDK error: the caller's ctx ending stays a ctx
// error; the server refusing the request as such (4xx but 408 and 429) is
// permanent; anything else (network, 5xx, 429, our timeout, a broken
// stream) is domain.ErrUnavailable, which the stage runner retries.
func (g *OpenAI) mapError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		code := apiErr.StatusCode
		if code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
			return fmt.Errorf("openai chat %s: status %d: %s", g.model, code, apiErr.Message)
		}
		return fmt.Errorf("openai chat %s: status %d: %w", g.model, code, domain.ErrUnavailable)
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) {
		// Not a chat-completions endpoint; retrying will not change that.
		return fmt.Errorf("openai chat %s: unreadable stream: %w", g.model, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("openai chat %s: no answer within %s: %w", g.model, g.timeout, domain.ErrUnavailable)
	}
	return fmt.Errorf("openai chat %s: %w: %w", g.model, domain.ErrUnavailable, err)
}
