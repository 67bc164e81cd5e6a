package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClusterBrokers returns the brokers of the 3-broker test cluster, or skips
// (fails under CI) when KCHAT_TEST_CLUSTER_BROKERS is not set.
func ClusterBrokers(t TB) []string {
	t.Helper()
	v := requireVia(t, ClusterVar, "the 3-broker test cluster",
		"Run `make cluster-up` and export what it prints, or run `make chaos`")
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// A BrokerCommand is a command of scripts/services.sh that acts on one node
// of the test cluster. Nodes are 1, 2 and 3, and node N is broker id N, so
// a partition leader kadm reports is the node to pass.
type BrokerCommand string

// The broker commands. Each returns once done: KillBroker once the process
// is gone, StartBroker once the broker has rejoined the cluster (the
// controller unfenced it; catching up to the ISR takes longer), PauseBroker
// once the process is stopped, ResumeBroker once it answers requests.
const (
	KillBroker   BrokerCommand = "kill-broker"   // SIGKILL; its data is kept
	StartBroker  BrokerCommand = "start-broker"  // restart on its data (or resume it if paused)
	PauseBroker  BrokerCommand = "pause-broker"  // SIGSTOP
	ResumeBroker BrokerCommand = "resume-broker" // SIGCONT
)

// Broker runs command on node of the test cluster and fails the test if it
// fails. It needs KCHAT_TEST_SERVICES_SCRIPT (set by the Makefile).
func Broker(t TB, command BrokerCommand, node int32) {
	t.Helper()
	if err := RunBroker(context.Background(), ServicesScript(t), command, node); err != nil {
		t.Fatalf("%v", err)
	}
}

// RunBroker is Broker for code that must not fail the test itself, such as
// a fault injected from a load's goroutine; script is ServicesScript(t).
func RunBroker(ctx context.Context, script string, command BrokerCommand, node int32) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, string(command), strconv.Itoa(int(node)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s %d: %w\n%s", filepath.Base(script), command, node, err, out)
	}
	return nil
}

// ChaosShort reports whether KCHAT_CHAOS_SHORT asks for CI's short run of
// the fault scenarios: smaller counts and shorter outages, the same
// assertions (make chaos; docs/reliability.md).
func ChaosShort() bool {
	v := os.Getenv("KCHAT_CHAOS_SHORT")
	return v != "" && v != "0"
}

// ChaosPick returns short in the short run and full otherwise.
func ChaosPick[T any](short, full T) T {
	if ChaosShort() {
		return short
	}
	return full
}
