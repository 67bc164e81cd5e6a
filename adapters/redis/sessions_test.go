package redis_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
	"github.com/kchat/kchat/ports/porttest"
)

func TestSessionStoreMiniredis(t *testing.T) {
	porttest.RunSessionStore(t, func(t *testing.T) porttest.SessionHarness {
		mr := miniredis.RunT(t)
		client := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		cfg := redis.Config{TTL: time.Hour, MaxTurns: 250, KeyPrefix: testenv.Prefix("kchat-test")}
		store, err := redis.NewSessionsWithClient(client, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return porttest.SessionHarness{Store: store, MaxTurns: cfg.MaxTurns, TTL: cfg.TTL, Advance: mr.FastForward}
	})
}

func TestSessionStoreMiniredisSmallBound(t *testing.T) {
	porttest.RunSessionStore(t, func(t *testing.T) porttest.SessionHarness {
		mr := miniredis.RunT(t)
		cfg := redis.Config{URL: "redis://" + mr.Addr(), TTL: time.Minute, MaxTurns: 3, KeyPrefix: "kchat:"}
		store, err := redis.NewSessions(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		return porttest.SessionHarness{Store: store, MaxTurns: cfg.MaxTurns, TTL: cfg.TTL, Advance: mr.FastForward}
	})
}

// TestIntegrationSessionStoreRedis runs the contract on a real Redis, with
// a short TTL that the suite waits out.
func TestIntegrationSessionStoreRedis(t *testing.T) {
	url := testenv.RedisURL(t)
	porttest.RunSessionStore(t, func(t *testing.T) porttest.SessionHarness {
		cfg := redis.Config{URL: url, TTL: 1500 * time.Millisecond, MaxTurns: 250, KeyPrefix: testenv.Prefix("kchat-test")}
		store, err := redis.NewSessions(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cleanupPrefix(t, url, cfg.KeyPrefix)
		t.Cleanup(func() { _ = store.Close() })
		return porttest.SessionHarness{Store: store, MaxTurns: cfg.MaxTurns, TTL: cfg.TTL}
	})
}

// cleanupPrefix deletes every key under prefix when the test ends.
func cleanupPrefix(t *testing.T, url, prefix string) {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := goredis.NewClient(opts)
	t.Cleanup(func() {
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := client.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("clean up %s: %v", iter.Val(), err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up %s*: %v", prefix, err)
		}
	})
}

// TestUnavailableFailsFastAndRecovers stops Redis under a store: every call
// fails with ErrUnavailable within seconds, nothing is recreated in place of
// the session, and the store works again once Redis is back.
func TestUnavailableFailsFastAndRecovers(t *testing.T) {
	mr := miniredis.RunT(t)
	store, err := redis.NewSessions(redis.Config{URL: "redis://" + mr.Addr(), TTL: time.Hour, MaxTurns: 10, KeyPrefix: "kchat:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	if _, err := store.Open(ctx, "s1", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := store.Append(ctx, "s1", domain.Turn{Role: domain.RoleUser, MessageID: "m1", Text: "hi"}); err != nil {
		t.Fatal(err)
	}

	mr.Close()
	checkUnavailable(t, store)

	if err := mr.Restart(); err != nil {
		t.Fatalf("restart miniredis: %v", err)
	}
	if owner, err := store.Open(ctx, "s2", "bob"); err != nil || owner != "bob" {
		t.Fatalf("open after Redis came back: owner %q, %v", owner, err)
	}
	if _, err := store.Open(ctx, "s1", "mallory"); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("open of alice's session by another user after the outage: %v, want ErrForbidden", err)
	}
	turns, err := store.Recent(ctx, "s1", 10)
	if err != nil || len(turns) != 1 || turns[0].MessageID != "m1" {
		t.Fatalf("alice's session after the outage: %v, %v; want turn m1", turns, err)
	}
	if err := store.Ping(ctx); err != nil {
		t.Fatalf("ping after Redis came back: %v", err)
	}
}

// TestUnreachableFailsFast points a store at addresses where no Redis
// answers: a closed port, and a server that accepts but never replies.
func TestUnreachableFailsFast(t *testing.T) {
	for name, give := range map[string]string{"refused": "redis://127.0.0.1:1/0", "silent": "redis://" + silentServer(t) + "/0"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store, err := redis.NewSessions(redis.Config{URL: give, TTL: time.Hour, MaxTurns: 10})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = store.Close() })
			checkUnavailable(t, store)
		})
	}
}

// silentServer accepts connections and never answers, like a hung Redis.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

// checkUnavailable calls every method at once and wants ErrUnavailable
// from each within 3 s.
func checkUnavailable(t *testing.T, store *redis.Sessions) {
	t.Helper()
	ctx := context.Background()
	calls := map[string]func() error{
		"open":   func() error { _, err := store.Open(ctx, "s1", "alice"); return err },
		"append": func() error { return store.Append(ctx, "s1", domain.Turn{MessageID: "m2"}) },
		"recent": func() error { _, err := store.Recent(ctx, "s1", 10); return err },
		"delete": func() error { return store.Delete(ctx, "s1") },
		"ping":   func() error { return store.Ping(ctx) },
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() {
			start := time.Now()
			err := call()
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("%s took %s with Redis down, want < 3s", name, took)
			}
			if !errors.Is(err, domain.ErrUnavailable) {
				t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
			}
		})
	}
	wg.Wait()
}

func TestWrongTypeIsNotUnavailable(t *testing.T) {
	mr := miniredis.RunT(t)
	store, err := redis.NewSessions(redis.Config{URL: "redis://" + mr.Addr(), TTL: time.Hour, MaxTurns: 10, KeyPrefix: "kchat:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := mr.Set("kchat:session:{s1}", "not a hash"); err != nil {
		t.Fatal(err)
	}
	_, err = store.Open(context.Background(), "s1", "alice")
	if err == nil || errors.Is(err, domain.ErrUnavailable) || errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("open over a key of the wrong type: %v, want a plain error (a bug, not an outage)", err)
	}
}

// TestStoredTurnIsTurnV1 pins the wire form: processes of different
// versions share the store.
func TestStoredTurnIsTurnV1(t *testing.T) {
	mr := miniredis.RunT(t)
	store, err := redis.NewSessions(redis.Config{URL: "redis://" + mr.Addr(), TTL: time.Hour, MaxTurns: 10, KeyPrefix: "p:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	if _, err := store.Open(ctx, "s1", "alice"); err != nil {
		t.Fatal(err)
	}
	turn := domain.Turn{
		Role: domain.RoleAssistant, MessageID: "a-1", Text: "see [1]",
		Citations: []domain.Citation{{N: 1, Source: "consumer.md", Title: "Commits", Score: 0.5, Snippet: "mark"}},
		At:        time.Date(2026, 3, 1, 10, 0, 2, 0, time.UTC),
	}
	if err := store.Append(ctx, "s1", turn); err != nil {
		t.Fatal(err)
	}
	got, err := mr.List("p:session:{s1}:turns")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"role":"assistant","message_id":"a-1","text":"see [1]","citations":[{"n":1,"source":"consumer.md","title":"Commits","score":0.5,"snippet":"mark"}],"at":"2026-03-01T10:00:02Z"}`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("stored %q\nwant %q", got, want)
	}
	if owner := mr.HGet("p:session:{s1}", "owner"); owner != "alice" {
		t.Fatalf("stored owner %q, want alice", owner)
	}
	if ttl := mr.TTL("p:session:{s1}:turns"); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("turns TTL %s, want (0, 1h]", ttl)
	}
}

var _ ports.SessionStore = (*redis.Sessions)(nil)
