package main

import (
	"testing"
	"time"

	"github.com/kchat/kchat/internal/history"
	"github.com/kchat/kchat/internal/testenv"
)

// sigtermShutdownTimeout is KCHAT_SHUTDOWN_TIMEOUT in the SIGTERM scenario:
// the process must be gone within it.
const sigtermShutdownTimeout = 5 * time.Second

// TestIntegrationChaosProducerSIGTERM stops the producer with SIGTERM under
// the scenarios' load (issue 14, Build 3 h), at the Nth acknowledgement, with
// posts in flight. Expected and asserted: the process exits with status 0
// within KCHAT_SHUTDOWN_TIMEOUT; every post it acknowledged is in Kafka once
// (0 lost, 0 duplicated); a post in flight at the signal is answered (some
// were acknowledged after it); and no post left unanswered was written
// (unknown that landed 0): a request the server read is finished, one it did
// not read is refused whole, so a client can send it again elsewhere.
func TestIntegrationChaosProducerSIGTERM(t *testing.T) {
	c := newChaos(t, "chaos-producer-term")
	t.Setenv("KCHAT_SHUTDOWN_TIMEOUT", sigtermShutdownTimeout.String()) // inherited by the process
	p := c.startProducer(t)
	termAt := testenv.ChaosPick[int64](1000, 5000)
	h := history.New("producer-sigterm")
	load := startLoad(h, p.URL, chaosClients)
	defer load.end()

	load.await(t, load.acked(termAt), time.Minute, "acknowledgements before the SIGTERM")
	signalled := time.Now()
	err := p.Stop(sigtermShutdownTimeout + 30*time.Second)
	exited := time.Since(signalled)
	load.end()

	rep := c.check(t, h)
	ops := h.Ops()
	after := 0
	for _, op := range ops {
		if op.Outcome == history.OK && op.InvokedAt.Before(signalled) && op.CompletedAt.After(signalled) {
			after++
		}
	}
	t.Logf("SIGTERM at ack %d: exited %s after it; %d posts in flight at the signal acknowledged after it; %s",
		termAt, exited.Round(time.Millisecond), after, rep)
	if err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
	if exited > sigtermShutdownTimeout {
		t.Errorf("the producer exited %s after SIGTERM, want within KCHAT_SHUTDOWN_TIMEOUT (%s)", exited.Round(time.Millisecond), sigtermShutdownTimeout)
	}
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	if after == 0 {
		t.Error("no post in flight at the SIGTERM was acknowledged after it: the stop missed the load")
	}
	if rep.UnknownLanded > 0 {
		t.Errorf("%d posts got no answer but were written (%v): a request in flight was cut", rep.UnknownLanded, reasons(ops))
	}
	if rep.Fail > 0 {
		t.Errorf("%d posts refused (%v), want none", rep.Fail, reasons(ops))
	}
}
