package testenv

import (
	"fmt"
	"strconv"
	"strings"
)

// Variables that point the session store's tests at the Redis Sentinel
// test deployment: a master and its replica watched by three sentinels
// (printed by make redis-sentinel-up).
const (
	// RedisSentinelAddrsVar is the sentinels, comma-separated host:port.
	RedisSentinelAddrsVar = "KCHAT_TEST_REDIS_SENTINEL_ADDRS"
	// RedisSentinelMasterVar is the name they watch the master under.
	RedisSentinelMasterVar = "KCHAT_TEST_REDIS_SENTINEL_MASTER"
)

// RedisSentinel returns the sentinels and the master name of the Redis
// Sentinel test deployment, or skips (fails under CI) when either variable
// is not set.
func RedisSentinel(t TB) (sentinels []string, master string) {
	t.Helper()
	const how = "Run `make redis-sentinel-up` and export what it prints"
	addrs := requireVia(t, RedisSentinelAddrsVar, "the Redis Sentinel test deployment (its sentinels)", how)
	if addrs == "" {
		return nil, "" // skipped or failed (a TB whose Skipf returns: name one variable)
	}
	if master = requireVia(t, RedisSentinelMasterVar, "the Redis Sentinel test deployment (its master name)", how); master == "" {
		return nil, ""
	}
	return strings.Split(addrs, ","), master
}

// The commands of scripts/services.sh that act on one Redis node of the
// Sentinel deployment (node N listens on port 7100+N), for RunRedisNode.
// KillSentinelRedis returns once the process is gone; StartSentinelRedis
// once the node is the replica of the master the sentinels name and in
// sync (the script refuses while they still name the node itself: it
// would come back an empty master).
const (
	KillSentinelRedis  RedisNodeCommand = "kill-sentinel-redis"  // SIGKILL; no persistence, so its data is gone
	StartSentinelRedis RedisNodeCommand = "start-sentinel-redis" // start again as the master's replica; it resyncs
)

// SentinelRedisOfPort is the Redis node of the Sentinel deployment that
// listens on addr's port (127.0.0.1:7101 is node 1).
func SentinelRedisOfPort(addr string) (int, error) {
	i := strings.LastIndexByte(addr, ':')
	port, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil || port < 7100 || port > 7101 {
		return 0, fmt.Errorf("%q is no Redis node of the Sentinel test deployment (ports 7100 and 7101)", addr)
	}
	return port - 7100, nil
}
