// Command kbench measures kchat against same-run baselines on the real
// Kafka and Redis of `make services-up` and writes docs/benchmarks.md and
// docs/benchmarks.json (see docs/benchmarks.md for what each scenario
// does). Run it from the repository root: `make bench`.
//
// `kbench wsecho ADDR` is the WebSocket echo server of the memory
// baseline and `kbench otlpsink ADDR` the OTLP receiver of the tracing
// scenario; kbench starts them itself. `kbench median FILE...` writes the
// report of the medians of several runs' benchmarks.json (median.go), as
// KCHAT_BENCH_RUNS does after running the suite that many times.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
)

// config is what kbench reads from the environment.
type config struct {
	// Short runs every scenario briefly (CI: the harness must not rot).
	Short bool `env:"KCHAT_BENCH_SHORT"`
	// Out is the folder for benchmarks.md and benchmarks.json; default
	// docs (full runs) or bin/bench (short runs).
	Out string `env:"KCHAT_BENCH_OUT"`
	// Only limits the run to these scenarios (produce, fetch, chat,
	// memory, huma, compression, stream, tracing, scale, peer); the figures of
	// the others already in Out's benchmarks.json are kept.
	Only []string `env:"KCHAT_BENCH_ONLY" envSeparator:","`
	// Profiles, when set, is a folder for CPU profiles of the services
	// (pprof) taken during kchat's main runs.
	Profiles string `env:"KCHAT_BENCH_PROFILES"`
	// Brokers and RedisURL are the services of `make services-up`.
	Brokers  []string `env:"KCHAT_TEST_KAFKA_BROKERS" envSeparator:","`
	RedisURL string   `env:"KCHAT_TEST_REDIS_URL"`
	// TracingBase is the commit the tracing scenario builds its baseline
	// (no tracing code) from; default: the parent of the commit that added
	// adapters/tracing/provider.go.
	TracingBase string `env:"KCHAT_BENCH_TRACING_BASE"`
	// TracingHead, when set, is the commit the tracing scenario builds
	// tracing off and on from, instead of running the working tree's
	// services like every scenario (for figures that do not depend on
	// uncommitted work).
	TracingHead string `env:"KCHAT_BENCH_TRACING_HEAD"`
	// OTLPEndpoint, when set, is where the tracing scenario's tracing-on
	// runs export (e.g. http://127.0.0.1:4318, the Jaeger of `make
	// services-up`) instead of kbench's own receiver, which drops the spans.
	OTLPEndpoint string `env:"KCHAT_BENCH_OTLP_ENDPOINT"`
	// Runs, above 1, runs the whole suite that many times and reports
	// the median of each figure (median.go).
	Runs int `env:"KCHAT_BENCH_RUNS" envDefault:"1"`
}

// params size a run.
type params struct {
	warmup, duration, latencyDuration time.Duration
	messageBytes                      int
	chatSessions                      int
	chatWarmup, chatDuration          time.Duration
	wsConns                           int
	// idleCPUWindow is how long the memory scenario measures the
	// gateway's CPU with no connection and with wsConns idle ones: a full
	// run's window holds one ping of each (memoryPingInterval).
	idleCPUWindow time.Duration
	fetchPrefill  int
	humaTime      time.Duration
	// tracingRuns runs of each tracing variant, each tracingWarmup then
	// tracingDuration measured, at tracingSessions questions a second:
	// fewer than the chat scenario's, which saturate the shared machine,
	// and a CPU figure per question must come from a load it keeps up with.
	tracingRuns, tracingSessions   int
	tracingWarmup, tracingDuration time.Duration
	// scaleSessions questions a second in all, spread over each of
	// scaleGateways gateway processes in turn, scaleWarmup then
	// scaleDuration measured per run.
	scaleSessions              int
	scaleGateways              []int
	scaleWarmup, scaleDuration time.Duration
	// scaleIdle is how long each scale run measures its services' CPU
	// before any session connects: their fixed cost a second.
	scaleIdle time.Duration
}

var (
	fullParams = params{
		warmup: 2 * time.Second, duration: 10 * time.Second, latencyDuration: 15 * time.Second,
		messageBytes: 256, chatSessions: 1000, chatWarmup: 5 * time.Second, chatDuration: 30 * time.Second,
		wsConns: 10000, idleCPUWindow: memoryPingInterval, fetchPrefill: 200000, humaTime: 3 * time.Second,
		tracingRuns: 3, tracingSessions: 300, tracingWarmup: 5 * time.Second, tracingDuration: 20 * time.Second,
		scaleSessions: 200, scaleGateways: []int{1, 2, 4}, scaleWarmup: 5 * time.Second, scaleDuration: 20 * time.Second, scaleIdle: 10 * time.Second,
	}
	shortParams = params{
		warmup: 500 * time.Millisecond, duration: 2 * time.Second, latencyDuration: 2 * time.Second,
		messageBytes: 256, chatSessions: 100, chatWarmup: 2 * time.Second, chatDuration: 4 * time.Second,
		wsConns: 1000, idleCPUWindow: 2 * time.Second, fetchPrefill: 20000, humaTime: 300 * time.Millisecond,
		tracingRuns: 1, tracingSessions: 100, tracingWarmup: 2 * time.Second, tracingDuration: 3 * time.Second,
		scaleSessions: 100, scaleGateways: []int{1, 2}, scaleWarmup: 2 * time.Second, scaleDuration: 3 * time.Second, scaleIdle: 2 * time.Second,
	}
)

// scenarios in the order they run: the in-process one first, on a small
// heap the others have not grown yet.
var scenarios = []string{"huma", "produce", "fetch", "chat", "memory", "compression", "stream", "tracing", "scale", "peer"}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "wsecho" {
		if err := serveEcho(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "wsecho:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 2 && os.Args[1] == "median" {
		var cfg config
		err := env.Parse(&cfg)
		if err == nil {
			err = writeMedian(cfg.Out, os.Args[2:])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kbench median:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "otlpsink" {
		if err := serveSink(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "otlpsink:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg config
	if err := env.Parse(&cfg); err != nil {
		return err
	}
	if len(cfg.Brokers) == 0 || cfg.RedisURL == "" {
		return errors.New("KCHAT_TEST_KAFKA_BROKERS and KCHAT_TEST_REDIS_URL must be set: run 'make services-up' and export what it prints")
	}
	for _, s := range cfg.Only {
		if !slices.Contains(scenarios, s) {
			return fmt.Errorf("KCHAT_BENCH_ONLY: unknown scenario %q (have %s)", s, strings.Join(scenarios, ", "))
		}
	}
	switch {
	case cfg.Runs < 1:
		return fmt.Errorf("KCHAT_BENCH_RUNS: %d runs; want 1 or more", cfg.Runs)
	case cfg.Runs > 1 && len(cfg.Only) > 0:
		return errors.New("KCHAT_BENCH_RUNS takes full runs: unset KCHAT_BENCH_ONLY (or run `kbench median` on runs of your own)")
	}
	if cfg.Out == "" {
		cfg.Out = defaultOut(cfg.Short)
	}
	if cfg.Runs > 1 {
		return runSeveral(ctx, cfg)
	}
	tmp, err := os.MkdirTemp("", "kbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{
		cfg: cfg, p: fullParams, brokers: cfg.Brokers, tmp: tmp, logDir: filepath.Join(tmp, "logs"),
		run:      time.Now().UTC().Format("20060102-150405"),
		quietLog: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if cfg.Short {
		b.p = shortParams
	}
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		return err
	}
	b.logf("building the services")
	if b.bins, err = buildBinaries(ctx, filepath.Join(tmp, "bin")); err != nil {
		return err
	}
	if cfg.Profiles != "" {
		if err := os.MkdirAll(cfg.Profiles, 0o755); err != nil {
			return err
		}
		b.bins.profiles = cfg.Profiles
	}
	res := &Results{Started: time.Now().UTC(), Short: cfg.Short, Machine: describeMachine(ctx, cfg.RedisURL), Settings: b.settings(),
		Scenarios: map[string]ScenarioRun{}}
	defer b.cleanup()
	for _, name := range scenarios {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, name) {
			continue
		}
		start := time.Now()
		if err := b.runScenario(ctx, name, res); err != nil {
			return fmt.Errorf("%s: %w (service logs: %s)", name, err, b.keepLogs())
		}
		res.Scenarios[name] = ScenarioRun{Run: res.Started, Started: start.UTC(), Finished: time.Now().UTC()}
		b.logf("%s: done in %s", name, time.Since(start).Round(time.Second))
	}
	res.Finished = time.Now().UTC()
	if len(cfg.Only) > 0 {
		kept, err := keepEarlier(cfg.Out, res)
		if err != nil {
			return fmt.Errorf("keeping the other scenarios' figures: %w", err)
		}
		if len(kept) > 0 {
			b.logf("kept the figures of %s from %s", strings.Join(kept, ", "), filepath.Join(cfg.Out, "benchmarks.json"))
		}
	}
	res.Rows = rows(res)
	if err := writeRunFiles(cfg.Out, nil); err != nil {
		return err
	}
	return writeResults(cfg.Out, res)
}

// defaultOut is where a run writes without KCHAT_BENCH_OUT.
func defaultOut(short bool) string {
	if short {
		return filepath.Join("bin", "bench")
	}
	return "docs"
}

func (b *bench) runScenario(ctx context.Context, name string, res *Results) error {
	var err error
	switch name {
	case "produce":
		res.Produce, err = b.runProduce(ctx)
	case "fetch":
		res.Fetch, err = b.runFetch(ctx)
	case "chat":
		res.Chat, err = b.runChat(ctx)
	case "memory":
		res.Memory, err = b.runMemory(ctx)
	case "huma":
		res.Huma, err = b.runHuma(ctx)
	case "compression":
		res.Compression, err = b.runCompression(ctx)
	case "stream":
		res.Stream, err = b.runStream(ctx)
	case "tracing":
		res.Tracing, err = b.runTracing(ctx)
	case "scale":
		res.Scale, err = b.runScale(ctx)
	case "peer":
		res.Peer, err = b.runPeer(ctx)
	}
	return err
}

// bench is one run's shared state.
type bench struct {
	cfg      config
	p        params
	bins     *binaries
	brokers  []string
	tmp      string // the run's scratch folder, deleted at the end
	logDir   string
	run      string
	quietLog *slog.Logger
	topics   []string
}

// prefix is a topic prefix of its own for a scenario, so every scenario
// starts from empty topics and consumer groups.
func (b *bench) prefix(scenario string) string {
	p := fmt.Sprintf("kbench-%s-%s%d-", b.run, scenario, len(b.topics))
	b.topics = append(b.topics, p)
	return p
}

// serviceEnv is the environment every kchat service of a scenario gets.
func (b *bench) serviceEnv(prefix string) []string {
	return []string{
		"KCHAT_KAFKA_BROKERS=" + strings.Join(b.brokers, ","),
		"KCHAT_REDIS_URL=" + b.cfg.RedisURL,
		"KCHAT_REDIS_PREFIX=" + prefix,
		"KCHAT_TOPIC_PREFIX=" + prefix,
		"KCHAT_CONSUMER_GROUP=" + prefix + "consumer",
		"KCHAT_ANSWERER_GROUP=" + prefix + "answerer",
		"KCHAT_ANSWER_KEY=" + rand.Text() + rand.Text(), // one per scenario: its services share it
		"KCHAT_RECEIPT_KEY=" + rand.Text() + rand.Text(),
		"KCHAT_LOG_FORMAT=json",
	}
}

// cpu meters this process and the given service processes, each under
// its service's name.
func (b *bench) cpu(svcs ...*service) *cpuMeter {
	m := &cpuMeter{}
	for _, s := range svcs {
		m.add(s.name, s.pid())
	}
	return m
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kbench %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// keepLogs copies the service logs somewhere that outlives the run.
func (b *bench) keepLogs() string {
	dst := filepath.Join(b.cfg.Out, "kbench-logs")
	_ = os.MkdirAll(dst, 0o755)
	entries, _ := os.ReadDir(b.logDir)
	for _, e := range entries {
		if data, err := os.ReadFile(filepath.Join(b.logDir, e.Name())); err == nil {
			_ = os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644)
		}
	}
	return dst
}

// cleanup deletes the run's topics.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := deleteTopics(ctx, b.brokers, b.topics); err != nil {
		b.logf("cleanup: %v", err)
	}
}
