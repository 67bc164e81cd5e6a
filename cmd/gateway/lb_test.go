package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/internal/proctest"
)

// The load balancer of the replicated deployment (README, "Scaling out"):
// HAProxy with deploy/haproxy/haproxy.cfg, the file docker-compose.scale.yml
// mounts, run here by scripts/haproxy.sh with Debian's package.

// requireHAProxy skips the test when no haproxy binary is installed, and
// fails it under CI, which installs one (.ci/run: scripts/haproxy.sh
// install): CI must never pass by skipping.
func requireHAProxy(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err == nil {
		return
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return
	}
	msg := "no haproxy binary: this test runs HAProxy in front of the gateways. Run `bash scripts/haproxy.sh install` (Debian's haproxy package)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so a missing dependency is a failure, not a skip)")
	}
	t.Skip(msg)
}

// loadBalancer is an HAProxy that scripts/haproxy.sh started.
type loadBalancer struct {
	addr  string // where clients connect
	stats string // its stats page
	dir   string // its state: pid file, log
}

// startLoadBalancer runs scripts/haproxy.sh up in front of gateways (their
// host:port), on free loopback ports and a state dir of the test's own;
// down when the test ends.
func startLoadBalancer(t *testing.T, gateways []string) *loadBalancer {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "haproxy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	lb := &loadBalancer{addr: proctest.FreeAddr(t), stats: proctest.FreeAddr(t), dir: t.TempDir()}
	env := append(os.Environ(), "GATEWAYS="+strings.Join(gateways, ","), "LB_ADDR="+lb.addr, "LB_STATS_ADDR="+lb.stats, "LB_DIR="+lb.dir)
	run := func(command string) (string, string, error) {
		cmd := exec.Command("bash", script, command)
		cmd.Env = env
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, errOut, err := run("up")
	if err != nil {
		t.Fatalf("scripts/haproxy.sh up: %v\n%s%s", err, out, errOut)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(lb.dir, "haproxy.log"))
			t.Logf("HAProxy's log:\n%s", tail(string(log), 40))
		}
		if out, errOut, err := run("down"); err != nil {
			t.Errorf("scripts/haproxy.sh down: %v\n%s%s", err, out, errOut)
		}
	})
	if want := "export KCHAT_GATEWAY_WS=ws://" + lb.addr + "/ws"; !strings.Contains(out, want) {
		t.Errorf("scripts/haproxy.sh up printed %q, want a line %q", out, want)
	}
	return lb
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// servers reads HAProxy's stats CSV: each gateway's status (UP, DOWN, …),
// last check and connections so far, by server name.
func (lb *loadBalancer) servers(t *testing.T) map[string]serverStats {
	t.Helper()
	resp, err := http.Get("http://" + lb.stats + "/;csv")
	if err != nil {
		t.Fatalf("HAProxy's stats: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]serverStats{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// pxname,svname,qcur,qmax,scur,smax,slim,stot,…,status (18th),… check_status (37th)
		f := strings.Split(sc.Text(), ",")
		if len(f) < 37 || f[0] != "gateways" || f[1] == "BACKEND" || f[1] == "FRONTEND" {
			continue
		}
		total, _ := strconv.Atoi(f[7])
		out[f[1]] = serverStats{status: f[17], check: f[36], total: total}
	}
	return out
}

type serverStats struct {
	status, check string
	total         int
}

// waitUp waits until HAProxy has checked exactly n gateways healthy (and
// the others, if it knows more, down).
func (lb *loadBalancer) waitUp(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := lb.servers(t)
		up := 0
		for _, srv := range s {
			if srv.status == "UP" && srv.check == "L7OK" {
				up++
			}
		}
		if up == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy does not see %d healthy gateways within 20 s: %+v", n, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gaugeValue reads the metric series name from the admin listener at
// admin; absent, the test fails.
func gaugeValue(t *testing.T, admin, name string) float64 {
	t.Helper()
	v, ok := scrape(t, admin, name)
	if !ok {
		t.Fatalf("%s is not on %s/metrics", name, admin)
	}
	return v
}

// scrape reads series (a name, with its labels as /metrics prints them)
// from the admin listener at admin, and whether it is there.
func scrape(t *testing.T, admin, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", series, line, err)
			}
			return f, true
		}
	}
	return 0, false
}

// TestIntegrationLoadBalancer: HAProxy with the repository's config, run by
// scripts/haproxy.sh, in front of 4 gateway processes (and a producer,
// consumer and answerer) on the real Kafka and Redis. Sessions from
// clients of their own addresses connect through it: they are spread over
// every gateway (leastconn), every answer arrives once on the socket that
// asked, and the gateways see each client's own address, from the
// X-Forwarded-For they trust from the proxy alone: with one socket per
// address allowed, every client gets its socket, and a client that names
// other addresses in an X-Forwarded-For of its own still gets only one
// socket per gateway.
func TestIntegrationLoadBalancer(t *testing.T) {
	requireHAProxy(t)
	d := deploy(t, "it-lb", 0)
	bin := proctest.Build(t, "github.com/kchat/kchat/cmd/gateway")
	const gateways, sessions, perSession = 4, 24, 3
	var hosts, admins []string
	for range gateways {
		admin := proctest.FreeAddr(t)
		gw := proctest.Start(t, bin, "KCHAT_GATEWAY_ADDR", append(d.gatewayEnv(),
			"KCHAT_ADMIN_ADDR="+admin,
			// HAProxy connects to loopback gateways from 127.0.0.1; the
			// clients below dial from other loopback addresses.
			"KCHAT_TRUSTED_PROXIES=127.0.0.1",
			// One socket per client address: a gateway that saw every
			// client as the proxy would take one socket in all.
			"KCHAT_WS_MAX_CONNS_PER_ADDR=1")...)
		hosts, admins = append(hosts, hostOf(gw)), append(admins, admin)
	}
	lb := startLoadBalancer(t, hosts)
	lb.waitUp(t, gateways)

	// Every client connects, each from an address of its own, and holds
	// its socket.
	conns := make([]*websocket.Conn, sessions)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for i := range sessions {
		wg.Go(func() {
			conn, status, err := newVisitor(t, 10+i).dial(lb.addr)
			if err != nil {
				fail("session %d: dial through HAProxy: %d %v", i, status, err)
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			var f frame
			if err := conn.ReadJSON(&f); err != nil || f["type"] != "session" {
				fail("session %d: first frame %v, %v; want session", i, f, err)
			}
			conns[i] = conn
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for _, p := range problems {
		t.Error(p)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Spread: each gateway holds some of them (its own gauge), and they
	// add up to every client.
	open, spread := 0, make([]int, gateways)
	for i, admin := range admins {
		spread[i] = int(gaugeValue(t, admin, "kchat_ws_connections_open"))
		open += spread[i]
	}
	if open != sessions {
		t.Errorf("the gateways hold %d sockets (%v), want %d", open, spread, sessions)
	}
	for i, n := range spread {
		if n == 0 {
			t.Errorf("gateway %d holds no socket (%v): leastconn over healthy gateways gives each a share", i+1, spread)
		}
	}
	t.Logf("%d sessions through HAProxy: %v sockets on the %d gateways", sessions, spread, gateways)

	// Every session asks; every answer arrives once, on its socket.
	answered := 0
	for i, conn := range conns {
		wg.Go(func() {
			acks, answers := map[string]bool{}, map[string]int{}
			for q := range perSession {
				if err := conn.WriteJSON(frame{"type": "query", "id": strconv.Itoa(q), "message": fmt.Sprintf("How do I start kchat? (%d/%d)", i, q)}); err != nil {
					fail("session %d: write: %v", i, err)
					return
				}
			}
			_ = conn.SetReadDeadline(time.Now().Add(40 * time.Second))
			for len(acks) < perSession || sumCounts(answers) < perSession {
				var f frame
				if err := conn.ReadJSON(&f); err != nil {
					fail("session %d: read after %d acks, %d answers: %v", i, len(acks), sumCounts(answers), err)
					return
				}
				switch f["type"] {
				case "ack":
					acks[f["message_id"].(string)] = true
				case "answer":
					answers[f["reply_to"].(string)]++
				case "error":
					fail("session %d: error frame %v", i, f)
					return
				}
			}
			// A little longer: a duplicate or a foreign answer would show now.
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			for {
				var f frame
				if err := conn.ReadJSON(&f); err != nil {
					break
				}
				if f["type"] == "answer" {
					answers[f["reply_to"].(string)]++
				}
			}
			for id, n := range answers {
				if !acks[id] {
					fail("session %d: got an answer to %s, which it did not ask", i, id)
				} else if n != 1 {
					fail("session %d: answer to %s arrived %d times", i, id, n)
				}
			}
			mu.Lock()
			answered += len(answers)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	if answered != sessions*perSession {
		t.Errorf("%d answers delivered, want %d", answered, sessions*perSession)
	}
	for i, c := range conns {
		c.Close()
		conns[i] = nil
	}
	stats := lb.servers(t)
	t.Logf("%d answers, each once, on the right socket; HAProxy's connections per gateway so far: %+v", answered, stats)

	// Wait for the gateways to have let go of those sockets.
	deadline := time.Now().Add(10 * time.Second)
	for _, admin := range admins {
		for gaugeValue(t, admin, "kchat_ws_connections_open") != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the gateway at admin %s still holds sockets 10 s after its clients closed them", admin)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// One client opens a socket more than there are gateways, each naming
	// another address in X-Forwarded-For. HAProxy adds the client's own
	// after it, and a gateway believes nothing left of what its trusted
	// proxy added: one socket per gateway, the last refused.
	mallory := newVisitor(t, 200)
	var held []*websocket.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	refused := 0
	for k := range gateways + 1 {
		h := http.Header{"X-Forwarded-For": {fmt.Sprintf("192.0.2.%d", k+1)}}
		conn, resp, err := mallory.dialer.Dial("ws://"+lb.addr+"/ws", h)
		if resp != nil {
			_ = resp.Body.Close()
		}
		switch {
		case err == nil:
			held = append(held, conn)
		case resp != nil && resp.StatusCode == http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("socket %d of one client: %v (%v)", k+1, err, resp)
		}
	}
	if len(held) != gateways || refused != 1 {
		t.Errorf("one client's %d sockets, each with an X-Forwarded-For of its own: %d accepted, %d refused with 429; want %d and 1 (one per gateway)",
			gateways+1, len(held), refused, gateways)
	}
}
