package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ChatResult holds the chat round-trip scenario's raw figures.
type ChatResult struct {
	Sessions int     `json:"sessions"`
	Rate     float64 `json:"queries_per_second"`
	Kchat    ChatRun `json:"kchat"`
	// Chain is the baseline: the same three hops with echo transforms, as
	// transactional consume-transform-produce like kchat's stages.
	Chain ChatRun `json:"chain_transactional"`
	// Plain is the same chain without transactions (at-least-once): what
	// Kafka allows when exactly-once is not asked for. For information.
	Plain ChatRun `json:"chain_plain"`
}

// ChatRun is one open-loop round-trip run.
type ChatRun struct {
	Sent int64 `json:"sent"`
	// Due is the questions due in the measured window (kchat's runs).
	Due      int64   `json:"due_in_window,omitempty"`
	Answered int64   `json:"answered"`
	Errors   int64   `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	CPUPerOp float64 `json:"cpu_us_per_op"`
	// ServicesCPUPerOp is the services' share of CPUPerOp (the load
	// generator's left out).
	ServicesCPUPerOp float64 `json:"services_cpu_us_per_op,omitempty"`
	// CPUByProcess splits CPUPerOp between the load generator (kbench),
	// the gateway and the answerer.
	CPUByProcess map[string]float64 `json:"cpu_us_per_op_by_process,omitempty"`
	Latency      Percentiles        `json:"latency"`
	Hops         Hops               `json:"hops"`
}

// questions are asked in turn; the knowledge base can answer them.
var questions = []string{
	"How do I run kchat?",
	"What does the consumer service do?",
	"How are answers delivered to my socket?",
	"Which Kafka topics does kchat use?",
	"How do I run the tests?",
}

// roundTrips tracks queries in flight and the latencies of the answers.
type roundTrips struct {
	measureFrom time.Time
	lat         *latencies
	sent        atomic.Int64
	answered    atomic.Int64
	errs        atomic.Int64
	firstErr    atomic.Value
}

func (r *roundTrips) fail(err error) {
	r.errs.Add(1)
	r.firstErr.CompareAndSwap(nil, err.Error())
}

func (r *roundTrips) answer(due time.Time) {
	if !due.Before(r.measureFrom) {
		r.answered.Add(1)
		r.lat.record(time.Since(due))
	}
}

func (r *roundTrips) result(cpuUsed time.Duration) ChatRun {
	c := ChatRun{Sent: r.sent.Load(), Answered: r.answered.Load(), Errors: r.errs.Load(), Latency: r.lat.percentiles()}
	if c.Answered > 0 {
		c.CPUPerOp = cpuUsed.Seconds() * 1e6 / float64(c.Answered)
	}
	if e, ok := r.firstErr.Load().(string); ok {
		c.FirstErr = e
	}
	return c
}

// schedule runs send for each of sessions at 1 query per second each,
// phases spread over the second, from start until end.
func schedule(ctx context.Context, sessions int, start, end time.Time, send func(session int, seq int, due time.Time)) {
	var wg sync.WaitGroup
	for s := range sessions {
		phase := time.Duration(s) * time.Second / time.Duration(sessions)
		wg.Go(func() {
			seq := 0
			for due := start.Add(phase); due.Before(end) && ctx.Err() == nil; due = due.Add(time.Second) {
				time.Sleep(time.Until(due))
				send(s, seq, due)
				seq++
			}
		})
	}
	wg.Wait()
}

// runChat measures a question's round trip over WebSocket through the
// gateway, Kafka, both answerer stages and back, against the three-hop
// franz-go chain.
func (b *bench) runChat(ctx context.Context) (*ChatResult, error) {
	res := &ChatResult{Sessions: b.p.chatSessions, Rate: float64(b.p.chatSessions)}
	if !b.cfg.Short {
		// A fresh broker compiles its transaction paths (JIT) under the
		// first transactional load; a discarded chain run takes that cost,
		// so it falls on neither side.
		saved := b.p
		b.p.chatWarmup, b.p.chatDuration = 5*time.Second, 10*time.Second
		b.logf("chat: warming the broker's transaction paths")
		_, err := b.chatChain(ctx, true)
		b.p = saved
		if err != nil {
			return nil, err
		}
	}
	var err error
	if res.Kchat, err = b.chatKchat(ctx); err != nil {
		return nil, err
	}
	if res.Chain, err = b.chatChain(ctx, true); err != nil {
		return nil, err
	}
	if res.Plain, err = b.chatChain(ctx, false); err != nil {
		return nil, err
	}
	return res, nil
}

func (b *bench) chatKchat(ctx context.Context) (ChatRun, error) {
	return b.kchatChat(ctx, kchatChat{bins: b.bins, label: "chat", sessions: b.p.chatSessions, warmup: b.p.chatWarmup, duration: b.p.chatDuration, hops: true})
}

// kchatChat is one run of kchat's gateway and answerer under the chat load.
type kchatChat struct {
	bins *binaries
	// label names the run's topic prefix, its log lines and its profiles.
	label            string
	env              []string // on top of serviceEnv and the chat's settings
	sessions         int      // each asks a question a second
	warmup, duration time.Duration
	hops             bool // read the hop times from the topics afterwards
}

// kchatChat runs kchat's gateway and answerer (from r.bins) and asks
// r.sessions questions a second over WebSocket, each session its own
// user; CPU per question counts both services and this process.
func (b *bench) kchatChat(ctx context.Context, r kchatChat) (ChatRun, error) {
	prefix := b.prefix(r.label)
	env := append(append(b.serviceEnv(prefix), "KCHAT_QUERY_PUBLISHER=kafka", "KCHAT_GENERATOR=extractive"), r.env...)
	answerer, err := r.bins.start(ctx, b.logDir, "answerer", "KCHAT_ANSWERER_ADDR", env...)
	if err != nil {
		return ChatRun{}, err
	}
	defer func() { _ = answerer.stop() }()
	auth := newSessionAuth()
	gateway, err := r.bins.start(ctx, b.logDir, "gateway", "KCHAT_GATEWAY_ADDR", append(env, auth.env(r.sessions)...)...)
	if err != nil {
		return ChatRun{}, err
	}
	defer func() { _ = gateway.stop() }()
	cpu := b.cpu(gateway, answerer)

	b.logf("%s: connecting %d sessions", r.label, r.sessions)
	wsURL := "ws" + strings.TrimPrefix(gateway.url, "http") + "/ws"
	conns := make([]*chatConn, r.sessions)
	for i := range conns {
		if conns[i], err = dialChat(ctx, wsURL, auth, i); err != nil {
			return ChatRun{}, err
		}
	}
	defer func() {
		for _, c := range conns {
			_ = c.ws.Close()
		}
	}()
	// One question through the whole pipeline first: the stages have
	// joined their groups and the feed reads.
	reasked, err := conns[0].warm(ctx)
	if err != nil {
		return ChatRun{}, fmt.Errorf("first answer (asked %d times): %w", reasked+1, err)
	}
	if reasked > 0 {
		b.logf("%s: the first question was not answered within %s; answered after asking %d more time(s)", r.label, warmReask, reasked)
	}
	start := time.Now().Add(50 * time.Millisecond)
	rt := &roundTrips{measureFrom: start.Add(r.warmup), lat: newLatencies()}
	end := rt.measureFrom.Add(r.duration)
	for _, c := range conns {
		go c.read(rt)
	}
	b.logf("%s: kchat, %d queries/s for %s", r.label, r.sessions, r.warmup+r.duration)
	before := make(chan cpuSample, 1)
	go func() {
		time.Sleep(time.Until(rt.measureFrom))
		before <- cpu.sample()
	}()
	waitGateway := b.bins.profile(gateway, "gateway-"+r.label, r.warmup+r.duration)
	waitAnswerer := b.bins.profile(answerer, "answerer-"+r.label, r.warmup+r.duration)
	defer waitGateway()
	defer waitAnswerer()
	schedule(ctx, len(conns), start, end, func(s, seq int, due time.Time) {
		conns[s].send(rt, seq, questions[(s+seq)%len(questions)], due)
	})
	waitAnswers(conns)
	after, cpu0 := cpu.sample(), <-before
	out := rt.result(after.total() - cpu0.total())
	out.Due = int64(r.sessions) * int64(r.duration/time.Second)
	if out.Answered > 0 {
		out.ServicesCPUPerOp = (after.services() - cpu0.services()).Seconds() * 1e6 / float64(out.Answered)
		out.CPUByProcess = after.perOp(cpu0, out.Answered)
	}
	if r.hops {
		out.Hops, err = hopTimes(ctx, b.brokers, prefix)
	}
	return out, err
}
