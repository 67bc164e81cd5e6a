package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// MemoryResult holds the idle-connection memory scenario's raw figures.
type MemoryResult struct {
	Connections int       `json:"connections"`
	Kchat       MemoryRun `json:"kchat"`
	Baseline    MemoryRun `json:"baseline"`
}

// MemoryRun is one server's resident memory before and after the idle
// connections were opened and, for the gateway, its CPU while they idle.
type MemoryRun struct {
	RSSBefore  int64   `json:"rss_before_bytes"`
	RSSAfter   int64   `json:"rss_after_bytes"`
	PerConnKiB float64 `json:"per_connection_kib"`
	// IdleCPU is the server's CPU over a window of IdleSeconds before
	// the connections were opened and another while they idled (answering
	// the server's pings), in µs a second; IdleCPUPerConn is the
	// difference per connection.
	IdleSeconds    float64 `json:"idle_cpu_window_seconds,omitempty"`
	IdleCPUBefore  float64 `json:"idle_cpu_us_per_second_before,omitempty"`
	IdleCPUAfter   float64 `json:"idle_cpu_us_per_second_after,omitempty"`
	IdleCPUPerConn float64 `json:"idle_cpu_us_per_connection_second,omitempty"`
}

// memoryPingInterval is the gateway's KCHAT_WS_PING_INTERVAL in the memory
// scenario (its default): an idle-CPU window this long holds exactly one
// ping of each connection opened before it.
const memoryPingInterval = 30 * time.Second

// cpuRate is the CPU pid uses a second over d, in µs.
func cpuRate(pid int, d time.Duration) float64 {
	cpu0, start := procCPU(pid), time.Now()
	time.Sleep(d)
	return (procCPU(pid) - cpu0).Seconds() * 1e6 / time.Since(start).Seconds()
}

// sourceAddrs are the loopback addresses the load generator dials from,
// so 10,000 connections never run short of ephemeral ports.
const sourceAddrs = 8

// runMemory opens N idle WebSocket connections to the gateway, then to a
// minimal gorilla/websocket echo server with library defaults, and
// compares the resident memory each connection adds.
func (b *bench) runMemory(ctx context.Context) (*MemoryResult, error) {
	res := &MemoryResult{Connections: b.p.wsConns}
	prefix := b.prefix("memory")
	auth := newSessionAuth()
	gateway, err := b.bins.start(ctx, b.logDir, "gateway", "KCHAT_GATEWAY_ADDR",
		append(append(b.serviceEnv(prefix), "KCHAT_QUERY_PUBLISHER=kafka", "KCHAT_WS_PING_INTERVAL="+memoryPingInterval.String()), auth.env(b.p.wsConns)...)...)
	if err != nil {
		return nil, err
	}
	b.logf("memory: %d idle connections to the gateway", b.p.wsConns)
	wsURL := "ws" + strings.TrimPrefix(gateway.url, "http") + "/ws"
	res.Kchat, err = b.idleConns(ctx, gateway.pid(), wsURL, auth.header, true, b.p.idleCPUWindow)
	if stopErr := gateway.stop(); err == nil && stopErr != nil {
		err = stopErr
	}
	if err != nil {
		return nil, err
	}

	echo, err := startEcho(ctx)
	if err != nil {
		return nil, err
	}
	defer echo.stop()
	b.logf("memory: %d idle connections to the gorilla echo server", b.p.wsConns)
	res.Baseline, err = b.idleConns(ctx, echo.cmd.Process.Pid, "ws://"+echo.addr+"/ws", nil, false, 0)
	return res, err
}

// idleConns measures the server's RSS, opens the connections (with the
// handshake header headerOf gives connection i, when it is not nil; reading
// the session frame when the server sends one), lets the server settle,
// and measures again. With a cpuWindow, it also measures the server's CPU
// over a window that long before the first RSS reading and another after
// the second, in which the connections answer pings as a browser's
// would (without the window they are not read at all).
func (b *bench) idleConns(ctx context.Context, pid int, url string, headerOf func(i int) (http.Header, error), sessionFrame bool, cpuWindow time.Duration) (MemoryRun, error) {
	var run MemoryRun
	time.Sleep(time.Second)
	if cpuWindow > 0 {
		b.logf("memory: the server's CPU for %s with no connection", cpuWindow)
		run.IdleSeconds, run.IdleCPUBefore = cpuWindow.Seconds(), cpuRate(pid, cpuWindow)
	}
	// Right before the connections, so that RSS drift over the CPU window
	// is not charged to them.
	var err error
	if run.RSSBefore, err = rssBytes(pid); err != nil {
		return run, err
	}
	conns := make([]*websocket.Conn, b.p.wsConns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		errOnce  sync.Once
	)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(conns) || ctx.Err() != nil {
					return
				}
				var header http.Header
				var err error
				if headerOf != nil {
					header, err = headerOf(i)
				}
				var c *websocket.Conn
				if err == nil {
					c, err = dialSession(ctx, url, i, header, sessionFrame)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return run, firstErr
	}
	// Let the server's goroutines park and its allocator settle.
	time.Sleep(3 * time.Second)
	if run.RSSAfter, err = rssBytes(pid); err != nil {
		return run, err
	}
	run.PerConnKiB = float64(run.RSSAfter-run.RSSBefore) / float64(len(conns)) / 1024
	if cpuWindow > 0 {
		for _, c := range conns {
			// Reading answers the server's pings (gorilla's default ping
			// handler); it returns when the connection is closed.
			go func() {
				for {
					if _, _, err := c.NextReader(); err != nil {
						return
					}
				}
			}()
		}
		b.logf("memory: the server's CPU for %s with %d idle connections", cpuWindow, len(conns))
		run.IdleCPUAfter = cpuRate(pid, cpuWindow)
		run.IdleCPUPerConn = (run.IdleCPUAfter - run.IdleCPUBefore) / float64(len(conns))
	}
	return run, nil
}

// dialSession opens WebSocket i from one of the source addresses, with
// header, and, when the server sends one, reads the session frame.
func dialSession(ctx context.Context, url string, i int, header http.Header, sessionFrame bool) (*websocket.Conn, error) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%sourceAddrs))}
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second, ReadBufferSize: 256, WriteBufferSize: 256,
		NetDialContext: (&net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}).DialContext,
	}
	c, resp, err := d.DialContext(ctx, url, header)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (%s)", err, resp.Status)
		}
		return nil, err
	}
	if sessionFrame {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var f struct{ Type string }
		if err := c.ReadJSON(&f); err != nil || f.Type != "session" {
			_ = c.Close()
			return nil, fmt.Errorf("want a session frame, got %q: %w", f.Type, err)
		}
		_ = c.SetReadDeadline(time.Time{})
	}
	return c, nil
}

// echoProc is the baseline echo server, run as a process of its own (this
// binary with the wsecho argument) so its memory is measured alone.
type echoProc struct {
	cmd  *exec.Cmd
	addr string
}

func startEcho(ctx context.Context) (*echoProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "wsecho", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e := &echoProc{cmd: cmd, addr: addr}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return e, nil
		}
	}
	e.stop()
	return nil, errors.New("the echo server did not start within 10s")
}

func (e *echoProc) stop() {
	_ = e.cmd.Process.Kill()
	_ = e.cmd.Wait()
}

// serveEcho is the memory baseline: gorilla/websocket's echo example with
// the library's defaults (a zero Upgrader, except that it accepts any
// origin), on plain net/http.
func serveEcho(addr string) error {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
