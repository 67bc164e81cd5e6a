package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/kchat/kchat/internal/history"
	"github.com/kchat/kchat/internal/testenv"
)

// sigtermShutdownTimeout is KCHAT_SHUTDOWN_TIMEOUT in the SIGTERM scenario:
// the process must be gone within it.
const sigtermShutdownTimeout = 5 * time.Second

// TestIntegrationChaosAnswererSIGTERM stops the answerer with SIGTERM while
// a steady stream of questions flows (issue 14, Build 3 h), once a number
// of them were answered, and restarts it under the same instance id once
// it exited; the stream goes on. Expected: the process exits, with status
// 0, within KCHAT_SHUTDOWN_TIMEOUT, and every question is answered exactly
// once: a graceful stop commits or aborts the batch in flight, and the
// restart redoes what was aborted.
func TestIntegrationChaosAnswererSIGTERM(t *testing.T) {
	brokers := testenv.ClusterBrokers(t)
	redisURL := testenv.RedisURL(t)
	between := testenv.ChaosPick(150, 600) // answered before the SIGTERM, and again after the restart
	// The rig sets the answerer's own variables; the process inherits the
	// rest of the test's environment.
	t.Setenv("KCHAT_SHUTDOWN_TIMEOUT", sigtermShutdownTimeout.String())
	rig := newChaosRig(t, brokers, redisURL, "chaos-answerer-term")
	rig.start("a")
	rig.serving("a")
	h := history.New("answerer-sigterm")
	start := time.Now()
	s := startStream(rig, h)
	defer s.end()

	s.awaitAnswered(t, between)
	p := rig.procs["a"]
	termAt := time.Now()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(sigtermShutdownTimeout + 30*time.Second):
		t.Fatalf("the answerer still runs %s after SIGTERM:\n%s", time.Since(termAt).Round(time.Millisecond), p.logs())
	}
	exitedIn := time.Since(termAt)
	code := p.cmd.ProcessState.ExitCode()
	rig.start("a")
	restarted := time.Now()
	rig.serving("a")
	s.awaitAnswered(t, 2*between)
	s.end()

	reps, answered := checkStream(t, rig, s)
	latency, crossing := s.slowest(answered), s.crossing(answered, termAt)
	t.Logf("SIGTERM after %d answers: exited with status %d %s after it, restarted %s after it; %d questions asked before it answered after it; the stream's slowest answer %s after its question; %d questions in all (the stream's %d), %s",
		between, code, exitedIn.Round(time.Millisecond), restarted.Sub(termAt).Round(time.Millisecond), crossing,
		latency.Round(10*time.Millisecond), reps[0].Invoked, len(s.ids()), time.Since(start).Round(time.Second))
	if code != 0 {
		t.Errorf("the answerer exited with status %d after SIGTERM, want 0:\n%s", code, p.logs())
	}
	if crossing == 0 {
		t.Errorf("no question asked before the SIGTERM was answered after it: the stop missed the stream")
	}
	if exitedIn > sigtermShutdownTimeout {
		t.Errorf("the answerer exited %s after SIGTERM, want within KCHAT_SHUTDOWN_TIMEOUT (%s)", exitedIn.Round(time.Millisecond), sigtermShutdownTimeout)
	}
}
