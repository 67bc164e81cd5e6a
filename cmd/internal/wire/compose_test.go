package wire

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
	"github.com/compose-spec/compose-go/v2/cli"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/cmd/internal/runner"
)

var root = filepath.Join("..", "..", "..")

// readsEnv lists the KCHAT_* variables a binary reads, from its config
// structs.
func readsEnv(t *testing.T, cfgs ...any) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, c := range cfgs {
		params, err := env.GetFieldParams(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range params {
			out[p.Key] = true
		}
	}
	return out
}

// TestComposeFile loads docker-compose.yml with compose-go (no Docker
// needed): it is valid, every kchat service sets only variables its binary
// reads, and every service has a healthcheck and waits for healthy
// dependencies.
func TestComposeFile(t *testing.T) {
	// The secrets come from the .env that make compose-env writes, which a
	// test does not have.
	secrets := cli.WithEnv([]string{"KCHAT_RECEIPT_KEY=test", "KCHAT_ANSWER_KEY=test", "KCHAT_COOKIE_KEY=test"})
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")}, cli.WithWorkingDirectory(root), cli.WithName("kchat"), secrets)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	reads := map[string]map[string]bool{
		"producer": readsEnv(t, &ProducerConfig{}, &kafka.Config{}, &runner.LogConfig{}, &runner.AdminConfig{}),
		"consumer": readsEnv(t, &ConsumerConfig{}, &kafka.Config{}, &runner.LogConfig{}, &runner.AdminConfig{}),
		"answerer": readsEnv(t, &AnswererConfig{}, &kafka.Config{}, &redis.Config{}, &profanity.Config{}, &runner.LogConfig{}, &runner.AdminConfig{}),
		"gateway":  readsEnv(t, &GatewayConfig{}, &kafka.Config{}, &redis.Config{}, &runner.LogConfig{}, &runner.AdminConfig{}),
	}
	for name, known := range reads {
		svc, ok := project.Services[name]
		if !ok {
			t.Errorf("docker-compose.yml has no %s service", name)
			continue
		}
		for key := range svc.Environment {
			if strings.HasPrefix(key, "KCHAT_") && !known[key] {
				t.Errorf("%s: %s is not read by cmd/%s", name, key, name)
			}
		}
		if svc.Build == nil || len(svc.Command) == 0 || svc.Command[0] != name {
			t.Errorf("%s: built from the Dockerfile and run as %q? build %v command %v", name, name, svc.Build, svc.Command)
		}
		if !known["KCHAT_KAFKA_BROKERS"] || svc.Environment["KCHAT_KAFKA_BROKERS"] == nil {
			t.Errorf("%s: does not point at the kafka service", name)
		}
		for dep, d := range svc.DependsOn {
			if d.Condition != "service_healthy" {
				t.Errorf("%s: depends on %s without condition service_healthy", name, dep)
			}
		}
	}
	for name, svc := range project.Services {
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
	}
	if img := project.Services["kafka"].Image; !strings.HasPrefix(img, "apache/kafka") {
		t.Errorf("kafka image %q, want the official apache/kafka (KRaft)", img)
	}
}

// TestDockerfileBuildsEveryBinary: the Dockerfile builds ./cmd/..., which
// covers every binary, and nothing under cmd/ is left out.
func TestDockerfileBuildsEveryBinary(t *testing.T) {
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	builds := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "go build") && strings.Contains(line, "./cmd/...") {
			builds = true
		}
	}
	if !builds {
		t.Fatal("the Dockerfile does not run go build ./cmd/...")
	}
	entries, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var bins []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "internal" {
			if _, err := os.Stat(filepath.Join(root, "cmd", e.Name(), "main.go")); err == nil {
				bins = append(bins, e.Name())
			}
		}
	}
	sort.Strings(bins)
	for _, want := range []string{"answerer", "consumer", "gateway", "kchat", "producer"} {
		if sort.SearchStrings(bins, want) == len(bins) || bins[sort.SearchStrings(bins, want)] != want {
			t.Errorf("cmd/%s is missing", want)
		}
	}
}

// composeKey is a secret docker-compose.yml reads from the environment.
var composeKey = regexp.MustCompile(`(KCHAT_[A-Z0-9_]+_KEY): (.*)`)

// TestComposeSecrets: every key docker-compose.yml passes to a service
// comes from the environment with the guard that names make compose-env
// (never a literal secret in the file); without them compose refuses to
// start, and what make compose-env writes (to a .env that git ignores) is
// enough for it.
func TestComposeSecrets(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, m := range composeKey.FindAllStringSubmatch(string(raw), -1) {
		if want := "${" + m[1] + ":?run make compose-env}"; strings.TrimSpace(m[2]) != want {
			t.Errorf("docker-compose.yml sets %s to %s, want %s", m[1], m[2], want)
		}
		keys[m[1]] = true
	}
	for _, k := range []string{"KCHAT_COOKIE_KEY", "KCHAT_RECEIPT_KEY"} {
		if !keys[k] {
			t.Errorf("docker-compose.yml does not pass %s", k)
		}
	}
	load := func(opts ...cli.ProjectOptionsFn) error {
		o, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
			append([]cli.ProjectOptionsFn{cli.WithWorkingDirectory(t.TempDir()), cli.WithName("kchat")}, opts...)...)
		if err != nil {
			return err
		}
		_, err = o.LoadProject(t.Context())
		return err
	}
	if err := load(); err == nil || !strings.Contains(err.Error(), "make compose-env") {
		t.Fatalf("docker compose without the keys: %v, want a refusal saying run make compose-env", err)
	}

	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	envFile := filepath.Join(t.TempDir(), ".env")
	for range 2 { // the second run keeps the keys
		cmd := exec.Command("make", "-s", "compose-env", "ENV_FILE="+envFile)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make compose-env: %v\n%s", err, out)
		}
	}
	written, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		m := regexp.MustCompile("(?m)^"+k+"=([0-9a-f]+)$").FindAllStringSubmatch(string(written), -1)
		if len(m) != 1 || len(m[0][1]) != 64 {
			t.Errorf("make compose-env wrote %q for %s, want one random 32-byte key in hex", m, k)
		}
	}
	if info, err := os.Stat(envFile); err != nil || info.Mode().Perm()&0o077 != 0 {
		t.Errorf(".env mode %v: want it readable by its owner only", info.Mode())
	}
	if err := load(cli.WithEnvFiles(envFile), cli.WithDotEnv); err != nil {
		t.Fatalf("docker compose with what make compose-env wrote: %v", err)
	}
	cmd := exec.Command("git", "check-ignore", "-q", "--no-index", ".env")
	cmd.Dir = root
	if err := cmd.Run(); err != nil {
		t.Errorf(".env is not ignored by git: %v", err)
	}
}
