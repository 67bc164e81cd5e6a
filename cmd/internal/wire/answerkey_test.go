package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/adapters/ws"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// A missing or short key is refused with an error that names the
// variable and how to make a key, and never quotes the key. (The binaries'
// tests check they do not start without one.)
func TestAnswerKeyIsRequired(t *testing.T) {
	for _, secret := range []string{"", "too-short-a-secret-0123"} {
		_, err := AnswerKey(secret)
		if err == nil || !strings.Contains(err.Error(), AnswerKeyVar) || !strings.Contains(err.Error(), "openssl rand -hex 32") {
			t.Errorf("a %d-byte key: %v, want an error naming %s and how to make one", len(secret), err, AnswerKeyVar)
		}
		if secret != "" && err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
	one, two := RandomKey(), RandomKey()
	if _, err := AnswerKey(one); err != nil {
		t.Fatalf("a random key is refused: %v", err)
	}
	if one == two {
		t.Fatal("two random keys are the same")
	}
}

// The gateway's router always checks answers: the wiring gives it the key
// and the session store (without a key it would trust every answer).
func TestGatewayChecksAnswers(t *testing.T) {
	cfg := GatewayConfig{
		HTTP:        httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		ChatTimeout: 5 * time.Second, WS: ws.DefaultConfig(), UserLimit: ratelimit.DefaultConfig(), Auth: auth.DefaultConfig(),
		QueryPublisher: PublishToKafka, AnswerKey: "kchat-test-answer-key-0123456789abcdef",
	}
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers = []string{"127.0.0.1:1"}
	var answers *app.Answers
	app := fx.New(Base(slog.New(slog.DiscardHandler), time.Second), Tracing(tracing.Config{}, "test"), Kafka(kcfg), Sessions(redis.DefaultConfig()), Gateway(cfg), fx.Populate(&answers))
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	want := domain.KeyID([]byte(cfg.AnswerKey))
	if answers.Key == nil || answers.Key.ID() != want || answers.Sessions == nil || answers.Rejected == nil {
		t.Fatalf("the gateway's router has key %v, sessions %v: want key id %s and the session store", answers.Key, answers.Sessions, want)
	}
	_ = app.Stop(context.Background())
}

func TestRejectReasons(t *testing.T) {
	tests := []struct {
		give error
		want string
	}{
		{domain.ErrUnsigned, rejectUnsigned},
		{domain.ErrBadSignature, rejectBadSignature},
		{fmt.Errorf("x: %w", &domain.KeyMismatchError{Theirs: "a", Ours: "b"}), rejectKeyMismatch},
		{app.ErrNotAsked, rejectNotAsked},
		{fmt.Errorf("question q: %w", domain.ErrUnavailable), rejectUnavailable},
		{errors.New("anything else"), rejectUnavailable},
	}
	for _, tt := range tests {
		if got := rejectReason(tt.give); got != tt.want {
			t.Errorf("rejectReason(%v) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

// A flood of forgeries is counted whole but logged once a second per
// reason, with how many lines were held back.
func TestRejectionLogIsLimited(t *testing.T) {
	var l logLimit
	now := time.Now()
	if ok, _ := l.allow("unsigned", now); !ok {
		t.Fatal("the first refusal was not logged")
	}
	for range 5 {
		if ok, _ := l.allow("unsigned", now.Add(100*time.Millisecond)); ok {
			t.Fatal("a second line within the second was logged")
		}
	}
	if ok, _ := l.allow("not_asked", now); !ok {
		t.Fatal("another reason was held back")
	}
	if ok, skipped := l.allow("unsigned", now.Add(time.Second)); !ok || skipped != 5 {
		t.Fatalf("a second later: logged %v with %d held back, want true and 5", ok, skipped)
	}
}
