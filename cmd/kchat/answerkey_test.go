package main

import (
	"testing"

	"github.com/kchat/kchat/cmd/internal/config"
)

// One process signs and checks answers: without KCHAT_ANSWER_KEY it makes
// a random key, the same for its answerer and its gateway, and a new one
// per process; a key that is set is used as it is.
func TestAllInOneAnswerKey(t *testing.T) {
	load := func(environ ...string) Config {
		t.Helper()
		var cfg Config
		if err := config.Load(&cfg, environ, cfg.Validate); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a, b := load(), load()
	if !a.randomAnswerKey || len(a.Answerer.AnswerKey) < 32 || a.Answerer.AnswerKey != a.Gateway.AnswerKey {
		t.Fatalf("unset: answerer key %d bytes, gateway's the same: %v; want one random key for both", len(a.Answerer.AnswerKey), a.Answerer.AnswerKey == a.Gateway.AnswerKey)
	}
	if a.Answerer.AnswerKey == b.Answerer.AnswerKey {
		t.Fatal("two processes made the same key")
	}
	const key = "an answer key set by the operator, 32+ bytes"
	if c := load("KCHAT_ANSWER_KEY=" + key); c.randomAnswerKey || c.Answerer.AnswerKey != key || c.Gateway.AnswerKey != key {
		t.Fatalf("set: got %+v", c.randomAnswerKey)
	}
}
