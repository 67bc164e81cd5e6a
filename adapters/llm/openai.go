package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

var _ ports.Generator = (*OpenAI)(nil)

// OpenAI streams answers from an OpenAI-compatible chat-completions
// endpoint (OpenAI, vLLM, Ollama, llama.cpp, ...) through go-openai, a
// small client: openai-go, used before, took about half of kchat's first
// build (README, "Two commands"). Safe for concurrent use.
type OpenAI struct {
	client    *openai.Client
	model     string
	timeout   time.Duration
	maxTokens int
}

// NewOpenAI returns a generator for cfg's endpoint and model. The client
// is built from cfg alone (go-openai reads no OPENAI_* variables); it does
// not retry: the stage runner does, and retrying here too would multiply
// the attempts and outlast its deadlines.
func NewOpenAI(cfg Config) (*OpenAI, error) {
	cfg.Generator = GeneratorOpenAI
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// An empty key sends no Authorization header.
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	oc.HTTPClient = &http.Client{}
	return &OpenAI{client: openai.NewClientWithConfig(oc), model: cfg.Model, timeout: cfg.Timeout, maxTokens: cfg.MaxTokens}, nil
}

// Generate streams the model's answer, calling onChunk with each non-empty
// delta. When the stream breaks after some chunks were passed on, it returns
// the error; the caller discards the partial answer.
func (g *OpenAI) Generate(ctx context.Context, prompt domain.Prompt, onChunk func(string)) (string, error) {
	callCtx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()

	msgs := renderMessages(prompt)
	// An answer cut by the budget ends where it was cut, as streamed.
	req := openai.ChatCompletionRequest{
		Model: g.model, Stream: true, Messages: make([]openai.ChatCompletionMessage, 0, len(msgs)),
		MaxTokens: g.maxTokens, //nolint:staticcheck // max_tokens, not max_completion_tokens: the one every OpenAI-compatible server (vLLM, Ollama, llama.cpp) reads
	}
	for _, m := range msgs {
		role := openai.ChatMessageRoleUser
		switch m.Role {
		case "system":
			role = openai.ChatMessageRoleSystem
		case "assistant":
			role = openai.ChatMessageRoleAssistant
		}
		req.Messages = append(req.Messages, openai.ChatCompletionMessage{Role: role, Content: m.Content})
	}

	stream, err := g.client.CreateChatCompletionStream(callCtx, req)
	if err != nil {
		return "", g.mapError(ctx, callCtx, err)
	}
	defer func() { _ = stream.Close() }()
	var answer strings.Builder
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", g.mapError(ctx, callCtx, err)
		}
		for _, c := range resp.Choices {
			if c.Index != 0 || c.Delta.Content == "" {
				continue
			}
			answer.WriteString(c.Delta.Content)
			if onChunk != nil {
				onChunk(c.Delta.Content)
			}
		}
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if callCtx.Err() != nil {
		return "", timeoutError{fmt.Errorf("openai chat %s: no answer within %s: %w", g.model, g.timeout, domain.ErrUnavailable)}
	}
	if strings.TrimSpace(answer.String()) == "" {
		return "", fmt.Errorf("openai chat %s: empty answer: %w", g.model, domain.ErrUnavailable)
	}
	return answer.String(), nil
}

// mapError translates a client error: the caller's ctx ending stays a ctx
// error; the server refusing the request as such (4xx but 408 and 429) is
// permanent; anything else (network, 5xx, 429, our timeout, a broken
// stream) is domain.ErrUnavailable, which the stage runner retries.
func (g *OpenAI) mapError(ctx, callCtx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	code, msg := 0, ""
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		code, msg = apiErr.HTTPStatusCode, apiErr.Message
	case errors.As(err, &reqErr):
		code, msg = reqErr.HTTPStatusCode, strings.TrimSpace(string(reqErr.Body))
	}
	if code != 0 {
		if code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
			return fmt.Errorf("openai chat %s: status %d: %s", g.model, code, msg)
		}
		return fmt.Errorf("openai chat %s: status %d: %w", g.model, code, domain.ErrUnavailable)
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) || errors.Is(err, openai.ErrTooManyEmptyStreamMessages) {
		// Not a chat-completions endpoint; retrying will not change that.
		return fmt.Errorf("openai chat %s: unreadable stream: %w", g.model, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || callCtx.Err() != nil {
		return timeoutError{fmt.Errorf("openai chat %s: no answer within %s: %w", g.model, g.timeout, domain.ErrUnavailable)}
	}
	return fmt.Errorf("openai chat %s: %w: %w", g.model, domain.ErrUnavailable, err)
}
