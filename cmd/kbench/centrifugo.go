package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Centrifugo is the peer scenario's real WebSocket server: a process of
// its own, built once by scripts/services.sh build-centrifugo, configured
// here for the job kchat's gateway does: a user's connection, authenticated
// with an HS256 JWT, subscribed on the server side to the user's personal
// channel, to which the backend publishes through the server HTTP API.

// centrifugoNamespace is the namespace of the users' personal channels:
// user u's is "personal:#u" (client.subscribe_to_user_personal_channel).
const centrifugoNamespace = "personal"

func personalChannel(user string) string { return centrifugoNamespace + ":#" + user }

// centrifugoSettings is what a run chooses of Centrifugo's configuration;
// everything else is left at Centrifugo's defaults (memory engine, the
// WebSocket transport with its default buffers, pings every 25 s).
type centrifugoSettings struct {
	Port        int
	TokenSecret string // client.token.hmac_secret_key
	APIKey      string // http_api.key
	// SmallBuffers gives each socket the buffers kchat's gateway gives
	// its own (a 512-byte read buffer, 4 KiB write buffers from a pool
	// shared by every socket) instead of gorilla's defaults (4 KiB each,
	// held by each socket): Centrifugo's own options for many idle
	// connections.
	SmallBuffers bool
}

// centrifugoConfig is the v6 configuration file (JSON) for s: one port on
// loopback for the clients and the server API, the personal channels, no
// usage statistics sent out.
func centrifugoConfig(s centrifugoSettings) ([]byte, error) {
	if s.Port <= 0 || s.TokenSecret == "" || s.APIKey == "" {
		return nil, errors.New("centrifugo config: a port, a token secret and an API key are needed")
	}
	cfg := map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": s.Port},
		"log":         map[string]any{"level": "error"},
		"usage_stats": map[string]any{"disabled": true},
		"client": map[string]any{
			"token": map[string]any{"hmac_secret_key": s.TokenSecret},
			"subscribe_to_user_personal_channel": map[string]any{
				"enabled": true, "personal_channel_namespace": centrifugoNamespace,
			},
		},
		"channel":  map[string]any{"namespaces": []map[string]any{{"name": centrifugoNamespace}}},
		"http_api": map[string]any{"key": s.APIKey},
	}
	if s.SmallBuffers {
		// adapters/ws's readBufferSize and writeBufferSize.
		cfg["websocket"] = map[string]any{"read_buffer_size": 512, "write_buffer_size": 4096, "use_write_buffer_pool": true}
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// centrifugoToken is user's connection JWT.
func centrifugoToken(secret, user string) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "exp": time.Now().Add(24 * time.Hour).Unix(),
	}).SignedString([]byte(secret))
}

// buildCentrifugo returns the path of the Centrifugo binary, building it
// first when the cache lacks it (scripts/services.sh build-centrifugo,
// about 3 minutes the first time; the script says where the binary goes).
func buildCentrifugo(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", "scripts/services.sh", "build-centrifugo")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("scripts/services.sh build-centrifugo: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	bin := lines[len(lines)-1]
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return "", fmt.Errorf("scripts/services.sh build-centrifugo printed %q, not a binary", bin)
	}
	return bin, nil
}

// centrifugoVersionOf is the version in the binary's path
// (<cache>/centrifugo/<version>/centrifugo): `go install` leaves the
// binary's own version at 0.0.0.
func centrifugoVersionOf(bin string) string { return filepath.Base(filepath.Dir(bin)) }

// centrifugoProc is a running Centrifugo.
type centrifugoProc struct {
	cmd      *exec.Cmd
	addr     string
	settings centrifugoSettings
	log      string
	done     chan struct{} // closed when it exited, exit set
	exit     error
	api      *http.Client
}

// startCentrifugo writes a configuration into dir and runs bin with it on
// a free loopback port, and waits until its server API answers a publish.
func startCentrifugo(ctx context.Context, bin, dir, logDir string, smallBuffers bool) (*centrifugoProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	s := centrifugoSettings{SmallBuffers: smallBuffers}
	if _, err := fmt.Sscan(port, &s.Port); err != nil {
		return nil, err
	}
	s.TokenSecret, s.APIKey = rand.Text(), rand.Text()
	cfg, err := centrifugoConfig(s)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "centrifugo-"+port+".json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, "centrifugo-"+time.Now().Format("150405.000")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	p := &centrifugoProc{cmd: cmd, addr: addr, settings: s, log: logPath, done: make(chan struct{}),
		api: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: peerPublishers}}}
	go func() { p.exit = cmd.Wait(); _ = logFile.Close(); close(p.done) }()
	if err := p.waitReady(ctx, 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *centrifugoProc) pid() int { return p.cmd.Process.Pid }

// waitReady publishes to a channel nobody reads until the server API
// accepts it: the API, the broker and the configuration all work.
func (p *centrifugoProc) waitReady(ctx context.Context, timeout time.Duration) error {
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("centrifugo exited before it was ready (%w); see %s", p.exit, p.log)
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err = p.publish(ctx, personalChannel("kbench-probe"), []byte(`{}`)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("centrifugo not ready within %s (%w); see %s", timeout, err, p.log)
}

// publish is one call of the server API's publish method.
func (p *centrifugoProc) publish(ctx context.Context, channel string, data json.RawMessage) error {
	body, err := json.Marshal(struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}{channel, data})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.addr+"/api/publish", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", p.settings.APIKey)
	resp, err := p.api.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	return apiResult(resp.StatusCode, answer)
}

// apiResult is the error a server API response carries, or nil.
func apiResult(status int, body []byte) error {
	var r struct {
		Error *cfError `json:"error"`
	}
	if status != http.StatusOK {
		return fmt.Errorf("server API: %d %s", status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("server API: %w", err)
	}
	if r.Error != nil {
		return fmt.Errorf("server API: %w", r.Error)
	}
	return nil
}

func (p *centrifugoProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *centrifugoProc) wsURL() string { return "ws://" + p.addr + "/connection/websocket" }
