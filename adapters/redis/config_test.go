package redis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/kchat/kchat/adapters/redis"
)

func TestConfigValidate(t *testing.T) {
	valid := redis.DefaultConfig()
	valid.URL = "redis://127.0.0.1:6379/0"
	with := func(change func(*redis.Config)) redis.Config {
		c := valid
		change(&c)
		return c
	}
	cluster := func(nodes string) redis.Config {
		c := redis.DefaultConfig()
		c.ClusterNodes = nodes
		return c
	}
	withCluster := func(change func(*redis.Config)) redis.Config {
		c := cluster("127.0.0.1:7000")
		change(&c)
		return c
	}
	sentinel := func(addrs, master string) redis.Config {
		c := redis.DefaultConfig()
		c.SentinelAddrs, c.SentinelMaster = addrs, master
		return c
	}
	withSentinel := func(change func(*redis.Config)) redis.Config {
		c := sentinel("127.0.0.1:7110,127.0.0.1:7111", "kchat")
		change(&c)
		return c
	}
	tests := []struct {
		name string
		give redis.Config
		want string // a substring of the error; "" for valid
	}{
		{"defaults with a URL", valid, ""},
		{"TLS URL", with(func(c *redis.Config) { c.URL = "rediss://user:pw@cache.internal:6380/2" }), ""},
		{"empty prefix", with(func(c *redis.Config) { c.KeyPrefix = "" }), ""},
		{"no URL", with(func(c *redis.Config) { c.URL = "" }), "KCHAT_REDIS_URL"},
		{"wrong scheme", with(func(c *redis.Config) { c.URL = "http://127.0.0.1:6379" }), "KCHAT_REDIS_URL"},
		{"bad database", with(func(c *redis.Config) { c.URL = "redis://127.0.0.1:6379/zero" }), "KCHAT_REDIS_URL"},
		{"unparsable", with(func(c *redis.Config) { c.URL = "redis://user:s3cret@host:6379/%zz" }), "KCHAT_REDIS_URL"},
		{"bad query option", with(func(c *redis.Config) { c.URL = "redis://host:6379/0?dial_timeout=soon" }), "KCHAT_REDIS_URL"},
		{"zero TTL", with(func(c *redis.Config) { c.TTL = 0 }), "KCHAT_SESSION_TTL"},
		{"sub-second TTL", with(func(c *redis.Config) { c.TTL = 500 * time.Millisecond }), "KCHAT_SESSION_TTL"},
		{"zero turns", with(func(c *redis.Config) { c.MaxTurns = 0 }), "KCHAT_SESSION_MAX_TURNS"},
		{"too many turns", with(func(c *redis.Config) { c.MaxTurns = 10001 }), "KCHAT_SESSION_MAX_TURNS"},
		{"brace in prefix", with(func(c *redis.Config) { c.KeyPrefix = "kchat{x}:" }), "KCHAT_REDIS_PREFIX"},
		{"long prefix", with(func(c *redis.Config) { c.KeyPrefix = strings.Repeat("p", 201) }), "KCHAT_REDIS_PREFIX"},
		{"one node that waits for a replica", with(func(c *redis.Config) { c.WaitReplicas = "1" }), ""},
		{"password beside a URL", with(func(c *redis.Config) { c.Password = "s3cret" }), "KCHAT_REDIS_PASSWORD"},
		{"URL and cluster", with(func(c *redis.Config) { c.ClusterNodes = "127.0.0.1:7000" }), "KCHAT_REDIS_CLUSTER_NODES"},
		{"cluster", cluster("127.0.0.1:7000,127.0.0.1:7001, redis-2.internal:7002"), ""},
		{"cluster of one seed", cluster("[::1]:7000"), ""},
		{"cluster with a password", withCluster(func(c *redis.Config) { c.Username, c.Password = "kchat", "s3cret" }), ""},
		{"cluster node without a port", cluster("127.0.0.1:7000,127.0.0.1"), "KCHAT_REDIS_CLUSTER_NODES"},
		{"cluster node with port 0", cluster("127.0.0.1:0"), "KCHAT_REDIS_CLUSTER_NODES"},
		{"cluster node as a URL", cluster("redis://127.0.0.1:7000"), "KCHAT_REDIS_CLUSTER_NODES"},
		{"cluster empty entry", cluster("127.0.0.1:7000,,127.0.0.1:7001"), "KCHAT_REDIS_CLUSTER_NODES"},
		{"cluster node twice", cluster("127.0.0.1:7000,127.0.0.1:7000"), "KCHAT_REDIS_CLUSTER_NODES"},
		{"cluster, no wait", withCluster(func(c *redis.Config) { c.WaitReplicas = "0" }), ""},
		{"cluster, wait for two", withCluster(func(c *redis.Config) { c.WaitReplicas = "2" }), ""},
		{"wait for a word", withCluster(func(c *redis.Config) { c.WaitReplicas = "all" }), "KCHAT_REDIS_WAIT_REPLICAS"},
		{"wait for -1", withCluster(func(c *redis.Config) { c.WaitReplicas = "-1" }), "KCHAT_REDIS_WAIT_REPLICAS"},
		{"wait for 11", withCluster(func(c *redis.Config) { c.WaitReplicas = "11" }), "KCHAT_REDIS_WAIT_REPLICAS"},
		{"zero wait timeout", withCluster(func(c *redis.Config) { c.WaitTimeout = 0 }), "KCHAT_REDIS_WAIT_TIMEOUT"},
		{"wait timeout over the read deadline", withCluster(func(c *redis.Config) { c.WaitTimeout = 2 * time.Second }), "KCHAT_REDIS_WAIT_TIMEOUT"},
		{"zero wait timeout, no wait", withCluster(func(c *redis.Config) { c.WaitReplicas, c.WaitTimeout = "0", 0 }), ""},
		{"sentinel", sentinel("127.0.0.1:7110, 127.0.0.1:7111,sentinel-3.internal:26379", "kchat"), ""},
		{"sentinel with passwords", withSentinel(func(c *redis.Config) { c.Username, c.Password, c.SentinelPassword = "kchat", "s3cret", "s3cret" }), ""},
		{"sentinel, no wait", withSentinel(func(c *redis.Config) { c.WaitReplicas = "0" }), ""},
		{"sentinel without a master name", sentinel("127.0.0.1:7110", ""), "KCHAT_REDIS_SENTINEL_MASTER"},
		{"master name without sentinels", sentinel("", "kchat"), "KCHAT_REDIS_SENTINEL_ADDRS"},
		{"master name with a space", sentinel("127.0.0.1:7110", "my master"), "KCHAT_REDIS_SENTINEL_MASTER"},
		{"master name too long", sentinel("127.0.0.1:7110", strings.Repeat("m", 201)), "KCHAT_REDIS_SENTINEL_MASTER"},
		{"sentinel without a port", sentinel("127.0.0.1", "kchat"), "KCHAT_REDIS_SENTINEL_ADDRS"},
		{"sentinel as a URL", sentinel("redis://127.0.0.1:26379", "kchat"), "KCHAT_REDIS_SENTINEL_ADDRS"},
		{"sentinel twice", sentinel("127.0.0.1:7110,127.0.0.1:7110", "kchat"), "KCHAT_REDIS_SENTINEL_ADDRS"},
		{"URL and sentinel", with(func(c *redis.Config) { c.SentinelAddrs, c.SentinelMaster = "127.0.0.1:7110", "kchat" }), "KCHAT_REDIS_SENTINEL_ADDRS"},
		{"URL and a master name", with(func(c *redis.Config) { c.SentinelMaster = "kchat" }), "KCHAT_REDIS_SENTINEL_MASTER"},
		{"cluster and sentinel", withCluster(func(c *redis.Config) { c.SentinelAddrs, c.SentinelMaster = "127.0.0.1:7110", "kchat" }), "KCHAT_REDIS_CLUSTER_NODES"},
		{"sentinel password without sentinels", withCluster(func(c *redis.Config) { c.SentinelPassword = "s3cret" }), "KCHAT_REDIS_SENTINEL_PASSWORD"},
		{"sentinel password beside a URL", with(func(c *redis.Config) { c.SentinelPassword = "s3cret" }), "KCHAT_REDIS_SENTINEL_PASSWORD"},
		{"sentinel, wait timeout over the read deadline", withSentinel(func(c *redis.Config) { c.WaitTimeout = 2 * time.Second }), "KCHAT_REDIS_WAIT_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: %v, want an error naming %s", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("the error shows the password: %v", err)
			}
			s, nerr := redis.NewSessions(tt.give)
			if (nerr == nil) != (err == nil) {
				t.Fatalf("NewSessions: %v, Validate: %v; want both to agree", nerr, err)
			}
			if s != nil {
				_ = s.Close()
			}
		})
	}
}

// TestConfigFromEnv checks that the env tags' defaults are DefaultConfig.
func TestConfigFromEnv(t *testing.T) {
	t.Setenv("KCHAT_REDIS_URL", "redis://127.0.0.1:6379/0")
	got, err := env.ParseAs[redis.Config]()
	if err != nil {
		t.Fatal(err)
	}
	want := redis.DefaultConfig()
	want.URL = "redis://127.0.0.1:6379/0"
	if got != want {
		t.Fatalf("from env %+v, want %+v", got, want)
	}

	t.Setenv("KCHAT_SESSION_TTL", "90m")
	t.Setenv("KCHAT_SESSION_MAX_TURNS", "7")
	t.Setenv("KCHAT_REDIS_PREFIX", "staging:")
	t.Setenv("KCHAT_REDIS_URL", "")
	t.Setenv("KCHAT_REDIS_CLUSTER_NODES", "10.0.0.1:7000,10.0.0.2:7000")
	t.Setenv("KCHAT_REDIS_USERNAME", "kchat")
	t.Setenv("KCHAT_REDIS_PASSWORD", "pw")
	t.Setenv("KCHAT_REDIS_WAIT_REPLICAS", "2")
	t.Setenv("KCHAT_REDIS_WAIT_TIMEOUT", "250ms")
	got, err = env.ParseAs[redis.Config]()
	if err != nil {
		t.Fatal(err)
	}
	want = redis.Config{
		ClusterNodes: "10.0.0.1:7000,10.0.0.2:7000",
		Username:     "kchat", Password: "pw", WaitReplicas: "2", WaitTimeout: 250 * time.Millisecond,
		TTL: 90 * time.Minute, MaxTurns: 7, KeyPrefix: "staging:",
	}
	if got != want {
		t.Fatalf("from env %+v, want %+v", got, want)
	}

	t.Setenv("KCHAT_REDIS_CLUSTER_NODES", "")
	t.Setenv("KCHAT_REDIS_SENTINEL_ADDRS", "10.0.0.1:26379,10.0.0.2:26379")
	t.Setenv("KCHAT_REDIS_SENTINEL_MASTER", "sessions")
	t.Setenv("KCHAT_REDIS_SENTINEL_PASSWORD", "spw")
	got, err = env.ParseAs[redis.Config]()
	if err != nil {
		t.Fatal(err)
	}
	want.ClusterNodes, want.SentinelAddrs, want.SentinelMaster, want.SentinelPassword = "", "10.0.0.1:26379,10.0.0.2:26379", "sessions", "spw"
	if got != want {
		t.Fatalf("from env %+v, want %+v", got, want)
	}
}

// TestReplicas: auto waits for one replica on a cluster, for none on one
// node; a number is taken as it is.
func TestReplicas(t *testing.T) {
	tests := []struct {
		give redis.Config
		want int
	}{
		{redis.Config{URL: "redis://h:6379/0", WaitReplicas: "auto"}, 0},
		{redis.Config{URL: "redis://h:6379/0", WaitReplicas: ""}, 0},
		{redis.Config{URL: "redis://h:6379/0", WaitReplicas: "1"}, 1},
		{redis.Config{ClusterNodes: "h:7000", WaitReplicas: "auto"}, 1},
		{redis.Config{ClusterNodes: "h:7000", WaitReplicas: "0"}, 0},
		{redis.Config{ClusterNodes: "h:7000", WaitReplicas: "2"}, 2},
		{redis.Config{SentinelAddrs: "h:26379", SentinelMaster: "kchat", WaitReplicas: "auto"}, 1},
		{redis.Config{SentinelAddrs: "h:26379", SentinelMaster: "kchat", WaitReplicas: "0"}, 0},
		{redis.Config{WaitReplicas: "auto"}, 0}, // a client passed in, nothing named
	}
	for _, tt := range tests {
		if got := tt.give.Replicas(); got != tt.want {
			t.Errorf("%+v: Replicas() = %d, want %d", tt.give, got, tt.want)
		}
	}
	if !(redis.Config{ClusterNodes: "h:7000"}).Enabled() || !(redis.Config{URL: "redis://h"}).Enabled() || (redis.Config{}).Enabled() {
		t.Error("Enabled: want true when KCHAT_REDIS_URL or KCHAT_REDIS_CLUSTER_NODES is set, false when neither is")
	}
	// Half a Sentinel setting is enabled too, so that NewSessions names
	// what is missing rather than sessions quietly staying in memory.
	if !(redis.Config{SentinelAddrs: "h:26379"}).Enabled() || !(redis.Config{SentinelMaster: "kchat"}).Enabled() {
		t.Error("Enabled: want true when KCHAT_REDIS_SENTINEL_ADDRS or KCHAT_REDIS_SENTINEL_MASTER is set")
	}
}

func TestNewSessionsWithClientValidates(t *testing.T) {
	if _, err := redis.NewSessionsWithClient(nil, redis.Config{TTL: time.Hour}); err == nil || !strings.Contains(err.Error(), "KCHAT_SESSION_MAX_TURNS") {
		t.Fatalf("got %v, want an error naming KCHAT_SESSION_MAX_TURNS", err)
	}
}
