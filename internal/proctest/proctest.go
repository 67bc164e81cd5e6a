// Package proctest builds kchat's binaries and runs them as separate
// processes, so tests can signal, kill and restart them like an operator.
package proctest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
	dir   string
)

// Build compiles the main package at pkg (an import path such as
// github.com/kchat/kchat/cmd/consumer) once per test binary and returns the
// executable's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "kchat-bin")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

// FreeAddr returns a loopback address with a port nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is a running service process.
type Proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	URL    string
	stderr *syncBuilder
	done   chan struct{}
	err    error
}

type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs bin with the environment env (added to the test's own), its
// HTTP address in addrVar, and waits until /readyz answers 200.
func Start(t testing.TB, bin, addrVar string, env ...string) *Proc {
	t.Helper()
	return StartAt(t, bin, addrVar, FreeAddr(t), env...)
}

// StartAt is Start on the address addr, chosen beforehand (a load
// balancer told of a process before it starts).
func StartAt(t testing.TB, bin, addrVar, addr string, env ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), addrVar+"="+addr, "KCHAT_LOG_LEVEL=warn"), env...)
	p := &Proc{t: t, cmd: cmd, URL: "http://" + addr, stderr: &syncBuilder{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited during startup: %v\n%s", bin, p.err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 60 s\n%s", bin, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits up to timeout for a clean exit.
func (p *Proc) Stop(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("exit after SIGTERM: %w\n%s", p.err, p.stderr.String())
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("still running %s after SIGTERM\n%s", timeout, p.stderr.String())
	}
}

// Signal sends sig to the process (SIGSTOP and SIGCONT freeze and thaw it).
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Logs returns what the process wrote to stderr so far.
func (p *Proc) Logs() string { return p.stderr.String() }
