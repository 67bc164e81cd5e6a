package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClusterMissingFailsUnderCIAndSkipsLocally(t *testing.T) {
	t.Setenv(ClusterVar, "")
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		r := &recorder{}
		ClusterBrokers(r)
		got, other := r.skip, r.fatal
		if ci != "" {
			got, other = r.fatal, r.skip
		}
		if other != "" || !strings.Contains(got, ClusterVar) || !strings.Contains(got, "make cluster-up") {
			t.Errorf("CI=%q: fatal %q, skip %q; want one message naming the variable and make cluster-up", ci, r.fatal, r.skip)
		}
	}
}

func TestClusterFound(t *testing.T) {
	t.Setenv(ClusterVar, "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096")
	t.Setenv("CI", "true")
	r := &recorder{}
	got := ClusterBrokers(r)
	if r.fatal != "" || r.skip != "" || len(got) != 3 || got[2] != "127.0.0.1:19096" {
		t.Errorf("got %v, fatal %q, skip %q", got, r.fatal, r.skip)
	}
}

// RunBroker passes the command and node to the script and, when it fails,
// returns what the script said.
func TestRunBrokerRunsTheScript(t *testing.T) {
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	script := filepath.Join(dir, "services.sh")
	body := "echo \"$@\" >" + args + "\n[ \"$2\" = 2 ] || { echo 'node gone' >&2; exit 3; }\n"
	if err := os.WriteFile(script, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RunBroker(context.Background(), script, KillBroker, 2); err != nil {
		t.Fatalf("RunBroker: %v", err)
	}
	if b, _ := os.ReadFile(args); string(b) != "kill-broker 2\n" {
		t.Errorf("the script got %q, want \"kill-broker 2\"", b)
	}
	err := RunBroker(context.Background(), script, StartBroker, 3)
	if err == nil || !strings.Contains(err.Error(), "node gone") || !strings.Contains(err.Error(), "start-broker 3") {
		t.Errorf("a failing script gave %v; want an error with the command and its output", err)
	}
}
