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
}

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
				row.Goal, row.Met = "≥ 0.5× (stretch 0.7×)", met(row.Ratio >= 0.5)
			}
			out = append(out, row)
		}
		for _, l := range p.Latency {
			out = append(out, Row{Scenario: "produce", Measure: fmt.Sprintf("p50 latency at %s of max (%.0f msg/s)", l.Load, l.Kchat.Rate),
				Kchat: l.Kchat.Latency.P50, Baseline: l.Baseline.Latency.P50, Unit: "ms", Ratio: ratio(l.Kchat.Latency.P50, l.Baseline.Latency.P50),
				Goal: "≤ baseline + 0.3 ms", Met: met(l.Kchat.Latency.P50 <= l.Baseline.Latency.P50+0.3),
				Note: fmt.Sprintf("p99 %.2f vs %.2f ms", l.Kchat.Latency.P99, l.Baseline.Latency.P99)})
		}
	}
	if f := r.Fetch; f != nil {
		k1, k32 := f.Kchat["1"], f.Kchat["32"]
		out = append(out,
			Row{Scenario: "fetch", Measure: "throughput, 1 client", Kchat: k1.PerSecond, Baseline: f.Baseline.PerSecond, Unit: "msg/s",
				Ratio: ratio(k1.PerSecond, f.Baseline.PerSecond), Goal: "≥ 0.5×", Met: met(ratio(k1.PerSecond, f.Baseline.PerSecond) >= 0.5),
				Note: fmt.Sprintf("CPU µs/op %.0f vs %.0f", k1.CPUPerOp, f.Baseline.CPUPerOp)},
			Row{Scenario: "fetch", Measure: "throughput, 32 clients vs kchat's 1 client", Kchat: k32.PerSecond, Baseline: k1.PerSecond, Unit: "msg/s",
				Ratio: ratio(k32.PerSecond, k1.PerSecond), Goal: "≥ 4×", Met: met(ratio(k32.PerSecond, k1.PerSecond) >= 4),
				Note: fmt.Sprintf("CPU µs/op %.0f", k32.CPUPerOp)})
		dupGaps, ok := 0, true
		for _, c := range f.Checks {
			dupGaps += c.Duplicates + c.Gaps
			ok = ok && c.OK()
		}
		out = append(out, Row{Scenario: "fetch", Measure: "duplicates + gaps + served-but-uncommitted, every run", Kchat: float64(dupGaps), Unit: "messages",
			Goal: "0", Met: met(ok), Note: checksNote(f.Checks)})
	}
	if c := r.Chat; c != nil {
		out = append(out,
			Row{Scenario: "chat round trip", Measure: fmt.Sprintf("p50, %d sessions × 1 query/s", c.Sessions), Kchat: c.Kchat.Latency.P50, Baseline: c.Chain.Latency.P50,
				Unit: "ms", Ratio: ratio(c.Kchat.Latency.P50, c.Chain.Latency.P50), Goal: "≤ chain + 2 ms", Met: met(c.Kchat.Latency.P50 <= c.Chain.Latency.P50+2),
				Note: fmt.Sprintf("plain (non-transactional) chain p50 %.2f ms", c.Plain.Latency.P50)},
			Row{Scenario: "chat round trip", Measure: "p99", Kchat: c.Kchat.Latency.P99, Baseline: c.Chain.Latency.P99,
				Unit: "ms", Ratio: ratio(c.Kchat.Latency.P99, c.Chain.Latency.P99), Goal: "≤ 2× chain", Met: met(c.Kchat.Latency.P99 <= 2*c.Chain.Latency.P99),
				Note: fmt.Sprintf("answered %d of %d measured; errors %d; plain chain p99 %.2f ms", c.Kchat.Answered, c.Kchat.Latency.Count, c.Kchat.Errors, c.Plain.Latency.P99)})
	}
	if m := r.Memory; m != nil {
		rt := ratio(m.Kchat.PerConnKiB, m.Baseline.PerConnKiB)
		out = append(out, Row{Scenario: "memory", Measure: fmt.Sprintf("RSS per idle WebSocket, %d connections", m.Connections),
			Kchat: m.Kchat.PerConnKiB, Baseline: m.Baseline.PerConnKiB, Unit: "KiB", Ratio: rt,
			Goal: "≤ 0.5× and ≤ 16 KiB", Met: met(rt <= 0.5 && m.Kchat.PerConnKiB <= 16)})
	}
	if h := r.Huma; h != nil {
		rt := ratio(h.Kchat.NsPerOp, h.Baseline.NsPerOp)
		out = append(out, Row{Scenario: "huma overhead", Measure: "POST /messages handler in process", Kchat: h.Kchat.NsPerOp, Baseline: h.Baseline.NsPerOp,
			Unit: "ns/op", Ratio: rt, Goal: "≤ 1.35×", Met: met(rt <= 1.35),
			Note: fmt.Sprintf("allocs/op %d vs %d", h.Kchat.AllocsPerOp, h.Baseline.AllocsPerOp)})
	}
	out = append(out, compressionRows(r.Compression)...)
	out = append(out, streamRows(r.Stream)...)
	out = append(out, tracingRows(r.Tracing)...)
	out = append(out, scaleRows(r.Scale)...)
	out = append(out, peerRows(r.Peer)...)
	return append(out, serviceCPURows(r)...)
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
