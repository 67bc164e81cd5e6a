package wire

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

var quiet = fx.Supply(slog.New(slog.DiscardHandler))

// With a Redis URL the session store is Redis, ready-checked, and its
// client closes with the app; without one it is in memory.
func TestSessions(t *testing.T) {
	mr := miniredis.RunT(t)
	cfg := redis.DefaultConfig()
	cfg.URL = "redis://" + mr.Addr()
	var (
		store    ports.SessionStore
		sessions *redis.Sessions
	)
	app := fxtest.New(t, quiet, Sessions(cfg), fx.Populate(&store, &sessions))
	app.RequireStart()
	ctx := context.Background()
	if err := sessions.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if owner, err := store.Open(ctx, "s1", "alice"); err != nil || owner != "alice" {
		t.Fatalf("open: %q, %v", owner, err)
	}
	app.RequireStop()
	if err := sessions.Ping(ctx); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("ping after stop: %v, want ErrUnavailable (client closed)", err)
	}

	cfg.URL = ""
	app = fxtest.New(t, quiet, Sessions(cfg), fx.Populate(&store))
	app.RequireStart().RequireStop()
	if _, ok := store.(*memory.Sessions); !ok {
		t.Fatalf("without KCHAT_REDIS_URL the store is %T, want *memory.Sessions", store)
	}
}

func TestRetriever(t *testing.T) {
	var r ports.Retriever
	app := fxtest.New(t, Retriever(rag.DefaultConfig()), fx.Populate(&r))
	app.RequireStart()
	got, err := r.Retrieve(context.Background(), domain.Query{Text: "How do I start kchat?"}, 3)
	if err != nil || len(got) == 0 {
		t.Errorf("Retrieve = %d passages, %v; want some", len(got), err)
	}
	app.RequireStop()
}

func TestGenerator(t *testing.T) {
	var g ports.Generator
	reg := fx.Options(fx.Provide(func() prometheus.Registerer { return prometheus.NewRegistry() }), fx.Supply(tracing.Disabled()))
	fxtest.New(t, quiet, reg, Generator(llm.DefaultConfig()), fx.Populate(&g)).RequireStart().RequireStop()
	in, ok := g.(*llm.Instrumented)
	if !ok {
		t.Fatalf("got %T, want the generator counted (*llm.Instrumented)", g)
	}
	if _, ok := in.Unwrap().(*llm.Extractive); !ok {
		t.Errorf("got %T, want *llm.Extractive", in.Unwrap())
	}

	// External: the module may be in the graph as long as nothing asks for
	// a generator; asking fails with the variable named.
	cfg := llm.Config{Generator: llm.GeneratorExternal}
	if err := fx.New(fx.NopLogger, Generator(cfg)).Err(); err != nil {
		t.Fatalf("module without a consumer: %v", err)
	}
	err := fx.New(fx.NopLogger, quiet, reg, Generator(cfg), fx.Populate(&g)).Err()
	if err == nil || !strings.Contains(err.Error(), "KCHAT_GENERATOR=external") {
		t.Fatalf("got %v, want an error naming KCHAT_GENERATOR=external", err)
	}
}

func TestCensor(t *testing.T) {
	var c ports.Censor
	fxtest.New(t, Censor(profanity.DefaultConfig()), fx.Populate(&c)).RequireStart().RequireStop()
	if got, changed := c.Censor("oh shit"); got != "oh ****" || !changed {
		t.Errorf("Censor = %q, %v; want %q, true", got, changed, "oh ****")
	}
}
