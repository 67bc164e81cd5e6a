package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// binaries builds kchat's services once per run, so every scenario runs
// the same code a deployment would.
type binaries struct {
	dir string
	// profiles, when set, is where CPU profiles of the services go.
	profiles string
}

func buildBinaries(ctx context.Context, dir string) (*binaries, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator),
		"./cmd/producer", "./cmd/consumer", "./cmd/gateway", "./cmd/answerer")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build (run kbench from the repository root): %w", err)
	}
	return &binaries{dir: dir}, nil
}

// service is one running kchat process.
type service struct {
	name  string
	cmd   *exec.Cmd
	url   string
	admin string // host:port of its admin listener (/metrics, /debug/pprof/)
	log   string
	done  chan error
}

// start runs binary name with env (on top of this process's environment)
// listening on a free loopback port through addrVar, and waits until its
// /readyz answers 200.
func (b *binaries) start(ctx context.Context, logDir, name, addrVar string, env ...string) (*service, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, name+"-"+time.Now().Format("150405.000")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(b.dir, name))
	// An admin listener of its own: the default ones of two services of a
	// kind would collide, and profiles are taken there.
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd.Env = append(append(os.Environ(), env...), addrVar+"="+addr, "KCHAT_LOG_LEVEL=warn", "KCHAT_ADMIN_ADDR="+adminAddr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	s := &service{name: name, cmd: cmd, url: "http://" + addr, admin: adminAddr, log: logPath, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); _ = logFile.Close() }()
	if err := s.waitReady(ctx, 90*time.Second); err != nil {
		return nil, errors.Join(err, s.stop())
	}
	return s, nil
}

func (s *service) pid() int { return s.cmd.Process.Pid }

func (s *service) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("%s exited before it was ready (%w); see %s", s.name, err, s.log)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s; see %s", s.name, timeout, s.log)
}

// stop asks for a graceful shutdown (which commits what was delivered) and
// kills the process if it takes longer than 30 s.
func (s *service) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("%s exited with %w; see %s", s.name, err, s.log)
		}
		return err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		killed := <-s.done
		return fmt.Errorf("%s did not stop within 30s; killed: %w", s.name, killed)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// profile records a CPU profile of the service for d in the background,
// into the profiles folder as <label>.pprof; wait blocks until it is
// written. Without profiling on, it does nothing.
func (b *binaries) profile(s *service, label string, d time.Duration) (wait func()) {
	if b.profiles == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.admin, max(1, int(d.Seconds())))
		resp, err := http.Get(url) //nolint:noctx // bounded by the profile's own duration
		if err != nil {
			fmt.Fprintln(os.Stderr, "kbench: profile:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(b.profiles, label+".pprof"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "kbench: profile:", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
	return func() { <-done }
}
