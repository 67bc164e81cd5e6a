//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// The console a newcomer sees from `make run` (issue 16): the built binary,
// on a terminal and not, with and without a broker, stopped by a signal.

const bannerEnd = "Ctrl-C stops it.\n"

// buildKchat builds cmd/kchat once per test binary.
var buildKchat = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kchat-console")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kchat")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is the output so far, with a terminal's line ends made plain.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.ReplaceAll(s.b.String(), "\r\n", "\n")
}

// openPTY returns a pseudo-terminal's controller and its terminal.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatal(errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatal(errno)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close(); ptmx.Close() })
	return ptmx, tty
}

// kchatProcess is the binary running on free ports with extra environment.
type kchatProcess struct {
	cmd      *exec.Cmd
	out      *syncBuffer // stdout and stderr, as a terminal shows them
	consumer string
}

func startKchat(t *testing.T, terminal bool, extra ...string) *kchatProcess {
	t.Helper()
	bin, err := buildKchat()
	if err != nil {
		t.Fatal(err)
	}
	addr := func() string { return "127.0.0.1:" + strconv.Itoa(freePort(t)) }
	p := &kchatProcess{out: &syncBuffer{}}
	prod, gw := addr(), addr()
	p.consumer = addr()
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(), "KCHAT_LOG_FORMAT=", "KCHAT_LOG_LEVEL=info",
		"KCHAT_PRODUCER_ADDR="+prod, "KCHAT_CONSUMER_ADDR="+p.consumer, "KCHAT_GATEWAY_ADDR="+gw,
		"KCHAT_ANSWERER_ADDR="+addr(), "KCHAT_ADMIN_ADDR="+addr(),
		"KCHAT_PRODUCER_URL=http://"+prod, "KCHAT_CONSUMER_URL=http://"+p.consumer)
	p.cmd.Env = append(p.cmd.Env, extra...)
	if terminal {
		ptmx, tty := openPTY(t)
		p.cmd.Stdout, p.cmd.Stderr = tty, tty
		go func() { _, _ = io.Copy(p.out, ptmx) }()
	} else {
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _, _ = p.cmd.Process.Wait() })
	return p
}

// waitBanner waits for the banner's last line and returns the output then.
func (p *kchatProcess) waitBanner(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.out.String(), bannerEnd) {
		if time.Now().After(deadline) {
			t.Fatalf("no banner within 60 s:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p.out.String()
}

// stop sends sig and returns the exit code.
func (p *kchatProcess) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("kchat did not stop within 40 s of %v:\n%s", sig, p.out.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// logLines are the output's lines that are not the banner's.
func logLines(out string) []string {
	before, _, _ := strings.Cut(out, "kchat is running")
	return strings.Split(strings.TrimSpace(before), "\n")
}

func TestConsoleOnATerminalIsTextWithTheBannerLast(t *testing.T) {
	t.Parallel()
	p := startKchat(t, true)
	out := p.waitBanner(t)
	for _, l := range logLines(out) {
		if !strings.HasPrefix(l, "time=") || strings.Contains(l, "component=fx") || strings.Contains(l, "component=franz-go") {
			t.Errorf("log line on a terminal is not text, or is a library's info chatter: %q", l)
		}
	}
	if n := len(logLines(out)); n > 30 {
		t.Errorf("%d log lines before the banner; a person would not find it", n)
	}
	for _, want := range []string{"chat page  http://127.0.0.1:", "/docs", "/metrics", "(embedded, in memory): answers"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	// The banner stays last: nothing is logged once the process is up.
	time.Sleep(3 * time.Second)
	if rest := strings.TrimSpace(p.out.String()[strings.Index(p.out.String(), bannerEnd)+len(bannerEnd):]); rest != "" {
		t.Errorf("output after the banner:\n%s", rest)
	}
	if code := p.stop(t, syscall.SIGINT); code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0:\n%s", code, p.out.String())
	}
}

func TestConsoleNotOnATerminalIsJSON(t *testing.T) {
	t.Parallel()
	p := startKchat(t, false)
	out := p.waitBanner(t)
	for _, l := range logLines(out) {
		if !json.Valid([]byte(l)) {
			t.Errorf("log line not on a terminal is not JSON: %q", l)
		}
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, p.out.String())
	}
}

func TestConsoleWithoutABroker(t *testing.T) {
	t.Parallel()
	p := startKchat(t, false, "KCHAT_KAFKA_BROKERS=127.0.0.1:"+strconv.Itoa(freePort(t)), "KCHAT_LOG_FORMAT=text")
	out := p.waitBanner(t)
	if !strings.Contains(out, "kchat is running, but a dependency does not answer") || !strings.Contains(out, "DOES NOT ANSWER") {
		t.Errorf("the banner does not say Kafka does not answer:\n%s", out)
	}
	for _, path := range []string{"/messages?type=query", "/messages?topic=query&latest=true&wait=0s"} {
		resp, err := http.Get("http://" + p.consumer + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s with no broker = %d %q %s; want 503 problem+json with Retry-After", path, resp.StatusCode, resp.Header, body)
		}
	}
	if code := p.stop(t, syscall.SIGINT); code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0", code)
	}
}
