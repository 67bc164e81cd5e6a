package main

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/internal/history"
	"github.com/kchat/kchat/internal/testenv"
)

// sigtermShutdownTimeout is the gateway's KCHAT_SHUTDOWN_TIMEOUT in the
// SIGTERM scenario: the process must be gone within it.
const sigtermShutdownTimeout = 5 * time.Second

// TestIntegrationChaosGatewaySIGTERM stops the gateway with SIGTERM while
// visitors chat (issue 14, Build 3 h), and starts another gateway in its
// place; each visitor reconnects to it and resumes its session after the
// last turn it saw, as the page does. The stop comes with an answer in
// flight to every visitor, made so on events: once a number of questions
// were acknowledged, the answerer is frozen (SIGSTOP) until every visitor
// has a question acknowledged and not answered; then the gateway gets
// SIGTERM, and the answerer is thawed once the gateway is gone, so those
// answers are written while no gateway runs. Expected and asserted: the process exits with status 0 within KCHAT_SHUTDOWN_TIMEOUT;
// every socket got close 1001 (going away), once; every question
// acknowledged, before the stop or after, is in the query topic once and
// answered once (the history checker), and its answer reached its visitor,
// live or in the history frame of the resume; no visitor was given another
// session or another's answer.
func TestIntegrationChaosGatewaySIGTERM(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	chatters, pace := testenv.ChaosPick(10, 50), testenv.ChaosPick(500*time.Millisecond, time.Second)
	before, later := testenv.ChaosPick(60, 300), testenv.ChaosPick(60, 300)
	rig := newChatRig(t, "chaos-gateway-term", redisURL, "KCHAT_SHUTDOWN_TIMEOUT="+sigtermShutdownTimeout.String())
	h := history.New("gateway-sigterm")
	l := newChatLoad(rig, h, pace)
	defer l.end(0)
	start := time.Now()
	l.start(chatters, 30)
	l.await(t, l.when(func() bool { return l.acks >= before && everyAsked(l) }), 2*time.Minute, "acknowledgements before the SIGTERM")

	answerer := rig.procs[0]
	if err := answerer.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := answerer.Signal(syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	defer thaw()
	l.await(t, l.when(func() bool { return everyWaiting(l) }), time.Minute, "a question waiting for its answer on every socket")
	pending := l.pending()
	gw, _ := rig.gateway()
	termAt := time.Now()
	err := gw.Stop(sigtermShutdownTimeout + 30*time.Second)
	exited := time.Since(termAt)
	thaw()
	if err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
	rig.replaceGateway()
	replaced := time.Since(termAt)
	l.await(t, l.acked(l.ackCount()+later), 2*time.Minute, "acknowledgements after the restart")
	l.end(time.Minute)

	ct := l.checkTopics(t)
	view := l.checkChatters(t, ct)
	resumed, late := 0, 0
	for _, c := range l.all {
		for _, id := range pending[c] {
			if c.got[id] > 0 {
				late++
			}
		}
		if !slices.Equal(c.closes, []int{websocket.CloseGoingAway}) {
			t.Errorf("%s: close codes %v, want one close 1001 (going away)", c.name, c.closes)
		} else {
			resumed++
		}
		for _, id := range view.missed[c] {
			t.Errorf("%s: answer %s to an acknowledged question reached it neither live nor in the resume's history", c.name, id)
		}
	}
	t.Logf("SIGTERM after %d acknowledgements: exited %s after it, another gateway serving %s after it; %d of %d sockets closed 1001 and resumed; %d answers reached their sockets, %d of them in flight at the stop (%d); in flight at the stop: %d questions unanswered (%d of them published); %d questions in all, %s",
		before, exited.Round(time.Millisecond), replaced.Round(time.Millisecond), resumed, len(l.all), view.delivered, late, countAll(pending),
		ct.queries.Unknown, ct.queries.UnknownLanded, ct.queries.Invoked, time.Since(start).Round(time.Second))
	if exited > sigtermShutdownTimeout {
		t.Errorf("the gateway exited %s after SIGTERM, want within KCHAT_SHUTDOWN_TIMEOUT (%s)", exited.Round(time.Millisecond), sigtermShutdownTimeout)
	}
	if late != countAll(pending) {
		t.Errorf("%d of the %d answers in flight at the stop reached their visitors", late, countAll(pending))
	}
	if ct.queries.Fail > 0 {
		t.Errorf("%d questions refused, want none: %s", ct.queries.Fail, fmt.Sprint(ct.queries))
	}
}

// everyWaiting reports whether every chatter has a question acknowledged
// and not answered (called with l.mu held).
func everyWaiting(l *chatLoad) bool {
	for _, c := range l.all {
		if len(missing(c)) == 0 {
			return false
		}
	}
	return true
}

// pending returns, per chatter, the answers it waits for now.
func (l *chatLoad) pending() map[*chatter][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[*chatter][]string{}
	for _, c := range l.all {
		out[c] = missing(c)
	}
	return out
}

func countAll(m map[*chatter][]string) int {
	n := 0
	for _, ids := range m {
		n += len(ids)
	}
	return n
}
