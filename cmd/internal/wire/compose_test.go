package wire

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
	return loadComposeFile(t, "docker-compose.yml")
}

// loadComposeFile loads the compose file of the repository's root named
// file, as loadCompose does docker-compose.yml.
func loadComposeFile(t *testing.T, file string) *types.Project {
	t.Helper()
	// The secrets come from the .env that make compose-env writes, which a
	// test does not have.
	secrets := cli.WithEnv([]string{"KCHAT_RECEIPT_KEY=test", "KCHAT_ANSWER_KEY=test", "KCHAT_COOKIE_KEY=test"})
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, file)}, cli.WithWorkingDirectory(root), cli.WithName("kchat"), secrets)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("%s: %v", file, err)
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
		checkKchatService(t, "docker-compose.yml", name, name, svc, known)
	}
	checkHealthAndDeps(t, "docker-compose.yml", project)
	images := map[string]string{"kafka": "apache/kafka:", "jaeger": "jaegertracing/jaeger:2.", "prometheus": "prom/prometheus:", "grafana": "grafana/grafana:"}
	for name, want := range images {
		if img := project.Services[name].Image; !strings.HasPrefix(img, want) {
			t.Errorf("%s image %q, want %s... (kafka: the official KRaft image; jaeger: v2)", name, img, want)
		}
	}
}

// checkKchatService holds svc, the service name of a compose file that runs
// the kchat binary kind (producer, consumer, answerer, gateway), to the
// rules of every such service: it sets only variables the binary (or the
// OpenTelemetry SDK in it) reads, is built from the Dockerfile and run as
// kind, points at Kafka, and exports its spans to the jaeger service.
func checkKchatService(t *testing.T, file, name, kind string, svc types.ServiceConfig, known map[string]bool) {
	t.Helper()
	for key := range svc.Environment {
		switch {
		case strings.HasPrefix(key, "KCHAT_"):
			if !known[key] {
				t.Errorf("%s: %s: %s is not read by cmd/%s", file, name, key, kind)
			}
		case strings.HasPrefix(key, "OTEL_"):
			// The OpenTelemetry SDK reads the standard OTEL_* variables
			// itself (where spans go, sampling, the resource): the one
			// exception to "only the config loader reads the
			// environment" (adapters/tracing/config.go). Which ones it
			// reads is the SDK's list, not a config struct of ours.
		default:
			t.Errorf("%s: %s: %s is neither a KCHAT_ variable cmd/%s reads nor an OTEL_ variable of the OpenTelemetry SDK", file, name, key, kind)
		}
	}
	if svc.Build == nil || len(svc.Command) == 0 || svc.Command[0] != kind {
		t.Errorf("%s: %s: built from the Dockerfile and run as %q? build %v command %v", file, name, kind, svc.Build, svc.Command)
	}
	if !known["KCHAT_KAFKA_BROKERS"] || svc.Environment["KCHAT_KAFKA_BROKERS"] == nil {
		t.Errorf("%s: %s: does not point at the kafka service", file, name)
	}
	// Spans go to the jaeger service over OTLP/HTTP (port 4318).
	if c := (tracing.Config{Exporter: envValue(svc, "KCHAT_TRACING")}); !c.Enabled() {
		t.Errorf("%s: %s: KCHAT_TRACING %q, want %s", file, name, c.Exporter, tracing.OTLP)
	}
	if got := envValue(svc, "OTEL_EXPORTER_OTLP_ENDPOINT"); got != "http://jaeger:4318" {
		t.Errorf("%s: %s: OTEL_EXPORTER_OTLP_ENDPOINT %q, want http://jaeger:4318", file, name, got)
	}
	if _, ok := svc.DependsOn["jaeger"]; !ok {
		t.Errorf("%s: %s: does not wait for the jaeger service it sends its spans to", file, name)
	}
}

// checkHealthAndDeps: every service of project, the third-party ones too,
// has a healthcheck and waits for healthy dependencies that exist.
func checkHealthAndDeps(t *testing.T, file string, project *types.Project) {
	t.Helper()
	for name, svc := range project.Services {
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			t.Errorf("%s: %s has no healthcheck", file, name)
		}
		for dep, d := range svc.DependsOn {
			if d.Condition != "service_healthy" {
				t.Errorf("%s: %s: depends on %s without condition service_healthy", file, name, dep)
			}
			if _, ok := project.Services[dep]; !ok {
				t.Errorf("%s: %s: depends on %s, which is not a service", file, name, dep)
			}
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

// TestComposeSecrets: every key docker-compose.yml and
// docker-compose.scale.yml pass to a service comes from the environment
// with the guard that names make compose-env (never a literal secret in
// the file); without them compose refuses to start, and what make
// compose-env writes (to a .env that git ignores) is enough for it.
func TestComposeSecrets(t *testing.T) {
	files := []string{"docker-compose.yml", scaleCompose}
	keys := map[string]bool{}
	for _, file := range files {
		raw, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		passed := map[string]bool{}
		for _, m := range composeKey.FindAllStringSubmatch(string(raw), -1) {
			if want := "${" + m[1] + ":?run make compose-env}"; strings.TrimSpace(m[2]) != want {
				t.Errorf("%s sets %s to %s, want %s", file, m[1], m[2], want)
			}
			keys[m[1]], passed[m[1]] = true, true
		}
		for _, k := range []string{"KCHAT_COOKIE_KEY", "KCHAT_RECEIPT_KEY"} {
			if !passed[k] {
				t.Errorf("%s does not pass %s", file, k)
			}
		}
	}
	load := func(file string, opts ...cli.ProjectOptionsFn) error {
		o, err := cli.NewProjectOptions([]string{filepath.Join(root, file)},
			append([]cli.ProjectOptionsFn{cli.WithWorkingDirectory(t.TempDir()), cli.WithName("kchat")}, opts...)...)
		if err != nil {
			return err
		}
		_, err = o.LoadProject(t.Context())
		return err
	}
	for _, file := range files {
		if err := load(file); err == nil || !strings.Contains(err.Error(), "make compose-env") {
			t.Fatalf("docker compose -f %s without the keys: %v, want a refusal saying run make compose-env", file, err)
		}
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
	for _, file := range files {
		if err := load(file, cli.WithEnvFiles(envFile), cli.WithDotEnv); err != nil {
			t.Fatalf("docker compose -f %s with what make compose-env wrote: %v", file, err)
		}
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

// The replicated deployment (README, "Scaling out"): its compose file, and
// the HAProxy config that file mounts and scripts/haproxy.sh runs natively.
const (
	scaleCompose = "docker-compose.scale.yml"
	haproxyCfg   = "deploy/haproxy/haproxy.cfg"
	// haproxyCfgPath is where the official haproxy image reads its config.
	haproxyCfgPath = "/usr/local/etc/haproxy/haproxy.cfg"
)

// TestComposeScale loads docker-compose.scale.yml: two or more replicas of
// each kchat service, each held to the rules of docker-compose.yml's (only
// variables its binary reads, spans to jaeger, healthchecks, healthy
// dependencies); all of them on the 3-broker cluster with topics of three
// copies; answerers with instances of their own; the keys replicas share
// set alike; and HAProxy in front of every gateway.
func TestComposeScale(t *testing.T) {
	project := loadComposeFile(t, scaleCompose)
	known := kchatServices(t)
	byKind := map[string][]string{}
	for name, svc := range project.Services {
		if svc.Build == nil {
			continue
		}
		kind := ""
		if len(svc.Command) > 0 {
			kind = svc.Command[0]
		}
		if known[kind] == nil {
			t.Errorf("%s: %s is built from the Dockerfile but runs %v, not one of %v", scaleCompose, name, svc.Command, slices.Sorted(mapKeys(known)))
			continue
		}
		byKind[kind] = append(byKind[kind], name)
		checkKchatService(t, scaleCompose, name, kind, svc, known[kind])
	}
	for kind := range known {
		slices.Sort(byKind[kind])
		if len(byKind[kind]) < 2 {
			t.Errorf("%s: %d %s replicas (%v), want 2 or more", scaleCompose, len(byKind[kind]), kind, byKind[kind])
		}
	}
	checkHealthAndDeps(t, scaleCompose, project)

	brokers := checkScaleBrokers(t, project)
	for kind, names := range byKind {
		for _, name := range names {
			svc := project.Services[name]
			got := strings.Split(envValue(svc, "KCHAT_KAFKA_BROKERS"), ",")
			slices.Sort(got)
			if !slices.Equal(got, brokers) {
				t.Errorf("%s: %s: KCHAT_KAFKA_BROKERS %v, want every broker %v", scaleCompose, name, got, brokers)
			}
			if rf := envValue(svc, "KCHAT_TOPIC_REPLICATION_FACTOR"); rf != "3" {
				t.Errorf("%s: %s (%s): KCHAT_TOPIC_REPLICATION_FACTOR %q, want 3: the topics it creates get a copy on each broker", scaleCompose, name, kind, rf)
			}
			for _, b := range brokers {
				if _, ok := svc.DependsOn[strings.Split(b, ":")[0]]; !ok {
					t.Errorf("%s: %s: does not wait for broker %s", scaleCompose, name, b)
				}
			}
		}
	}

	// Answerers: one transactional producer and static group member each.
	instances := map[string]string{}
	for _, name := range byKind["answerer"] {
		inst := envValue(project.Services[name], "KCHAT_ANSWERER_INSTANCE")
		if inst == "" {
			t.Errorf("%s: %s sets no KCHAT_ANSWERER_INSTANCE", scaleCompose, name)
		} else if other, dup := instances[inst]; dup {
			t.Errorf("%s: %s and %s are both KCHAT_ANSWERER_INSTANCE %q: replicas must differ", scaleCompose, other, name, inst)
		}
		instances[inst] = name
	}
	// Keys every replica must share: a visitor's cookie is good on any
	// gateway, any gateway accepts any answerer's answers, any consumer
	// any receipt.
	shared := map[string][]string{
		"KCHAT_COOKIE_KEY":  byKind["gateway"],
		"KCHAT_ANSWER_KEY":  append(slices.Clone(byKind["gateway"]), byKind["answerer"]...),
		"KCHAT_RECEIPT_KEY": byKind["consumer"],
	}
	for key, names := range shared {
		values := map[string][]string{}
		for _, name := range names {
			values[envValue(project.Services[name], key)] = append(values[envValue(project.Services[name], key)], name)
		}
		if len(values) != 1 || values[""] != nil {
			t.Errorf("%s: %s differs or is missing among %v: %v", scaleCompose, key, names, values)
		}
	}
	checkScaleLoadBalancer(t, project, byKind["gateway"])
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkScaleBrokers: three apache/kafka nodes, each a broker and a voter of
// one KRaft quorum, with three copies of every topic and two in sync
// (min.insync.replicas, the transaction log's min ISR), internal topics
// included. It returns their client addresses, sorted.
func checkScaleBrokers(t *testing.T, project *types.Project) []string {
	t.Helper()
	var names []string
	for name, svc := range project.Services {
		if strings.HasPrefix(svc.Image, "apache/kafka:") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) != 3 {
		t.Fatalf("%s: %d apache/kafka services (%v), want 3", scaleCompose, len(names), names)
	}
	want := map[string]string{
		"KAFKA_PROCESS_ROLES":                                    "broker,controller",
		"KAFKA_DEFAULT_REPLICATION_FACTOR":                       "3",
		"KAFKA_MIN_INSYNC_REPLICAS":                              "2",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":                 "3",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR":         "3",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":                    "2",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "3",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            "2",
		"KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE":                   "false",
		"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                        "false",
	}
	var brokers, voters []string
	ids := map[string]string{}
	for _, name := range names {
		svc := project.Services[name]
		for k, v := range want {
			if got := envValue(svc, k); got != v {
				t.Errorf("%s: %s: %s %q, want %s", scaleCompose, name, k, got, v)
			}
		}
		id := envValue(svc, "KAFKA_NODE_ID")
		if other, dup := ids[id]; dup || id == "" {
			t.Errorf("%s: %s: KAFKA_NODE_ID %q, taken by %s too (or empty)", scaleCompose, name, id, other)
		}
		ids[id] = name
		voters = append(voters, id+"@"+name+":9093")
		if got := envValue(svc, "KAFKA_ADVERTISED_LISTENERS"); got != "PLAINTEXT://"+name+":9092" {
			t.Errorf("%s: %s: KAFKA_ADVERTISED_LISTENERS %q, want PLAINTEXT://%s:9092", scaleCompose, name, got, name)
		}
		brokers = append(brokers, name+":9092")
	}
	for _, name := range names {
		svc := project.Services[name]
		got := strings.Split(envValue(svc, "KAFKA_CONTROLLER_QUORUM_VOTERS"), ",")
		slices.Sort(got)
		if !slices.Equal(got, voters) {
			t.Errorf("%s: %s: KAFKA_CONTROLLER_QUORUM_VOTERS %v, want the three nodes %v", scaleCompose, name, got, voters)
		}
		if c, c0 := envValue(svc, "CLUSTER_ID"), envValue(project.Services[names[0]], "CLUSTER_ID"); c == "" || c != c0 {
			t.Errorf("%s: %s: CLUSTER_ID %q, want the one every node formats with (%s's %q)", scaleCompose, name, c, names[0], c0)
		}
	}
	return brokers
}

// checkScaleLoadBalancer: one HAProxy service, mounting deploy/haproxy/
// haproxy.cfg where the image reads it; the backend its frontend sends to
// names every gateway replica (at its KCHAT_GATEWAY_ADDR port) and nothing
// else, once the environment the service gives the file is substituted;
// the frontend's address is published; the gateways trust HAProxy's fixed
// address alone for X-Forwarded-For, which the frontend adds; WebSockets
// have a tunnel timeout, gateways a health check on /readyz.
func checkScaleLoadBalancer(t *testing.T, project *types.Project, gateways []string) {
	t.Helper()
	var lbs []string
	for name, svc := range project.Services {
		if strings.HasPrefix(svc.Image, "haproxy:") {
			lbs = append(lbs, name)
		}
	}
	if len(lbs) != 1 {
		t.Fatalf("%s: %d haproxy services (%v), want 1", scaleCompose, len(lbs), lbs)
	}
	lb := project.Services[lbs[0]]
	file, ok := hostPath(lb, haproxyCfgPath)
	if !ok || !sameFile(file, filepath.Join(root, haproxyCfg)) {
		t.Fatalf("%s: %s mounts %q at %s, want %s", scaleCompose, lbs[0], file, haproxyCfgPath, haproxyCfg)
	}
	cfg := readHAProxy(t, file, func(name string) (string, bool) {
		v := lb.Environment[name]
		if v == nil {
			return "", false
		}
		return *v, true
	})

	front, backend := cfg.frontend(t)
	servers := map[string]string{}
	for _, line := range cfg.section("backend " + backend) {
		if line[0] == "server" {
			servers[line[2]] = line[1]
		}
	}
	for _, gw := range gateways {
		_, port, _ := net.SplitHostPort(envValue(project.Services[gw], "KCHAT_GATEWAY_ADDR"))
		addr := net.JoinHostPort(gw, port)
		if _, ok := servers[addr]; !ok {
			t.Errorf("%s: backend %s has no server at %s (gateway %s); its servers: %v", haproxyCfg, backend, addr, gw, servers)
		}
		delete(servers, addr)
		if _, ok := lb.DependsOn[gw]; !ok {
			t.Errorf("%s: %s does not wait for %s", scaleCompose, lbs[0], gw)
		}
		if len(project.Services[gw].Ports) > 0 {
			t.Errorf("%s: %s publishes %v: clients come through %s", scaleCompose, gw, project.Services[gw].Ports, lbs[0])
		}
	}
	if len(servers) > 0 {
		t.Errorf("%s: backend %s names servers that are not gateways of %s: %v", haproxyCfg, backend, scaleCompose, servers)
	}

	// Clients reach it on the host.
	published := false
	for _, line := range cfg.section("frontend " + front) {
		if line[0] != "bind" {
			continue
		}
		_, port, err := net.SplitHostPort(line[1])
		if err != nil {
			t.Errorf("%s: frontend %s binds %q: %v", haproxyCfg, front, line[1], err)
		}
		for _, p := range lb.Ports {
			published = published || strconv.Itoa(int(p.Target)) == port
		}
	}
	if !published {
		t.Errorf("%s: %s does not publish the port its frontend %s binds (ports %+v)", scaleCompose, lbs[0], front, lb.Ports)
	}

	// The gateways trust HAProxy's address, which is fixed.
	var lbAddr netip.Addr
	for netName, n := range lb.Networks {
		if n == nil || n.Ipv4Address == "" {
			continue
		}
		a, err := netip.ParseAddr(n.Ipv4Address)
		if err != nil {
			t.Fatalf("%s: %s ipv4_address %q: %v", scaleCompose, lbs[0], n.Ipv4Address, err)
		}
		lbAddr = a
		inSubnet := false
		for _, pool := range project.Networks[netName].Ipam.Config {
			subnet, err1 := netip.ParsePrefix(pool.Subnet)
			inSubnet = inSubnet || (err1 == nil && subnet.Contains(a))
			if r, err := netip.ParsePrefix(pool.IPRange); err == nil && r.Contains(a) {
				t.Errorf("%s: %s's address %s is in ip_range %s, which Docker hands out to other containers", scaleCompose, lbs[0], a, r)
			}
		}
		if !inSubnet {
			t.Errorf("%s: %s's address %s is in no subnet of network %s", scaleCompose, lbs[0], a, netName)
		}
	}
	if !lbAddr.IsValid() {
		t.Fatalf("%s: %s has no fixed ipv4_address for the gateways to trust", scaleCompose, lbs[0])
	}
	for _, gw := range gateways {
		proxies := strings.Split(envValue(project.Services[gw], "KCHAT_TRUSTED_PROXIES"), ",")
		if !slices.Equal(proxies, []string{lbAddr.String()}) && !slices.Equal(proxies, []string{lbAddr.String() + "/32"}) {
			t.Errorf("%s: %s: KCHAT_TRUSTED_PROXIES %v, want %s's address %s and nothing else", scaleCompose, gw, proxies, lbs[0], lbAddr)
		}
	}

	// What the gateways need of the proxy.
	has := func(section string, words ...string) bool {
		for _, s := range []string{section, "defaults"} {
			for _, line := range cfg.section(s) {
				if slices.Equal(line[:min(len(line), len(words))], words) {
					return true
				}
			}
		}
		return false
	}
	for _, need := range []struct {
		section string
		words   []string
		why     string
	}{
		{"frontend " + front, []string{"option", "forwardfor"}, "the client's address in X-Forwarded-For"},
		{"frontend " + front, []string{"timeout", "tunnel"}, "a timeout for upgraded WebSockets"},
		{"backend " + backend, []string{"option", "httpchk"}, "health checks"},
		{"backend " + backend, []string{"http-check", "send", "meth", "GET", "uri", "/readyz"}, "health checks on /readyz"},
		{"backend " + backend, []string{"http-check", "expect", "status", "200"}, "health checks that want 200"},
	} {
		if !has(need.section, need.words...) {
			t.Errorf("%s: %s lacks %q (%s)", haproxyCfg, need.section, strings.Join(need.words, " "), need.why)
		}
	}
	if !has("backend "+backend, "balance", "leastconn") && !has("backend "+backend, "balance", "roundrobin") {
		t.Errorf("%s: backend %s balances neither leastconn nor roundrobin", haproxyCfg, backend)
	}
}

// haproxyConfig is an HAProxy config file as HAProxy reads it with a given
// environment: the lines of each section whose .if blocks hold, comments
// dropped, words unquoted and "${NAME}" substituted.
type haproxyConfig struct {
	sections map[string][][]string
	order    []string
}

func (c haproxyConfig) section(name string) [][]string { return c.sections[name] }

// frontend returns the frontend that sends clients to a backend
// (default_backend), and that backend.
func (c haproxyConfig) frontend(t *testing.T) (string, string) {
	t.Helper()
	for _, s := range c.order {
		name, ok := strings.CutPrefix(s, "frontend ")
		if !ok {
			continue
		}
		for _, line := range c.sections[s] {
			if line[0] == "default_backend" && len(line) == 2 {
				return name, line[1]
			}
		}
	}
	t.Fatalf("%s: no frontend with a default_backend", haproxyCfg)
	return "", ""
}

var (
	haproxySections = []string{"global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist", "mailers", "program", "http-errors", "ring", "cache"}
	haproxyIf       = regexp.MustCompile(`^\.if (defined|feature)\(([A-Za-z0-9_]+)\)$`)
	haproxyVar      = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
)

// readHAProxy reads file with the environment lookup gives. It knows the
// conditions the repository's config uses: .if defined(NAME) holds when
// lookup has NAME, .if feature(NAME) is taken to hold.
func readHAProxy(t *testing.T, file string, lookup func(string) (string, bool)) haproxyConfig {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := haproxyConfig{sections: map[string][][]string{}}
	var conds []bool // the .if blocks the line is in
	section := ""
	for n, line := range strings.Split(string(raw), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case line == ".endif":
			if len(conds) == 0 {
				t.Fatalf("%s:%d: .endif without .if", file, n+1)
			}
			conds = conds[:len(conds)-1]
			continue
		case strings.HasPrefix(line, ".if"):
			m := haproxyIf.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("%s:%d: %q: this test reads .if defined(NAME) and .if feature(NAME) only", file, n+1, line)
			}
			_, defined := lookup(m[2])
			conds = append(conds, m[1] == "feature" || defined)
			continue
		case strings.HasPrefix(line, "."):
			t.Fatalf("%s:%d: %q: this test does not read that directive", file, n+1, line)
		}
		if slices.Contains(conds, false) {
			continue
		}
		var words []string
		for _, w := range strings.Fields(line) {
			if q, ok := strings.CutPrefix(w, `"`); ok {
				w = strings.TrimSuffix(q, `"`)
				w = haproxyVar.ReplaceAllStringFunc(w, func(ref string) string {
					name := haproxyVar.FindStringSubmatch(ref)[1]
					v, ok := lookup(name)
					if !ok {
						t.Errorf("%s:%d: %s is not set: HAProxy would read an empty word", file, n+1, name)
					}
					return v
				})
			}
			words = append(words, w)
		}
		if slices.Contains(haproxySections, words[0]) {
			section = strings.Join(words, " ")
			cfg.order = append(cfg.order, section)
			continue
		}
		if section == "" {
			t.Fatalf("%s:%d: %q outside any section", file, n+1, line)
		}
		cfg.sections[section] = append(cfg.sections[section], words)
	}
	if len(conds) != 0 {
		t.Fatalf("%s: %d .if without .endif", file, len(conds))
	}
	return cfg
}

// TestHAProxyConfigValid has HAProxy itself check deploy/haproxy/
// haproxy.cfg (haproxy -c), when it is installed (scripts/haproxy.sh
// install; CI installs it): with the environment docker-compose.scale.yml
// gives it, and with loopback gateways as scripts/haproxy.sh runs it,
// where it must not even warn.
func TestHAProxyConfigValid(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/haproxy"); err != nil {
			t.Skip("no haproxy binary: scripts/haproxy.sh install")
		}
		bin = "/usr/sbin/haproxy"
	}
	project := loadComposeFile(t, scaleCompose)
	var composeEnv []string
	for _, svc := range project.Services {
		if strings.HasPrefix(svc.Image, "haproxy:") {
			for k, v := range svc.Environment {
				if v != nil {
					composeEnv = append(composeEnv, k+"="+*v)
				}
			}
		}
	}
	native := []string{"LB_ADDR=127.0.0.1:18080", "LB_STATS_ADDR=127.0.0.1:18081", "LB_GATEWAY_1=127.0.0.1:18002", "LB_GATEWAY_2=127.0.0.1:18012",
		"LB_GATEWAY_3=127.0.0.1:18022", "LB_GATEWAY_4=127.0.0.1:18032"}
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		// The compose names do not resolve here: HAProxy warns and starts
		// those servers in maintenance until they do (init-addr libc,none).
		{scaleCompose, composeEnv, []string{"-c"}},
		{"scripts/haproxy.sh, 4 gateways", native, []string{"-c", "-dW"}},
		{"scripts/haproxy.sh, 1 gateway, no stats", []string{"LB_ADDR=127.0.0.1:18080", "LB_GATEWAY_1=127.0.0.1:18002"}, []string{"-c", "-dW"}},
	} {
		cmd := exec.Command(bin, append(c.args, "-f", filepath.Join(root, haproxyCfg))...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, c.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: haproxy -c: %v\n%s", c.name, err, out)
		}
	}
}
