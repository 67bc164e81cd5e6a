package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedisClusterMissingFailsUnderCIAndSkipsLocally(t *testing.T) {
	t.Setenv(RedisClusterVar, "")
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		r := &recorder{}
		if got := RedisCluster(r); got != nil {
			t.Errorf("CI=%q: got nodes %v with the variable unset", ci, got)
		}
		got, other := r.skip, r.fatal
		if ci != "" {
			got, other = r.fatal, r.skip
		}
		if other != "" || !strings.Contains(got, RedisClusterVar) || !strings.Contains(got, "make redis-cluster-up") {
			t.Errorf("CI=%q: fatal %q, skip %q; want one message naming the variable and make redis-cluster-up", ci, r.fatal, r.skip)
		}
	}
}

func TestRedisClusterFound(t *testing.T) {
	t.Setenv(RedisClusterVar, "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003,127.0.0.1:7004,127.0.0.1:7005")
	t.Setenv("CI", "true")
	r := &recorder{}
	got := RedisCluster(r)
	if r.fatal != "" || r.skip != "" || len(got) != 6 || got[5] != "127.0.0.1:7005" {
		t.Errorf("got %v, fatal %q, skip %q", got, r.fatal, r.skip)
	}
}

func TestRedisNodeOfPort(t *testing.T) {
	for addr, want := range map[string]int{"127.0.0.1:7000": 0, "127.0.0.1:7005": 5, "localhost:7003": 3} {
		if got, err := RedisNodeOfPort(addr); err != nil || got != want {
			t.Errorf("RedisNodeOfPort(%q) = %d, %v; want %d", addr, got, err, want)
		}
	}
	for _, addr := range []string{"127.0.0.1:6379", "127.0.0.1:7006", "7000", "127.0.0.1:x"} {
		if _, err := RedisNodeOfPort(addr); err == nil {
			t.Errorf("RedisNodeOfPort(%q): no error", addr)
		}
	}
}

// RunRedisNode passes the command and node to the script and, when it
// fails, returns what the script said.
func TestRunRedisNodeRunsTheScript(t *testing.T) {
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	script := filepath.Join(dir, "services.sh")
	body := "echo \"$@\" >" + args + "\n[ \"$2\" = 4 ] || { echo 'not yet' >&2; exit 1; }\n"
	if err := os.WriteFile(script, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RunRedisNode(context.Background(), script, KillRedisNode, 4); err != nil {
		t.Fatalf("RunRedisNode: %v", err)
	}
	if b, _ := os.ReadFile(args); string(b) != "kill-redis-node 4\n" {
		t.Errorf("the script got %q, want \"kill-redis-node 4\"", b)
	}
	err := RunRedisNode(context.Background(), script, StartRedisNode, 1)
	if err == nil || !strings.Contains(err.Error(), "not yet") || !strings.Contains(err.Error(), "start-redis-node 1") {
		t.Errorf("a failing script gave %v; want an error with the command and its output", err)
	}
}
