package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The scale scenario (issue 19): the chat load at one total question rate,
// spread evenly over 1, 2 and 4 gateway processes in front of one
// answerer, with answer routing (KCHAT_ANSWER_ROUTING=partition: each
// gateway owns partitions of the answer topic and reads only its own
// sockets' answers) and with broadcast reading (every gateway reads every
// answer, kchat before issue 19), the same-run baseline. It measures the
// answer records each gateway read and the CPU of all the gateways and the
// answerer per answered question.
const (
	scaleKchat     = "partition"
	scaleBroadcast = "broadcast"
	// scalePartitions of the answer topic: 4 gateways own 2 each.
	scalePartitions = 8
	// scaleGrace is KCHAT_ROUTING_GRACE: after an assignment a gateway
	// reads every partition (or the ones it gave up) for that long.
	scaleGrace = 3 * time.Second
	// scaleSettle is how long after the gateways own their partitions the
	// measured window starts at the earliest: past the grace.
	scaleSettle = scaleGrace + time.Second
	// scaleReadGoal: a gateway reads at most this many times its share
	// of the answers (answers ÷ N), as cmd/gateway's routing test bounds it.
	scaleReadGoal = 1.3
	// scaleCPUGoal is issue 19's: the CPU per question at the most
	// gateways at most this many times that at one.
	scaleCPUGoal = 1.1
)

// ScaleResult holds the scale scenario's raw figures.
type ScaleResult struct {
	Sessions        int     `json:"sessions"`
	Rate            float64 `json:"questions_per_second"`
	Partitions      int     `json:"answer_partitions"`
	GraceSeconds    float64 `json:"routing_grace_seconds"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	MeasuredSeconds float64 `json:"measured_seconds"`
	Gateways        []int   `json:"gateway_counts"`
	// Runs are in the order they ran.
	Runs []ScaleRun `json:"runs"`
}

// ScaleRun is one run: N gateways, one routing mode.
type ScaleRun struct {
	Order    int    `json:"order"`
	Routing  string `json:"routing"`
	Gateways int    `json:"gateways"`
	Sent     int64  `json:"sent"`
	// Due is the questions due in the measured window, Answered those of
	// them answered.
	Due      int64  `json:"due_in_window"`
	Answered int64  `json:"answered_in_window"`
	Errors   int64  `json:"errors"`
	FirstErr string `json:"first_error,omitempty"`
	// Read is each gateway's kchat_gateway_answers_read_total over the
	// measured window (and the drain after it).
	Read []float64 `json:"answers_read_per_gateway"`
	// Owned is each gateway's kchat_gateway_answer_partitions_owned when
	// the window started; OwnedAfter when it ended.
	Owned      []float64 `json:"partitions_owned"`
	OwnedAfter []float64 `json:"partitions_owned_after"`
	// ServicesCPU is the CPU of the gateways and the answerer per answered
	// question; CPUPerOp adds the load generator's.
	ServicesCPU float64 `json:"services_cpu_us_per_question"`
	CPUPerOp    float64 `json:"cpu_us_per_question"`
	// CPUByProcess splits CPUPerOp between the load generator (kbench),
	// the answerer and the gateways (all N under "gateway": with routing
	// each serves answered ÷ N of the questions, so this is also one
	// gateway's CPU per question of its own).
	CPUByProcess map[string]float64 `json:"cpu_us_per_question_by_process,omitempty"`
	// IdleCPU is each process's CPU a second (µs) with no session yet,
	// measured over IdleSeconds: the fixed cost in CPUByProcess.
	IdleCPU     map[string]float64 `json:"idle_cpu_us_per_second_by_process,omitempty"`
	IdleSeconds float64            `json:"idle_seconds,omitempty"`
	Latency     Percentiles        `json:"latency"`
}

// aboveIdle is process name's CPU per question less its idle cost over
// the measured window of seconds: what each further question costs.
func (r ScaleRun) aboveIdle(name string, seconds float64) float64 {
	return r.CPUByProcess[name] - ratio(r.IdleCPU[name]*seconds, float64(r.Answered))
}

// readMean is the answer records a gateway read, on average.
func (r ScaleRun) readMean() float64 {
	if len(r.Read) == 0 {
		return 0
	}
	var sum float64
	for _, v := range r.Read {
		sum += v
	}
	return sum / float64(len(r.Read))
}

// share is the answers a gateway's own sessions got: answered ÷ N.
func (r ScaleRun) share() float64 {
	return ratio(float64(r.Answered), float64(r.Gateways))
}

// readMax is the most any gateway read over its share (answered ÷ N):
// 1 when each read exactly its own sessions' answers, N in broadcast.
func (r ScaleRun) readMax() float64 {
	var most float64
	for _, v := range r.Read {
		most = max(most, v)
	}
	return ratio(most, r.share())
}

// run returns the run of routing with n gateways (nil when it did not run).
func (s *ScaleResult) run(routing string, n int) *ScaleRun {
	for i := range s.Runs {
		if s.Runs[i].Routing == routing && s.Runs[i].Gateways == n {
			return &s.Runs[i]
		}
	}
	return nil
}

// scaleOrder is the order of the two modes for the i-th gateway count:
// alternated, so that neither always runs first.
func scaleOrder(i int) []string {
	if i%2 == 0 {
		return []string{scaleKchat, scaleBroadcast}
	}
	return []string{scaleBroadcast, scaleKchat}
}

// scaleMeasureFrom is when a run's measured window starts: after the
// load's warm-up, and no sooner than scaleSettle after the gateways
// settled on their partitions.
func scaleMeasureFrom(start time.Time, warmup time.Duration, settled time.Time) time.Time {
	from := start.Add(warmup)
	if s := settled.Add(scaleSettle); s.After(from) {
		return s
	}
	return from
}

// runScale runs each gateway count in both modes once.
func (b *bench) runScale(ctx context.Context) (*ScaleResult, error) {
	res := &ScaleResult{Sessions: b.p.scaleSessions, Rate: float64(b.p.scaleSessions), Partitions: scalePartitions,
		GraceSeconds: scaleGrace.Seconds(), WarmupSeconds: b.p.scaleWarmup.Seconds(), MeasuredSeconds: b.p.scaleDuration.Seconds(),
		Gateways: b.p.scaleGateways}
	if !b.cfg.Short {
		// A discarded run first: the broker and the machine's caches warm
		// on it, not on the first measured run.
		b.logf("scale: a discarded warm-up run (1 gateway)")
		if _, err := b.scaleRun(ctx, scaleKchat, 1, 0, 3*time.Second, 5*time.Second); err != nil {
			return nil, fmt.Errorf("warm-up run: %w", err)
		}
	}
	order := 0
	for i, n := range b.p.scaleGateways {
		for _, routing := range scaleOrder(i) {
			order++
			run, err := b.scaleRun(ctx, routing, n, order, b.p.scaleWarmup, b.p.scaleDuration)
			if err != nil {
				return nil, fmt.Errorf("%s, %d gateway(s): %w", routing, n, err)
			}
			res.Runs = append(res.Runs, run)
			b.logf("scale: %s, %d gateway(s): %d/%d answered, read per gateway %v, %.0f µs services CPU per question (%.0f with kbench)",
				routing, n, run.Answered, run.Due, run.Read, run.ServicesCPU, run.CPUPerOp)
		}
	}
	return res, nil
}

// scaleSnapshot is what a run reads at either end of its window.
type scaleSnapshot struct {
	cpu         cpuSample
	read, owned []float64
	err         error
}

func (b *bench) scaleSnapshot(ctx context.Context, cpu *cpuMeter, gws []*service) scaleSnapshot {
	s := scaleSnapshot{cpu: cpu.sample()}
	for _, gw := range gws {
		m, err := scrape(ctx, gw.admin)
		if err != nil {
			s.err = err
			return s
		}
		read, _ := metricValue(m, "kchat_gateway_answers_read_total")
		owned, _ := metricValue(m, "kchat_gateway_answer_partitions_owned")
		s.read, s.owned = append(s.read, read), append(s.owned, owned)
	}
	return s
}

// scaleRun is one run: the answerer and n gateways with routing, the
// sessions spread evenly over the gateways (session i on gateway i mod n).
func (b *bench) scaleRun(ctx context.Context, routing string, n, order int, warmup, duration time.Duration) (ScaleRun, error) {
	sessions := b.p.scaleSessions
	label := fmt.Sprintf("scale-%s-%d", routing, n)
	prefix := b.prefix(label)
	env := append(b.serviceEnv(prefix), "KCHAT_QUERY_PUBLISHER=kafka", "KCHAT_GENERATOR=extractive",
		"KCHAT_ANSWER_ROUTING="+routing, "KCHAT_ANSWER_PARTITIONS="+strconv.Itoa(scalePartitions),
		"KCHAT_ROUTING_GRACE="+scaleGrace.String())
	answerer, err := b.bins.start(ctx, b.logDir, "answerer", "KCHAT_ANSWERER_ADDR", env...)
	if err != nil {
		return ScaleRun{}, err
	}
	defer func() { _ = answerer.stop() }()
	auth := newSessionAuth()
	gws := make([]*service, 0, n)
	defer func() {
		var wg sync.WaitGroup
		for _, gw := range gws {
			wg.Go(func() { _ = gw.stop() })
		}
		wg.Wait()
	}()
	for range n {
		gw, err := b.bins.start(ctx, b.logDir, "gateway", "KCHAT_GATEWAY_ADDR", append(env, auth.env(sessions)...)...)
		if err != nil {
			return ScaleRun{}, err
		}
		gws = append(gws, gw)
	}
	settled := time.Now()
	if routing == scaleKchat {
		b.logf("%s: waiting until the gateways own the answer topic's %d partitions", label, scalePartitions)
		if err := waitOwned(ctx, gws, scalePartitions, 60*time.Second); err != nil {
			return ScaleRun{}, err
		}
		settled = time.Now()
	}
	cpu := b.cpu(append([]*service{answerer}, gws...)...)
	var (
		idle        map[string]float64
		idleSeconds float64
	)
	if order > 0 && b.p.scaleIdle > 0 { // not in the discarded warm-up run
		b.logf("%s: the services' CPU for %s with no session", label, b.p.scaleIdle)
		cpu0, t0 := cpu.sample(), time.Now()
		sleep(ctx, b.p.scaleIdle)
		idle, idleSeconds = cpu.sample().perSecond(cpu0, time.Since(t0)), time.Since(t0).Seconds()
	}

	b.logf("%s: connecting %d sessions", label, sessions)
	conns := make([]*chatConn, sessions)
	for i := range conns {
		wsURL := "ws" + strings.TrimPrefix(gws[i%n].url, "http") + "/ws"
		if conns[i], err = dialChat(ctx, wsURL, auth, i); err != nil {
			return ScaleRun{}, err
		}
	}
	defer func() {
		for _, c := range conns {
			_ = c.ws.Close()
		}
	}()
	// One question through each gateway first (session g is on gateway g).
	for g := range min(n, sessions) {
		reasked, err := conns[g].warm(ctx)
		if err != nil {
			return ScaleRun{}, fmt.Errorf("first answer on gateway %d (asked %d times): %w", g+1, reasked+1, err)
		}
		if reasked > 0 {
			b.logf("%s: gateway %d's first question was answered after asking %d more time(s)", label, g+1, reasked)
		}
	}
	start := time.Now().Add(50 * time.Millisecond)
	rt := &roundTrips{measureFrom: scaleMeasureFrom(start, warmup, settled), lat: newLatencies()}
	end := rt.measureFrom.Add(duration)
	for _, c := range conns {
		go c.read(rt)
	}
	b.logf("%s: %d questions/s over %d gateway(s) until %s", label, sessions, n, end.Format("15:04:05"))
	before := make(chan scaleSnapshot, 1)
	go func() {
		time.Sleep(time.Until(rt.measureFrom))
		before <- b.scaleSnapshot(ctx, cpu, gws)
	}()
	schedule(ctx, sessions, start, end, func(s, seq int, due time.Time) {
		conns[s].send(rt, seq, questions[(s+seq)%len(questions)], due)
	})
	waitAnswers(conns)
	after := b.scaleSnapshot(ctx, cpu, gws)
	first := <-before
	if err := errors.Join(first.err, after.err); err != nil {
		return ScaleRun{}, err
	}
	c := rt.result(after.cpu.total() - first.cpu.total())
	out := ScaleRun{Order: order, Routing: routing, Gateways: n, Sent: c.Sent, Answered: c.Answered, Errors: c.Errors, FirstErr: c.FirstErr,
		Due: int64(sessions) * int64(duration/time.Second), Owned: first.owned, OwnedAfter: after.owned,
		IdleCPU: idle, IdleSeconds: idleSeconds,
		CPUPerOp: c.CPUPerOp, Latency: c.Latency}
	for g := range gws {
		out.Read = append(out.Read, after.read[g]-first.read[g])
	}
	if out.Answered > 0 {
		out.ServicesCPU = (after.cpu.services() - first.cpu.services()).Seconds() * 1e6 / float64(out.Answered)
		out.CPUByProcess = after.cpu.perOp(first.cpu, out.Answered)
	}
	return out, nil
}

// waitOwned waits until each gateway owns some of the answer topic's
// partitions and they own all of them between them.
func waitOwned(ctx context.Context, gws []*service, partitions int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var owned []float64
	for {
		owned = owned[:0]
		sum, each := 0.0, true
		for _, gw := range gws {
			m, err := scrape(ctx, gw.admin)
			if err != nil {
				return err
			}
			n, _ := metricValue(m, "kchat_gateway_answer_partitions_owned")
			owned = append(owned, n)
			sum += n
			each = each && n > 0
		}
		if each && sum == float64(partitions) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateways own %v of the %d answer partitions after %s", owned, partitions, timeout)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrape reads the Prometheus text of the admin listener at addr.
func scrape(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET http://%s/metrics: %s", addr, resp.Status)
	}
	return string(body), nil
}

// metricValue is the value of series (a name, or a name with its labels
// as the exposition prints them) in Prometheus text; false when absent.
func metricValue(text, series string) (float64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, series)
		if !ok || (rest != "" && rest[0] != ' ') {
			continue // another series with this prefix, or labels
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		return v, true
	}
	return 0, false
}
