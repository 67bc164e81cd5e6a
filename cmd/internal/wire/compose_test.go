package wire

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/tracing"
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

// loadCompose loads docker-compose.yml with compose-go (no Docker needed),
// its relative paths resolved against the repository's root.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
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
	return project
}

// kchatServices are the services docker-compose.yml builds from the
// Dockerfile, each with the config structs its binary reads.
func kchatServices(t *testing.T) map[string]map[string]bool {
	t.Helper()
	return map[string]map[string]bool{
		"producer": readsEnv(t, &ProducerConfig{}, &kafka.Config{}, &runner.LogConfig{}, &runner.AdminConfig{}, &tracing.Config{}),
		"consumer": readsEnv(t, &ConsumerConfig{}, &kafka.Config{}, &runner.LogConfig{}, &runner.AdminConfig{}, &tracing.Config{}),
		"answerer": readsEnv(t, &AnswererConfig{}, &kafka.Config{}, &redis.Config{}, &profanity.Config{}, &runner.LogConfig{}, &runner.AdminConfig{}, &tracing.Config{}),
		"gateway":  readsEnv(t, &GatewayConfig{}, &kafka.Config{}, &redis.Config{}, &runner.LogConfig{}, &runner.AdminConfig{}, &tracing.Config{}),
	}
}

// TestComposeFile loads docker-compose.yml: it is valid, every kchat
// service sets only variables its binary (or the OpenTelemetry SDK in it)
// reads and exports its spans to the jaeger service, and every service,
// the third-party ones too, has a healthcheck and waits for healthy
// dependencies.
func TestComposeFile(t *testing.T) {
	project := loadCompose(t)
	for name, known := range kchatServices(t) {
		svc, ok := project.Services[name]
		if !ok {
			t.Errorf("docker-compose.yml has no %s service", name)
			continue
		}
		for key := range svc.Environment {
			switch {
			case strings.HasPrefix(key, "KCHAT_"):
				if !known[key] {
					t.Errorf("%s: %s is not read by cmd/%s", name, key, name)
				}
			case strings.HasPrefix(key, "OTEL_"):
				// The OpenTelemetry SDK reads the standard OTEL_* variables
				// itself (where spans go, sampling, the resource): the one
				// exception to "only the config loader reads the
				// environment" (adapters/tracing/config.go). Which ones it
				// reads is the SDK's list, not a config struct of ours.
			default:
				t.Errorf("%s: %s is neither a KCHAT_ variable cmd/%s reads nor an OTEL_ variable of the OpenTelemetry SDK", name, key, name)
			}
		}
		if svc.Build == nil || len(svc.Command) == 0 || svc.Command[0] != name {
			t.Errorf("%s: built from the Dockerfile and run as %q? build %v command %v", name, name, svc.Build, svc.Command)
		}
		if !known["KCHAT_KAFKA_BROKERS"] || svc.Environment["KCHAT_KAFKA_BROKERS"] == nil {
			t.Errorf("%s: does not point at the kafka service", name)
		}
		// Spans go to the jaeger service over OTLP/HTTP (port 4318).
		if c := (tracing.Config{Exporter: envValue(svc, "KCHAT_TRACING")}); !c.Enabled() {
			t.Errorf("%s: KCHAT_TRACING %q, want %s", name, c.Exporter, tracing.OTLP)
		}
		if got := envValue(svc, "OTEL_EXPORTER_OTLP_ENDPOINT"); got != "http://jaeger:4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q, want http://jaeger:4318", name, got)
		}
		if _, ok := svc.DependsOn["jaeger"]; !ok {
			t.Errorf("%s: does not wait for the jaeger service it sends its spans to", name)
		}
	}
	for name, svc := range project.Services {
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
		for dep, d := range svc.DependsOn {
			if d.Condition != "service_healthy" {
				t.Errorf("%s: depends on %s without condition service_healthy", name, dep)
			}
			if _, ok := project.Services[dep]; !ok {
				t.Errorf("%s: depends on %s, which is not a service", name, dep)
			}
		}
	}
	images := map[string]string{"kafka": "apache/kafka:", "jaeger": "jaegertracing/jaeger:2.", "prometheus": "prom/prometheus:", "grafana": "grafana/grafana:"}
	for name, want := range images {
		if img := project.Services[name].Image; !strings.HasPrefix(img, want) {
			t.Errorf("%s image %q, want %s... (kafka: the official KRaft image; jaeger: v2)", name, img, want)
		}
	}
}

// envValue is the value docker-compose.yml gives key in svc ("" unset).
func envValue(svc types.ServiceConfig, key string) string {
	if v := svc.Environment[key]; v != nil {
		return *v
	}
	return ""
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

// yamlLine is a "key: value" line of a YAML file in block style, a list
// item's "- key: value" too; the value without quotes or a trailing
// comment.
var yamlLine = regexp.MustCompile(`^\s*(?:-\s+)?([A-Za-z_][A-Za-z0-9_]*):\s*(.*?)\s*(?:#.*)?$`)

// yamlPairs reads the key-value lines of file in order. The config files of
// deploy/ are read line by line, not with a YAML parser: kchat's go.mod
// names none it imports directly, and one added for a test would be a
// dependency of the module. They keep to block style, one key per line
// (a list of strings in flow style, as JSON), which is what this reads.
func yamlPairs(t *testing.T, file string) [][2]string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for line := range strings.SplitSeq(string(raw), "\n") {
		if m := yamlLine.FindStringSubmatch(line); m != nil {
			out = append(out, [2]string{m[1], strings.Trim(m[2], `"'`)})
		}
	}
	return out
}

// hostPath is the file on the host that svc's bind mounts put at path in
// its container.
func hostPath(svc types.ServiceConfig, path string) (string, bool) {
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if path == v.Target {
			return v.Source, true
		}
		if rest, ok := strings.CutPrefix(path, strings.TrimSuffix(v.Target, "/")+"/"); ok {
			return filepath.Join(v.Source, rest), true
		}
	}
	return "", false
}

// TestComposePrometheusScrapesEveryService: the prometheus service's config
// (deploy/prometheus/prometheus.yml, mounted where the image reads it) has
// a job scraping each kchat service's admin listener, the one that serves
// /metrics, at the address docker-compose.yml gives it: reachable from
// another container, and not published on the host.
func TestComposePrometheusScrapesEveryService(t *testing.T) {
	project := loadCompose(t)
	prom := project.Services["prometheus"]
	file, ok := hostPath(prom, "/etc/prometheus/prometheus.yml")
	if !ok {
		t.Fatalf("the prometheus service mounts no config at /etc/prometheus/prometheus.yml: volumes %+v", prom.Volumes)
	}
	type job struct{ path, targets string }
	jobs := map[string]*job{}
	var cur *job
	for _, kv := range yamlPairs(t, file) {
		switch kv[0] {
		case "job_name":
			cur = &job{path: "/metrics"} // Prometheus's default
			jobs[kv[1]] = cur
		case "metrics_path":
			if cur != nil {
				cur.path = kv[1]
			}
		case "targets":
			if cur != nil {
				cur.targets += kv[1]
			}
		}
	}
	for name := range kchatServices(t) {
		svc := project.Services[name]
		addr := envValue(svc, "KCHAT_ADMIN_ADDR")
		host, port, found := strings.Cut(addr, ":")
		if !found || port == "" || (host != "" && host != "0.0.0.0") {
			t.Errorf("%s: KCHAT_ADMIN_ADDR %q, want \":PORT\": its default is loopback, out of Prometheus's reach", name, addr)
			continue
		}
		for _, p := range svc.Ports {
			if strconv.Itoa(int(p.Target)) == port {
				t.Errorf("%s publishes its admin port %s: /metrics and /debug/pprof/ stay on the compose network", name, port)
			}
		}
		j := jobs[name]
		if j == nil {
			t.Errorf("%s: no job %q in %s", name, name, file)
			continue
		}
		if !strings.Contains(j.targets, `"`+name+":"+port+`"`) {
			t.Errorf("%s: job %s scrapes %s, want %s:%s (its KCHAT_ADMIN_ADDR)", name, name, j.targets, name, port)
		}
		// The admin listener serves that path.
		srv := runner.NewAdminServer(runner.AdminConfig{}, name, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, j.path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s: job %s scrapes %s, where the admin listener answers %d", name, name, j.path, rec.Code)
		}
	}
}

// TestComposeGrafanaProvisioning: the grafana service lets anonymous
// visitors view, and what its provisioning files point at exists: the
// data source is the prometheus service, the dashboards' folder is mounted
// and holds kchat.json (also the home page), and every panel's data source
// is the provisioned one.
func TestComposeGrafanaProvisioning(t *testing.T) {
	project := loadCompose(t)
	graf := project.Services["grafana"]
	if envValue(graf, "GF_AUTH_ANONYMOUS_ENABLED") != "true" || envValue(graf, "GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer" {
		t.Errorf("grafana: anonymous access %q as %q, want true as Viewer",
			envValue(graf, "GF_AUTH_ANONYMOUS_ENABLED"), envValue(graf, "GF_AUTH_ANONYMOUS_ORG_ROLE"))
	}
	provisioning, ok := hostPath(graf, "/etc/grafana/provisioning")
	if !ok {
		t.Fatalf("grafana mounts nothing at /etc/grafana/provisioning: volumes %+v", graf.Volumes)
	}
	files := func(dir string) []string {
		m, err := filepath.Glob(filepath.Join(provisioning, dir, "*.y*ml"))
		if err != nil || len(m) == 0 {
			t.Fatalf("no provisioning file in %s: %v", filepath.Join(provisioning, dir), err)
		}
		return m
	}

	uids := map[string]bool{}
	for _, f := range files("datasources") {
		for _, kv := range yamlPairs(t, f) {
			switch kv[0] {
			case "uid":
				uids[kv[1]] = true
			case "url":
				if kv[1] != "http://prometheus:9090" {
					t.Errorf("%s: data source url %s, want http://prometheus:9090 (the prometheus service)", f, kv[1])
				}
			}
		}
	}
	if len(uids) == 0 {
		t.Fatal("no data source with a uid is provisioned")
	}

	var dashboards []string
	for _, f := range files("dashboards") {
		for _, kv := range yamlPairs(t, f) {
			if kv[0] != "path" {
				continue
			}
			dir, ok := hostPath(graf, kv[1])
			if !ok {
				t.Errorf("%s: dashboards path %s is not mounted in the grafana service", f, kv[1])
				continue
			}
			m, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			if len(m) == 0 {
				t.Errorf("%s: dashboards path %s (%s on the host) holds no dashboard", f, kv[1], dir)
			}
			dashboards = append(dashboards, m...)
		}
	}
	home := envValue(graf, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
	if f, ok := hostPath(graf, home); !ok || !slices.Contains(dashboards, f) {
		t.Errorf("grafana's home dashboard %q is not a provisioned dashboard file (host %q; provisioned %v)", home, f, dashboards)
	}
	want := filepath.Join(root, "deploy", "grafana", "dashboards", "kchat.json")
	if !slices.ContainsFunc(dashboards, func(f string) bool { return sameFile(f, want) }) {
		t.Errorf("%s is not provisioned (provisioned: %v)", want, dashboards)
	}
	for _, f := range dashboards {
		for _, uid := range dashboardDataSources(t, f) {
			if !uids[uid] {
				t.Errorf("%s: a panel queries data source %q, which is not provisioned (%v)", f, uid, uids)
			}
		}
	}
}

func sameFile(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(ia, ib)
}

// dashboardDataSources lists the data source uids a dashboard's panels and
// their queries name, each once.
func dashboardDataSources(t *testing.T, file string) []string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type ds struct {
		UID string `json:"uid"`
	}
	var d struct {
		Panels []struct {
			Datasource *ds `json:"datasource"`
			Targets    []struct {
				Datasource *ds `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out []string
	for _, p := range d.Panels {
		if p.Datasource != nil {
			out = append(out, p.Datasource.UID)
		}
		for _, q := range p.Targets {
			if q.Datasource != nil {
				out = append(out, q.Datasource.UID)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
