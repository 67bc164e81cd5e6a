package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Results is everything a run measured; benchmarks.json holds it whole.
type Results struct {
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Short    bool           `json:"short_mode"`
	Machine  Machine        `json:"machine"`
	Settings []string       `json:"settings"`
	Rows     []Row          `json:"rows"`
	Produce  *ProduceResult `json:"produce,omitempty"`
	Fetch    *FetchResult   `json:"fetch,omitempty"`
	Chat     *ChatResult    `json:"chat,omitempty"`
	Memory   *MemoryResult  `json:"memory,omitempty"`
	Huma     *HumaResult    `json:"huma,omitempty"`

	Compression *CompressionResult `json:"compression,omitempty"`
	Stream      *StreamResult      `json:"stream,omitempty"`
	Tracing     *TracingResult     `json:"tracing,omitempty"`
	Scale       *ScaleResult       `json:"scale,omitempty"`
	Peer        *PeerResult        `json:"peer,omitempty"`
	// Scenarios says when each scenario's figures were measured: a run of
	// some scenarios keeps the others' from the file it updates.
	Scenarios map[string]ScenarioRun `json:"scenario_runs,omitempty"`
	// Runs, in a report of several runs, are the runs whose medians Rows
	// holds; the scenarios' figures are the last run's.
	Runs []RunRef `json:"median_of,omitempty"`
}

// Machine describes where the figures come from.
type Machine struct {
	CPU       string            `json:"cpu"`
	Cores     int               `json:"cores"`
	MemoryGiB float64           `json:"memory_gib"`
	Kernel    string            `json:"kernel"`
	Go        string            `json:"go"`
	Java      string            `json:"java"`
	Kafka     string            `json:"kafka"`
	Redis     string            `json:"redis"`
	Modules   map[string]string `json:"modules"`
}

// Row is one line of the summary table: kchat, its baseline, their ratio
// and the goal the issue set.
type Row struct {
	Scenario string  `json:"scenario"`
	Measure  string  `json:"measure"`
	Kchat    float64 `json:"kchat"`
	Baseline float64 `json:"baseline"`
	Unit     string  `json:"unit"`
	Ratio    float64 `json:"ratio"`
	Goal     string  `json:"goal"`
	Met      *bool   `json:"met,omitempty"`
	Note     string  `json:"note,omitempty"`
	// PerRun is, in a report of several runs (median.go), the row's
	// figures in each run that has it.
	PerRun []RunFigures `json:"per_run,omitempty"`

	// test decides Goal on Kchat and Baseline (set by judged); kept so
	// that a report of several runs decides it again on their medians.
	test goalTest
	// unmet is a part of the goal beyond the two figures found wanting in
	// this run (a duplicate under "with exactly-once kept"): the goal is
	// missed whatever the figures.
	unmet bool
	// worst marks a count that must be 0 in every run: a report of
	// several runs takes the highest run, not the median.
	worst bool
}

// goalTest decides a goal from a row's kchat and baseline figures.
type goalTest func(kchat, baseline float64) bool

// judged sets r's goal, met when test holds on r's figures and nothing
// else the goal asks is unmet.
func (r Row) judged(goal string, test goalTest) Row {
	r.Goal, r.test = goal, test
	r.Met = met(!r.unmet && test(r.Kchat, r.Baseline))
	return r
}

// atMost: kchat ≤ x × baseline, both measured.
func atMost(x float64) goalTest {
	return func(k, b float64) bool { return k > 0 && b > 0 && k <= x*b }
}

// atLeast: kchat ≥ x × baseline, the baseline measured.
func atLeast(x float64) goalTest {
	return func(k, b float64) bool { return b > 0 && k >= x*b }
}

// within: kchat ≤ baseline + d, the baseline measured.
func within(d float64) goalTest {
	return func(k, b float64) bool { return b > 0 && k <= b+d }
}

// upTo: kchat ≤ limit, whatever the baseline.
func upTo(limit float64) goalTest {
	return func(k, _ float64) bool { return k <= limit }
}

// none: a count that must be 0.
func none(k, _ float64) bool { return k == 0 }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func met(ok bool) *bool { return &ok }

// rows turns the raw figures into the summary table.
func rows(r *Results) []Row {
	var out []Row
	if p := r.Produce; p != nil {
		for _, n := range produceClients {
			k, b := p.Kchat[fmt.Sprint(n)], p.Baseline[fmt.Sprint(n)]
			row := Row{Scenario: "produce", Measure: fmt.Sprintf("throughput, %d client(s)", n), Kchat: k.PerSecond, Baseline: b.PerSecond,
				Unit: "msg/s", Ratio: ratio(k.PerSecond, b.PerSecond),
				Note: fmt.Sprintf("CPU µs/op %.0f vs %.0f; errors %d vs %d", k.CPUPerOp, b.CPUPerOp, k.Errors, b.Errors)}
			if n == 64 {
				row = row.judged("≥ 0.5× (stretch 0.7×)", atLeast(0.5))
			}
			out = append(out, row)
		}
		k, b := p.Kchat["64"], p.Baseline["64"]
		out = append(out, Row{Scenario: "produce", Measure: "CPU per message, 64 clients", Kchat: k.CPUPerOp, Baseline: b.CPUPerOp,
			Unit: "µs", Ratio: ratio(k.CPUPerOp, b.CPUPerOp),
			Note: fmt.Sprintf("kchat: the producer service and kbench's HTTP clients; baseline: ProduceSync in kbench; throughput %s vs %s msg/s",
				fmtNum(k.PerSecond), fmtNum(b.PerSecond))}.judged("≤ 2×", atMost(2)))
		for _, l := range p.Latency {
			out = append(out, Row{Scenario: "produce", Measure: fmt.Sprintf("p50 latency at %s of max", l.Load),
				Kchat: l.Kchat.Latency.P50, Baseline: l.Baseline.Latency.P50, Unit: "ms", Ratio: ratio(l.Kchat.Latency.P50, l.Baseline.Latency.P50),
				Note: fmt.Sprintf("at %.0f msg/s; p99 %.2f vs %.2f ms", l.Kchat.Rate, l.Kchat.Latency.P99, l.Baseline.Latency.P99)}.judged("≤ baseline + 0.3 ms", within(0.3)))
		}
	}
	out = append(out, fetchRows(r.Fetch)...)
	out = append(out, chatRows(r.Chat)...)
	if m := r.Memory; m != nil {
		out = append(out, Row{Scenario: "memory", Measure: fmt.Sprintf("RSS per idle WebSocket, %d connections", m.Connections),
			Kchat: m.Kchat.PerConnKiB, Baseline: m.Baseline.PerConnKiB, Unit: "KiB", Ratio: ratio(m.Kchat.PerConnKiB, m.Baseline.PerConnKiB)}.
			judged("≤ 0.5× and ≤ 16 KiB", func(k, b float64) bool { return atMost(0.5)(k, b) && k <= 16 }))
	}
	if h := r.Huma; h != nil {
		out = append(out, Row{Scenario: "huma overhead", Measure: "POST /messages handler in process", Kchat: h.Kchat.NsPerOp, Baseline: h.Baseline.NsPerOp,
			Unit: "ns/op", Ratio: ratio(h.Kchat.NsPerOp, h.Baseline.NsPerOp),
			Note: fmt.Sprintf("allocs/op %d vs %d", h.Kchat.AllocsPerOp, h.Baseline.AllocsPerOp)}.judged("≤ 1.2×", atMost(1.2)))
	}
	out = append(out, compressionRows(r.Compression)...)
	out = append(out, streamRows(r.Stream)...)
	out = append(out, tracingRows(r.Tracing)...)
	out = append(out, scaleRows(r.Scale)...)
	out = append(out, peerRows(r.Peer)...)
	return append(out, serviceCPURows(r)...)
}

// fetchRows are the fetch scenario's rows: throughput against the
// baseline and across clients, the tail latency at 32 clients (issue
// 20), and the check of what every run was served.
func fetchRows(f *FetchResult) []Row {
	if f == nil {
		return nil
	}
	k1, k32 := f.Kchat["1"], f.Kchat["32"]
	wrong := 0
	for _, c := range f.Checks {
		wrong += c.Duplicates + c.Gaps + int(c.Uncommitted)
	}
	return []Row{
		Row{Scenario: "fetch", Measure: "throughput, 1 client", Kchat: k1.PerSecond, Baseline: f.Baseline.PerSecond, Unit: "msg/s",
			Ratio: ratio(k1.PerSecond, f.Baseline.PerSecond),
			Note:  fmt.Sprintf("CPU µs/op %.0f vs %.0f", k1.CPUPerOp, f.Baseline.CPUPerOp)}.judged("≥ 0.5×", atLeast(0.5)),
		Row{Scenario: "fetch", Measure: "throughput, 32 clients vs kchat's 1 client", Kchat: k32.PerSecond, Baseline: k1.PerSecond, Unit: "msg/s",
			Ratio: ratio(k32.PerSecond, k1.PerSecond), Note: fmt.Sprintf("CPU µs/op %.0f", k32.CPUPerOp)}.judged("≥ 4×", atLeast(4)),
		// Closed loop: each fetch timed from its request to its response;
		// an empty fetch (the topic ran dry) is an error, not timed.
		Row{Scenario: "fetch", Measure: "p99.9 latency, 32 clients", Kchat: k32.Latency.P999, Unit: "ms", unmet: k32.Latency.Count == 0,
			Note: fmt.Sprintf("p50 %s, p99 %s, max %s ms over %d fetches (errors, empty fetches included, %d, not timed); 1 client p99.9 %s ms, baseline (franz-go, 1 client) %s ms",
				fmtNum(k32.Latency.P50), fmtNum(k32.Latency.P99), fmtNum(k32.Latency.Max), k32.Latency.Count, k32.Errors,
				fmtNum(k1.Latency.P999), fmtNum(f.Baseline.Latency.P999))}.judged("≤ 20 ms", upTo(20)),
		Row{Scenario: "fetch", Measure: "duplicates + gaps + served-but-uncommitted, every run", Kchat: float64(wrong), Unit: "messages",
			Note: checksNote(f.Checks), worst: true}.judged("0", none),
	}
}

func checksNote(cs map[string]FetchCheck) string {
	var parts []string
	for _, k := range []string{"kchat-1", "kchat-32", "baseline-1"} {
		if c, ok := cs[k]; ok {
			parts = append(parts, fmt.Sprintf("%s: %d served, %d dup, %d gaps, %d uncommitted", k, c.Served, c.Duplicates, c.Gaps, c.Uncommitted))
		}
	}
	return strings.Join(parts, "; ")
}

// settings lists what a reader needs to reproduce the run.
func (b *bench) settings() []string {
	p := b.p
	return []string{
		fmt.Sprintf("closed-loop runs: %s warm-up, then %s measured", p.warmup, p.duration),
		fmt.Sprintf("open-loop runs: fixed arrival rate, latency from each request's due time (no coordinated omission), %s warm-up, %s measured, up to 64 requests in flight", p.warmup, p.latencyDuration),
		fmt.Sprintf("message text %d bytes (produce: JSON body to POST /messages; baseline: the same v1 envelope and headers kchat writes)", p.messageBytes),
		"producer clients (kchat's publisher and the produce baseline): adapters/kafka.NewClient — idempotent, acks=all, linger 0, delivery timeout 10s; ProduceSync per message",
		"group consumers (kchat's consumer service and the fetch baseline): read_committed, manual commits, fetch max wait 1s, start at the earliest offset",
		"chat stages (kchat's answerer and the chain baseline): GroupTransactSession, read_committed, linger 0, up to 100 records per transaction; answers read by a group-less read_committed reader",
		fmt.Sprintf("fetch: %d prompt records prefilled per run on fresh topics (3 partitions); kchat runs GET /messages?type=prompt&limit=1&ack=auto&wait=1s", p.fetchPrefill),
		fmt.Sprintf("chat: %d WebSocket sessions, each a user of its own with a JWT (KCHAT_AUTH=token), each asking one question per second (phases spread over the second), %s warm-up, %s measured; extractive generator, Redis sessions", p.chatSessions, p.chatWarmup, p.chatDuration),
		fmt.Sprintf("memory: %d idle connections dialled from %d loopback source addresses; the gateway's CPU over %s with no connection; RSS (VmRSS) measured right after that and 3 s after the connections; then the gateway's CPU over %s with them idle, answering its pings (KCHAT_WS_PING_INTERVAL=%s)", p.wsConns, sourceAddrs, p.idleCPUWindow, p.idleCPUWindow, memoryPingInterval),
		"CPU per operation: user+system time of the load generator plus the kchat services under test (the broker, shared by both sides, is not counted); split by process (/proc/<pid>/stat of each service, getrusage for kbench) in the service CPU section",
		"every run uses its own topics (3 partitions, replication 1) and consumer groups, deleted at the end",
		fmt.Sprintf("compression: chat questions in kchat's v1 envelope through adapters/kafka.NewClient with each KCHAT_KAFKA_COMPRESSION codec (franz-go's default levels), ProduceSync per message, %s warm-up, %s measured per codec, a topic per codec; bytes from DescribeLogDirs over the topic's records, warm-up included", p.warmup, p.duration),
		fmt.Sprintf("stream: %d WebSocket sessions (JWTs as in chat), each asking one question per second, %s warm-up, %s measured; KCHAT_GENERATOR=openai against a fake OpenAI-compatible streaming model in kbench (%d tokens, %s apart), KCHAT_ANSWERER_CONCURRENCY=%d; Redis sessions", streamSessions, p.chatWarmup, p.chatDuration, streamTokens, streamTokenDelay, streamConcurrency),
		fmt.Sprintf("tracing: the chat scenario's load at %d sessions × 1 question/s (fewer than chat's, so that the machine keeps up), %s warm-up, %s measured, %d run(s) of each variant in rotated order: tracing off (KCHAT_TRACING=off), on (KCHAT_TRACING=otlp, parentbased_always_on, the SDK's batching exporter to an OTLP/HTTP receiver that drops the spans), and the services built from the commit before tracing; medians", p.tracingSessions, p.tracingWarmup, p.tracingDuration, p.tracingRuns),
		fmt.Sprintf("scale: the chat load at %d questions/s in all (%d sessions × 1 question/s, JWTs as in chat), spread evenly over N = %s gateway processes (KCHAT_QUERY_PUBLISHER=kafka) and one answerer (extractive), once with KCHAT_ANSWER_ROUTING=partition and once with =broadcast per N; KCHAT_ANSWER_PARTITIONS=%d, KCHAT_ROUTING_GRACE=%s, the window starting no sooner than %s after the gateways own all partitions; %s warm-up, %s measured per run; answer records read from each gateway's kchat_gateway_answers_read_total", p.scaleSessions, p.scaleSessions, joinInts(p.scaleGateways), scalePartitions, scaleGrace, scaleSettle, p.scaleWarmup, p.scaleDuration),
	}
}

func describeMachine(ctx context.Context, redisURL string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Modules: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if mm := regexp.MustCompile(`model name\s*:\s*(.+)`).FindSubmatch(b); mm != nil {
			m.CPU = string(mm[1])
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGiB = kb / (1 << 20)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "java", "-version").CombinedOutput(); err == nil {
		m.Java = strings.SplitN(string(out), "\n", 2)[0]
	}
	m.Kafka = kafkaVersion()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			for _, want := range []string{"franz-go", "huma", "gorilla/websocket", "go-redis", "go-chi"} {
				if strings.Contains(d.Path, want) {
					m.Modules[d.Path] = d.Version
				}
			}
		}
	}
	m.Redis = redisVersion(ctx, redisURL)
	return m
}

// kafkaVersion finds the running broker's version from the Kafka jar on
// its class path (named there, or in a folder the class path lists).
func kafkaVersion() string {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	re := regexp.MustCompile(`kafka_2\.1[23]-([0-9][0-9.]*[0-9])\.jar`)
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("kafka.Kafka")) {
			continue
		}
		if mm := re.FindSubmatch(b); mm != nil {
			return "Apache Kafka " + string(mm[1])
		}
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if (a != "-cp" && a != "-classpath") || i+1 == len(args) {
				continue
			}
			for _, entry := range strings.Split(args[i+1], ":") {
				jars, _ := filepath.Glob(filepath.Join(filepath.Dir(entry), "kafka_2.1*.jar"))
				for _, j := range jars {
					if mm := re.FindStringSubmatch(filepath.Base(j)); mm != nil {
						return "Apache Kafka " + mm[1]
					}
				}
			}
		}
	}
	return "unknown"
}

func redisVersion(ctx context.Context, url string) string {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return "unknown"
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	info, err := rc.Info(ctx, "server").Result()
	if err != nil {
		return "unknown"
	}
	if mm := regexp.MustCompile(`redis_version:(\S+)`).FindStringSubmatch(info); mm != nil {
		return "Redis " + mm[1]
	}
	return "unknown"
}

// writeResults writes benchmarks.json and benchmarks.md into dir.
func writeResults(dir string, r *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "benchmarks.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	md := markdown(r)
	if err := os.WriteFile(filepath.Join(dir, "benchmarks.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kbench: wrote %s and %s\n", filepath.Join(dir, "benchmarks.md"), filepath.Join(dir, "benchmarks.json"))
	fmt.Fprint(os.Stderr, summaryTable(r.Rows))
	return nil
}
