package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kchat/kchat/internal/history"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// TestIntegrationChaosRedisDown stops the sessions' Redis for 45 s (10 s in
// the short run) while visitors chat (issue 14, Build 3 g). The Redis is
// the test's own, with AOF, stopped with SIGTERM (it writes and syncs its
// log first) and started again on the same directory: it keeps its data,
// so no session may be lost. The gateway and the answerer are processes of
// the real binaries, so each keeps its own Redis connections through the
// outage, as deployed. Redis stops once a number of questions were
// acknowledged, with questions in flight. Expected and asserted: while it
// is down the gateway fails closed (a resume and POST /chat get 503, a
// question on an open socket or a new one gets unavailable, and no
// question is published); once it answers PING again, a question is
// answered within 2 s; every session's turns from before are still there,
// under the same session; every question acknowledged, before the outage
// or after, is answered exactly once (the history checker, and each
// visitor's socket or, for an answer the gateway could not check while
// Redis was down, its session's history).
func TestIntegrationChaosRedisDown(t *testing.T) {
	outage := testenv.ChaosPick(10*time.Second, 45*time.Second)
	chatters, before, later := testenv.ChaosPick(4, 8), testenv.ChaosPick(40, 160), testenv.ChaosPick(40, 160)
	rs := startRedisServer(t)
	rig := newChatRig(t, "chaos-redis", rs.url())
	h := history.New("redis-down")
	l := newChatLoad(rig, h, 250*time.Millisecond)
	defer l.end(0)
	start := time.Now()

	// The probe, a visitor the test drives: its session has an exchange
	// before the outage.
	probe := l.newChatter("probe", 20)
	ps := l.connect(probe, nil)
	if ps == nil {
		t.Fatalf("the probe could not connect: %v", probe.problems)
	}
	defer ps.close()
	if q := l.ask(probe, ps); q.id == "" {
		t.Fatalf("the probe's first question: %+v", q)
	} else if _, ok := l.awaitAnswer(probe, ps, q.id, time.Minute); !ok {
		t.Fatal("the probe's first question was not answered within a minute")
	}
	l.start(chatters, 30)
	l.await(t, l.when(func() bool { return l.acks >= before && everyAsked(l) }), 2*time.Minute, "acknowledgements before the outage")
	kept := sessionsNow(t, l)

	if err := rs.stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	failsClosed(t, l, probe, ps)
	l.await(t, l.when(func() bool { return everyRefused(l) }), outage, "unavailable on every chatter's socket during the outage")
	time.Sleep(time.Until(down.Add(outage))) // the length of the outage, the fault itself
	up := rs.start()

	// Recovery: the probe asks from the moment Redis answers PING.
	var q asked
	for q.id == "" {
		if q = l.ask(probe, ps); !q.open || q.id == "" && q.code != "unavailable" && q.code != "rate_limited" {
			t.Fatalf("the probe's question after the outage: %+v", q)
		}
		if q.id == "" {
			if time.Since(up) > 30*time.Second {
				t.Fatal("no question acknowledged within 30 s of Redis answering PING")
			}
			time.Sleep(200 * time.Millisecond) // the socket's rate: 5 a second
		}
	}
	answered, ok := l.awaitAnswer(probe, ps, q.id, 30*time.Second)
	if !ok {
		t.Fatal("the probe's question after the outage was not answered within 30 s")
	}
	recovery := answered.Sub(up)
	resumesWhole(t, l, probe, kept[probe])
	l.await(t, l.acked(l.ackCount()+later), 2*time.Minute, "acknowledgements after the outage")
	// The answers still due arrive within the recovery; those the gateway
	// dropped during the outage never come live (sessionsKept finds them
	// in the histories), so the drain is bounded well short of a minute.
	l.end(15 * time.Second)

	ct := l.checkTopics(t)
	view := l.checkChatters(t, ct)
	during := outcomesBetween(h, down, up)
	inHistory := sessionsKept(t, l, kept, view)
	t.Logf("Redis stopped after %d acknowledgements for %s; during it %v; the probe's question answered %s after Redis answered PING (the first live answer to anyone %s after it); %d answers reached their sockets, %d only the session's history; %d questions in all, %s",
		before, up.Sub(down).Round(time.Millisecond), during, recovery.Round(time.Millisecond),
		l.firstAnswerAfter(up).Round(time.Millisecond), view.delivered, inHistory, ct.queries.Invoked, time.Since(start).Round(time.Second))
	if recovery > 2*time.Second {
		t.Errorf("chat answered again %s after Redis answered PING, want within 2 s", recovery.Round(time.Millisecond))
	}
	for outcome, n := range during {
		if !strings.HasPrefix(outcome, "fail ") {
			t.Errorf("%d questions asked while Redis was down ended %q, want each refused (unavailable)", n, outcome)
		}
	}
	if ct.queries.Unknown > 0 {
		t.Errorf("%d questions got neither an ack nor an error, want none: the gateway answers every question", ct.queries.Unknown)
	}
	for _, c := range l.all {
		if len(c.closes) > 0 {
			t.Errorf("%s: the gateway closed its socket (%v): an outage of Redis must not", c.name, c.closes)
		}
	}
}

// everyAsked reports whether every chatter the load runs has a question
// acknowledged, so its session is stored (called with l.mu held).
func everyAsked(l *chatLoad) bool {
	for _, c := range l.all {
		if len(c.acked) == 0 {
			return false
		}
	}
	return true
}

// everyRefused reports whether every chatter has had a question refused
// as unavailable (called with l.mu held).
func everyRefused(l *chatLoad) bool {
	for _, c := range l.all {
		if c.refused["unavailable"] == 0 {
			return false
		}
	}
	return true
}

// sessionsNow returns the turn ids of every chatter's session, as its
// owner reads them now.
func sessionsNow(t *testing.T, l *chatLoad) map[*chatter][]string {
	t.Helper()
	l.mu.Lock()
	all := slices.Clone(l.all)
	l.mu.Unlock()
	out := map[*chatter][]string{}
	for _, c := range all {
		ids, status, err := sessionTurns(context.Background(), l.rig, c.v, c.session)
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: the history of session %s: %d %v", c.name, c.session, status, err)
		}
		out[c] = ids
	}
	return out
}

// failsClosed checks, with Redis down, that a resume and POST /chat get
// 503, and that a question on the probe's open socket and on a new socket
// gets unavailable (refused: the history expects it nowhere in Kafka).
func failsClosed(t *testing.T, l *chatLoad, probe *chatter, ps *socket) {
	t.Helper()
	if s, status, err := dialSocket(l.rig, probe.v, "?session_id="+probe.session); err == nil || status != http.StatusServiceUnavailable {
		if s != nil {
			s.close()
		}
		t.Errorf("a resume with Redis down: %d %v, want 503", status, err)
	}
	marker := l.h.Scenario() + "-probe-chat"
	op := l.h.Invoke(history.Send{ID: marker, Key: probe.session, Payload: marker})
	gw, _ := l.rig.gateway()
	resp, err := httpClient(probe.v).Post(gw.URL+"/chat", "application/json",
		strings.NewReader(fmt.Sprintf(`{"session_id":%q,"message":%q}`, probe.session, questionText(marker))))
	if err != nil {
		l.h.Unknown(op, err.Error())
		t.Errorf("POST /chat with Redis down: %v, want 503", err)
	} else {
		_ = resp.Body.Close()
		// Refused before anything is published: the session's owner could
		// not be checked.
		l.h.Fail(op, fmt.Sprintf("status %d", resp.StatusCode))
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("POST /chat with Redis down: %d, want 503", resp.StatusCode)
		}
	}
	if q := l.ask(probe, ps); q.code != "unavailable" {
		t.Errorf("a question on an open socket with Redis down: %+v, want unavailable", q)
	}
	fresh := l.newChatter("fresh", 21)
	fs := l.connect(fresh, nil) // a socket opens without the store: a session is stored at its first question
	if fs == nil {
		t.Fatalf("a new socket with Redis down: %v", fresh.problems)
	}
	defer fs.close()
	if q := l.ask(fresh, fs); q.code != "unavailable" {
		t.Errorf("a question on a new socket with Redis down: %+v, want unavailable", q)
	}
	if resp, err := http.Get(gw.URL + "/readyz"); err == nil {
		_ = resp.Body.Close()
		t.Logf("with Redis down the gateway's /readyz says %d", resp.StatusCode)
	}
}

// resumesWhole resumes the probe's session on a new socket: it is the same
// session, and its history holds the turns it had before the outage.
func resumesWhole(t *testing.T, l *chatLoad, probe *chatter, kept []string) {
	t.Helper()
	s, status, err := dialSocket(l.rig, probe.v, "?session_id="+probe.session)
	if err != nil {
		t.Fatalf("a resume after the outage: %d %v", status, err)
	}
	defer s.close()
	var hist frame
	for hist == nil {
		f, closed, timedOut := s.next(after(10 * time.Second))
		switch {
		case closed || timedOut:
			t.Fatalf("a resume after the outage: no history frame (closed: %v)", closed)
		case f["type"] == "session" && f["session_id"] != probe.session:
			t.Fatalf("a resume of session %s after the outage opened session %v", probe.session, f["session_id"])
		case f["type"] == "history":
			hist = f
		}
	}
	have := map[string]bool{}
	turns, _ := hist["turns"].([]any)
	for _, x := range turns {
		turn, _ := x.(map[string]any)
		id, _ := turn["message_id"].(string)
		have[id] = true
	}
	for _, id := range kept {
		if !have[id] {
			t.Errorf("resumed after the outage, session %s lacks turn %s it had before (%d turns now, %d before)", probe.session, id, len(turns), len(kept))
		}
	}
}

// outcomesBetween counts the questions invoked after from and completed
// before to, by outcome and reason.
func outcomesBetween(h *history.History, from, to time.Time) map[string]int {
	out := map[string]int{}
	for _, op := range h.Ops() {
		if op.InvokedAt.After(from) && op.Completed != 0 && op.CompletedAt.Before(to) {
			out[op.Outcome.String()+" "+op.Reason]++
		}
	}
	return out
}

// sessionsKept checks, after the run, that every chatter's session still
// holds every turn it held before the outage, and the answers that never
// reached the chatter's socket (the gateway drops an answer it cannot check
// against the store in time; it stays in the history). It returns how many
// such answers the histories held.
func sessionsKept(t *testing.T, l *chatLoad, kept map[*chatter][]string, view chatterView) int {
	t.Helper()
	found := 0
	for c, before := range kept {
		ids, status, err := sessionTurns(context.Background(), l.rig, c.v, c.session)
		if err != nil || status != http.StatusOK {
			t.Errorf("%s: the history of session %s after the run: %d %v", c.name, c.session, status, err)
			continue
		}
		have := map[string]bool{}
		for _, id := range ids {
			have[id] = true
		}
		for _, id := range before {
			if !have[id] {
				t.Errorf("%s: session %s lost turn %s it held before the outage (%d turns now, %d before)", c.name, c.session, id, len(ids), len(before))
			}
		}
		for _, id := range view.missed[c] {
			if have[id] {
				found++
			} else {
				t.Errorf("%s: answer %s reached neither its socket nor the session's history", c.name, id)
			}
		}
	}
	return found
}

// redisServer is a Redis of the test's own, with AOF (appendonly): stopped
// with SIGTERM it writes and syncs its log, and started again on the same
// directory it has every write back.
type redisServer struct {
	t    *testing.T
	bin  string
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer
}

// startRedisServer starts a Redis (Debian's redis-server) on a free port
// and a directory of the test's; it skips, or fails under CI, without one.
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("this test runs a Redis of its own and needs redis-server: %v", err)
		}
		t.Skipf("this test runs a Redis of its own and needs redis-server: %v", err)
	}
	r := &redisServer{t: t, bin: bin, addr: proctest.FreeAddr(t), dir: t.TempDir(), logs: &syncBuffer{}}
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("redis-server logged:\n%s", r.logs.String())
		}
	})
	r.start()
	return r
}

func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

// start runs redis-server on its directory and returns when it first
// answered PING.
func (r *redisServer) start() time.Time {
	r.t.Helper()
	host, port, err := net.SplitHostPort(r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cmd = exec.Command(r.bin, "--bind", host, "--port", port, "--dir", r.dir,
		"--appendonly", "yes", "--save", "", "--daemonize", "no", "--logfile", "")
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan struct{})
	r.done = done
	go func() { _ = r.cmd.Wait(); close(done) }()
	rc := goredis.NewClient(&goredis.Options{Addr: r.addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer rc.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rc.Ping(ctx).Err()
		cancel()
		if err == nil {
			return time.Now()
		}
		select {
		case <-done:
			r.t.Fatalf("redis-server exited at start:\n%s", r.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server does not answer PING after 30 s: %v\n%s", err, r.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits until Redis exited, with status 0.
func (r *redisServer) stop() error {
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("redis-server still runs 30 s after SIGTERM")
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("redis-server exited with status %d after SIGTERM:\n%s", code, r.logs.String())
	}
	return nil
}

func (r *redisServer) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}
