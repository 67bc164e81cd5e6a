package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Config configures the Redis session store. The env tags name the KCHAT_*
// variables a binary loads it from.
//
// One deployment is named: one node (URL), a Redis Cluster (ClusterNodes)
// or a master that Redis Sentinel watches (SentinelAddrs and
// SentinelMaster).
type Config struct {
	// URL is the server, redis://[user:password@]host:port/db (rediss:// for
	// TLS); go-redis options such as dial_timeout may be given as query
	// parameters.
	URL string `env:"KCHAT_REDIS_URL"`
	// ClusterNodes are seed nodes of a Redis Cluster, comma-separated
	// host:port; the others are discovered (CLUSTER SLOTS).
	ClusterNodes string `env:"KCHAT_REDIS_CLUSTER_NODES"`
	// SentinelAddrs are Redis Sentinels, comma-separated host:port (the
	// others they know of are discovered), and SentinelMaster the name
	// they watch the master under: the store asks them where the master is,
	// and again after a failover.
	SentinelAddrs  string `env:"KCHAT_REDIS_SENTINEL_ADDRS"`
	SentinelMaster string `env:"KCHAT_REDIS_SENTINEL_MASTER"`
	// SentinelPassword authenticates to the sentinels (requirepass of
	// sentinel.conf), which may differ from the master's.
	SentinelPassword string `env:"KCHAT_REDIS_SENTINEL_PASSWORD"`
	// Username and Password authenticate to the cluster's nodes, or to the
	// master and replicas behind Sentinel (a URL carries its own).
	Username string `env:"KCHAT_REDIS_USERNAME"`
	Password string `env:"KCHAT_REDIS_PASSWORD"`
	// WaitReplicas is how many replicas must have a write before a call
	// that changed a session returns (Redis WAIT): "auto" is 0 with URL and
	// 1 with a cluster or Sentinel.
	WaitReplicas string `env:"KCHAT_REDIS_WAIT_REPLICAS" envDefault:"auto"`
	// WaitTimeout bounds that wait; a write not on enough replicas by then
	// fails as unavailable (the caller retries; writes are idempotent).
	WaitTimeout time.Duration `env:"KCHAT_REDIS_WAIT_TIMEOUT" envDefault:"500ms"`
	// TTL is how long an untouched session lives; every call renews it.
	TTL time.Duration `env:"KCHAT_SESSION_TTL" envDefault:"24h"`
	// MaxTurns is how many recent turns a session keeps.
	MaxTurns int `env:"KCHAT_SESSION_MAX_TURNS" envDefault:"50"`
	// KeyPrefix is put in front of every key, so that several deployments
	// (or tests) can share one Redis.
	KeyPrefix string `env:"KCHAT_REDIS_PREFIX" envDefault:"kchat:"`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{WaitReplicas: "auto", WaitTimeout: 500 * time.Millisecond, TTL: 24 * time.Hour, MaxTurns: 50, KeyPrefix: "kchat:"}
}

// maxWaitReplicas bounds KCHAT_REDIS_WAIT_REPLICAS: more replicas per
// master than anyone runs.
const maxWaitReplicas = 10

// Enabled reports whether a Redis is named at all (else sessions are kept
// in memory). Half a Sentinel setting counts, so that Validate names what
// is missing instead of sessions silently staying in memory.
func (c Config) Enabled() bool {
	return c.URL != "" || c.ClusterNodes != "" || c.sentinel()
}

// sentinel reports whether a Sentinel deployment is named (or half named).
func (c Config) sentinel() bool {
	return c.SentinelAddrs != "" || c.SentinelMaster != ""
}

// Replicas is how many replicas a write waits for: WaitReplicas, with
// "auto" resolved (and 0 when it is invalid; Validate reports that).
func (c Config) Replicas() int {
	if c.WaitReplicas == "" || c.WaitReplicas == "auto" {
		if c.URL == "" && (c.ClusterNodes != "" || c.sentinel()) {
			return 1
		}
		return 0
	}
	n, err := strconv.Atoi(c.WaitReplicas)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Validate reports the first setting that is wrong, naming its variable.
func (c Config) Validate() error {
	named := 0
	for _, set := range []bool{c.URL != "", c.ClusterNodes != "", c.sentinel()} {
		if set {
			named++
		}
	}
	switch {
	case named == 0:
		return errors.New("KCHAT_REDIS_URL is required: redis://host:port/db (or KCHAT_REDIS_CLUSTER_NODES for a Redis Cluster, or KCHAT_REDIS_SENTINEL_ADDRS and KCHAT_REDIS_SENTINEL_MASTER for a master behind Redis Sentinel)")
	case named > 1:
		return errors.New("name one Redis deployment: KCHAT_REDIS_URL (one node), KCHAT_REDIS_CLUSTER_NODES (a Redis Cluster) or KCHAT_REDIS_SENTINEL_ADDRS with KCHAT_REDIS_SENTINEL_MASTER (Sentinel), not two of them")
	case c.SentinelPassword != "" && !c.sentinel():
		return errors.New("KCHAT_REDIS_SENTINEL_PASSWORD is for the sentinels of KCHAT_REDIS_SENTINEL_ADDRS, which is not set")
	case c.URL != "":
		if _, err := parseURL(c.URL); err != nil {
			return err
		}
		if c.Username != "" || c.Password != "" {
			return errors.New("KCHAT_REDIS_USERNAME and KCHAT_REDIS_PASSWORD are for a cluster or Sentinel: with KCHAT_REDIS_URL put them in the URL (redis://user:password@host:port/db)")
		}
	case c.ClusterNodes != "":
		if _, err := parseAddrs("KCHAT_REDIS_CLUSTER_NODES", c.ClusterNodes); err != nil {
			return err
		}
	default:
		if err := c.validateSentinel(); err != nil {
			return err
		}
	}
	return c.validateStore()
}

// validateSentinel checks the Sentinel settings, both of which are needed.
func (c Config) validateSentinel() error {
	switch {
	case c.SentinelAddrs == "":
		return errors.New("KCHAT_REDIS_SENTINEL_ADDRS is required with KCHAT_REDIS_SENTINEL_MASTER: the sentinels, comma-separated host:port")
	case c.SentinelMaster == "":
		return errors.New("KCHAT_REDIS_SENTINEL_MASTER is required with KCHAT_REDIS_SENTINEL_ADDRS: the name the sentinels watch the master under (sentinel monitor <name> ...)")
	case len(c.SentinelMaster) > 200 || strings.IndexFunc(c.SentinelMaster, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf("KCHAT_REDIS_SENTINEL_MASTER must be a master name of at most 200 characters without spaces or control characters, got %q", c.SentinelMaster)
	}
	_, err := parseAddrs("KCHAT_REDIS_SENTINEL_ADDRS", c.SentinelAddrs)
	return err
}

func (c Config) validateWait() error {
	if c.WaitReplicas != "" && c.WaitReplicas != "auto" {
		n, err := strconv.Atoi(c.WaitReplicas)
		if err != nil || n < 0 || n > maxWaitReplicas {
			return fmt.Errorf("KCHAT_REDIS_WAIT_REPLICAS must be auto or a number of replicas from 0 to %d, got %q", maxWaitReplicas, c.WaitReplicas)
		}
	}
	if c.Replicas() > 0 && (c.WaitTimeout < time.Millisecond || c.WaitTimeout > maxWaitTimeout) {
		return fmt.Errorf("KCHAT_REDIS_WAIT_TIMEOUT must be between 1ms and %s when writes wait for replicas, got %s", maxWaitTimeout, c.WaitTimeout)
	}
	return nil
}

// validateStore checks what NewSessionsWithClient uses (all but where
// Redis is).
func (c Config) validateStore() error {
	switch {
	case c.TTL < time.Second || c.TTL > 365*24*time.Hour:
		return fmt.Errorf("KCHAT_SESSION_TTL must be between 1s and 8760h, got %s", c.TTL)
	case c.MaxTurns < 1 || c.MaxTurns > 10000:
		return fmt.Errorf("KCHAT_SESSION_MAX_TURNS must be between 1 and 10000, got %d", c.MaxTurns)
	case len(c.KeyPrefix) > 200:
		return errors.New("KCHAT_REDIS_PREFIX is longer than 200 characters")
	case strings.ContainsAny(c.KeyPrefix, "{}"):
		// The session id is the key's hash tag (so a script's keys share a
		// cluster slot); a brace in the prefix would move the tag.
		return fmt.Errorf("KCHAT_REDIS_PREFIX must not contain { or }, got %q", c.KeyPrefix)
	}
	return c.validateWait()
}

// parseURL parses the URL without echoing it: it may hold a password.
func parseURL(raw string) (*goredis.Options, error) {
	opts, err := goredis.ParseURL(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("KCHAT_REDIS_URL is not a valid redis:// URL: %w", err)
	}
	return opts, nil
}

// parseAddrs splits a comma-separated host:port list, each address valid
// and named once.
func parseAddrs(name, raw string) ([]string, error) {
	var addrs []string
	seen := map[string]bool{}
	for _, a := range strings.Split(raw, ",") {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || strings.ContainsAny(host, "/@?# ") {
			return nil, fmt.Errorf("%s must be comma-separated host:port addresses, got %q", name, a)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%s: %q has no valid port (1-65535)", name, a)
		}
		if seen[a] {
			return nil, fmt.Errorf("%s names %s twice", name, a)
		}
		seen[a] = true
		addrs = append(addrs, a)
	}
	return addrs, nil
}
