package wire

import (
	"context"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/ports"
)

// With KCHAT_REDIS_CLUSTER_NODES alone (no KCHAT_REDIS_URL) the session
// store is Redis, through a cluster client (miniredis answers as a
// one-node cluster), with its readiness check.
func TestSessionsOnACluster(t *testing.T) {
	mr := miniredis.RunT(t)
	cfg := redis.DefaultConfig()
	cfg.ClusterNodes, cfg.WaitReplicas = mr.Addr(), "0" // miniredis has no replica to wait for
	var (
		store    ports.SessionStore
		sessions *redis.Sessions
	)
	app := fxtest.New(t, quiet, Sessions(cfg), fx.Populate(&store, &sessions))
	app.RequireStart()
	defer app.RequireStop()
	ctx := context.Background()
	if err := sessions.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if owner, err := store.Open(ctx, "s1", "alice"); err != nil || owner != "alice" {
		t.Fatalf("open: %q, %v", owner, err)
	}
	if owner := mr.HGet("kchat:session:{s1}", "owner"); owner != "alice" {
		t.Fatalf("the session is not in miniredis: owner %q", owner)
	}
}

// A bad Redis setting stops the start with an error naming its variable,
// whichever variable named Redis.
func TestSessionsRefusesABadSetting(t *testing.T) {
	for want, cfg := range map[string]redis.Config{
		"KCHAT_REDIS_CLUSTER_NODES": {ClusterNodes: "127.0.0.1"},
		"KCHAT_REDIS_WAIT_REPLICAS": {ClusterNodes: "127.0.0.1:7000", WaitReplicas: "most"},
		"KCHAT_REDIS_PASSWORD":      {URL: "redis://127.0.0.1:6379/0", Password: "pw"},
	} {
		base := redis.DefaultConfig()
		base.URL, base.ClusterNodes, base.Password = cfg.URL, cfg.ClusterNodes, cfg.Password
		if cfg.WaitReplicas != "" {
			base.WaitReplicas = cfg.WaitReplicas
		}
		var store ports.SessionStore
		app := fx.New(fx.NopLogger, quiet, Sessions(base), fx.Populate(&store))
		if err := app.Err(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want an error naming %s", base, err, want)
		}
	}
}
