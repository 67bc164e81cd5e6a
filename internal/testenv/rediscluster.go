package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RedisClusterVar points the session store's tests at the Redis test
// cluster: six nodes, 3 masters with one replica each (printed by make
// redis-cluster-up).
const RedisClusterVar = "KCHAT_TEST_REDIS_CLUSTER"

// RedisCluster returns the nodes of the Redis test cluster, or skips
// (fails under CI) when KCHAT_TEST_REDIS_CLUSTER is not set.
func RedisCluster(t TB) []string {
	t.Helper()
	v := requireVia(t, RedisClusterVar, "the Redis test cluster (3 masters, 1 replica each)",
		"Run `make redis-cluster-up` and export what it prints")
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// A RedisNodeCommand is a command of scripts/services.sh that acts on one
// node of the Redis test cluster. Node N listens on port 7000+N.
type RedisNodeCommand string

// The node commands. KillRedisNode returns once the process is gone;
// StartRedisNode once the node has rejoined and the cluster is whole again
// (every slot served, every replica in sync). The script refuses to start
// a killed master before a replica took its slots over. PauseRedisNode
// returns once the process is stopped, ResumeRedisNode once it answers.
const (
	KillRedisNode   RedisNodeCommand = "kill-redis-node"   // SIGKILL; no persistence, so its data is gone
	StartRedisNode  RedisNodeCommand = "start-redis-node"  // start again on its nodes.conf; it resyncs
	PauseRedisNode  RedisNodeCommand = "pause-redis-node"  // SIGSTOP
	ResumeRedisNode RedisNodeCommand = "resume-redis-node" // SIGCONT
)

// RedisNodeOfPort is the node of the test cluster that listens on addr's
// port (127.0.0.1:7003 is node 3).
func RedisNodeOfPort(addr string) (int, error) {
	i := strings.LastIndexByte(addr, ':')
	port, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil || port < 7000 || port > 7005 {
		return 0, fmt.Errorf("%q is no node of the Redis test cluster (ports 7000 to 7005)", addr)
	}
	return port - 7000, nil
}

// RunRedisNode runs command on node of the Redis test cluster; script is
// ServicesScript(t).
func RunRedisNode(ctx context.Context, script string, command RedisNodeCommand, node int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, string(command), strconv.Itoa(node))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s %d: %w\n%s", filepath.Base(script), command, node, err, out)
	}
	return nil
}
