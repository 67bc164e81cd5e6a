package wire

import (
	"bufio"
	"os"
	"path/filepath"
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
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")}, cli.WithWorkingDirectory(root), cli.WithName("kchat"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	reads := map[string]map[string]bool{
		"producer": readsEnv(t, &ProducerConfig{}, &kafka.Config{}, &runner.LogConfig{}),
		"consumer": readsEnv(t, &ConsumerConfig{}, &kafka.Config{}, &runner.LogConfig{}),
		"answerer": readsEnv(t, &AnswererConfig{}, &kafka.Config{}, &redis.Config{}, &profanity.Config{}, &runner.LogConfig{}),
		"gateway":  readsEnv(t, &GatewayConfig{}, &kafka.Config{}, &redis.Config{}, &runner.LogConfig{}),
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
