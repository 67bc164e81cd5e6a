package main

import (
	"fmt"
	"slices"
	"strings"
)

// The CPU of each service on its own, per operation, from the scenarios
// that run it as a process of its own (issue 19: the capacity model in
// docs/scaling.md starts from these figures). A run's CPU per operation is
// split by process (CPUByProcess); this file gathers the splits.

// cpuSplit is one run's CPU per operation, by process.
type cpuSplit struct {
	scenario, run string
	// per names the operation: "message", "fetched message", "answered question".
	per   string
	rate  float64 // operations a second in the measured window
	byPro map[string]float64
	// idle is each process's CPU a second with no load (µs), and above
	// its CPU per operation less that idle cost; nil where not measured.
	idle, above map[string]float64
}

// cpuSplits lists every run of r that metered service processes, in the
// order of the scenarios.
func cpuSplits(r *Results) []cpuSplit {
	var out []cpuSplit
	add := func(scenario, run, per string, rate float64, by map[string]float64) {
		if len(by) > 0 {
			out = append(out, cpuSplit{scenario: scenario, run: run, per: per, rate: rate, byPro: by})
		}
	}
	if p := r.Produce; p != nil {
		for _, n := range produceClients {
			t := p.Kchat[fmt.Sprint(n)]
			add("produce", fmt.Sprintf("POST /messages, %d client(s), closed loop", n), "message", t.PerSecond, t.CPUByProcess)
		}
		for _, l := range p.Latency {
			add("produce", "POST /messages, open loop at "+l.Load+" of max", "message", l.Kchat.Achieved, l.Kchat.CPUByProcess)
		}
	}
	if f := r.Fetch; f != nil {
		for _, n := range fetchClients {
			t := f.Kchat[fmt.Sprint(n)]
			add("fetch", fmt.Sprintf("GET /messages limit 1, %d client(s), closed loop", n), "fetched message", t.PerSecond, t.CPUByProcess)
		}
	}
	if c := r.Chat; c != nil {
		add("chat", fmt.Sprintf("%d sessions × 1 question/s, 1 gateway", c.Sessions)+behindLabel(c.Kchat.Answered, c.Kchat.Due), "answered question",
			ratio(c.Rate*float64(c.Kchat.Answered), float64(c.Kchat.Due)), c.Kchat.CPUByProcess)
	}
	if s := r.Scale; s != nil {
		for i := range s.Runs {
			run := &s.Runs[i]
			name := "routing"
			if run.Routing == scaleBroadcast {
				name = "broadcast"
			}
			add("scale", fmt.Sprintf("#%d, %.0f questions/s over %d gateway(s), %s", run.Order, s.Rate, run.Gateways, name)+behindLabel(run.Answered, run.Due),
				"answered question", ratio(float64(run.Answered), s.MeasuredSeconds), run.CPUByProcess)
			if len(run.IdleCPU) > 0 && len(out) > 0 && len(run.CPUByProcess) > 0 {
				last := &out[len(out)-1]
				last.idle, last.above = run.IdleCPU, map[string]float64{}
				for name := range run.CPUByProcess {
					last.above[name] = run.aboveIdle(name, s.MeasuredSeconds)
				}
			}
		}
	}
	return out
}

// behindLabel marks a run that answered fewer questions than were due.
func behindLabel(answered, due int64) string {
	if answered < due {
		return fmt.Sprintf(" (**fell behind**: %d of %d answered)", answered, due)
	}
	return ""
}

// perCore is how many operations a core does at us µs of CPU each.
func perCore(us float64) float64 { return ratio(1e6, us) }

// fmtRate prints a rate, whole from 100 up.
func fmtRate(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmtNum(v)
}

// serviceCPURows are the summary's rows of each service's CPU per
// operation, from the run that best stands for it at load: the producer
// at 64 clients, the consumer at 32, the gateway and the answerer at the
// chat scenario's 1000 questions/s and at the scale scenario's 200 over
// one gateway, and the gateway's CPU per idle socket. No goal: they are
// inputs of docs/scaling.md.
func serviceCPURows(r *Results) []Row {
	var out []Row
	row := func(measure string, us float64, unit, note string) {
		if us > 0 {
			out = append(out, Row{Scenario: "service CPU", Measure: measure, Kchat: us, Unit: unit, Note: note})
		}
	}
	perCoreNote := func(us float64, what string, lg float64) string {
		return fmt.Sprintf("≈ %s %s per core (1e6 ÷ µs); load generator %s µs", fmtRate(perCore(us)), what, fmtNum(lg))
	}
	if p := r.Produce; p != nil {
		t := p.Kchat["64"]
		note := perCoreNote(t.CPUByProcess["producer"], "messages/s", t.CPUByProcess[loadGenerator]) + fmt.Sprintf("; at %s msg/s", fmtNum(t.PerSecond))
		if t1 := p.Kchat["1"]; t1.CPUByProcess != nil {
			note += fmt.Sprintf("; 1 client: %s µs", fmtNum(t1.CPUByProcess["producer"]))
		}
		row("producer service per message, POST /messages, 64 clients (produce)", t.CPUByProcess["producer"], "µs", note)
	}
	if f := r.Fetch; f != nil {
		t := f.Kchat["32"].Throughput
		note := perCoreNote(t.CPUByProcess["consumer"], "messages/s", t.CPUByProcess[loadGenerator]) + fmt.Sprintf("; at %s msg/s, one message per request", fmtNum(t.PerSecond))
		if t1 := f.Kchat["1"]; t1.CPUByProcess != nil {
			note += fmt.Sprintf("; 1 client: %s µs", fmtNum(t1.CPUByProcess["consumer"]))
		}
		row("consumer service per fetched message, GET /messages limit 1, 32 clients (fetch)", t.CPUByProcess["consumer"], "µs", note)
	}
	if c := r.Chat; c != nil {
		by := c.Kchat.CPUByProcess
		for _, svc := range []string{"gateway", "answerer"} {
			row(fmt.Sprintf("%s per answered question, %.0f questions/s, 1 gateway (chat)", svc, c.Rate), by[svc], "µs",
				perCoreNote(by[svc], "questions/s", by[loadGenerator])+fmt.Sprintf("; answered %d/%d due", c.Kchat.Answered, c.Kchat.Due)+chatBehind(c.Kchat))
		}
	}
	if s := r.Scale; s != nil && len(s.Gateways) > 0 {
		if k := s.run(scaleKchat, s.Gateways[0]); k != nil {
			by := k.CPUByProcess
			var others []string
			for _, n := range s.Gateways[1:] {
				if kn := s.run(scaleKchat, n); kn != nil {
					others = append(others, fmt.Sprintf("at %d gateways (routing): gateways %s, answerer %s µs", n, fmtNum(kn.CPUByProcess["gateway"]), fmtNum(kn.CPUByProcess["answerer"])))
				}
			}
			more := ""
			if len(others) > 0 {
				more = "; " + strings.Join(others, "; ")
			}
			for _, svc := range []string{"gateway", "answerer"} {
				row(fmt.Sprintf("%s per answered question, %.0f questions/s, %d gateway(s), routing (scale)", svc, s.Rate, k.Gateways), by[svc], "µs",
					perCoreNote(by[svc], "questions/s", by[loadGenerator])+idleNote(k, svc, s.MeasuredSeconds)+fmt.Sprintf("; answered %d/%d", k.Answered, k.Due)+more+scaleBehind(k))
			}
		}
	}
	if m := r.Memory; m != nil && m.Kchat.IdleSeconds > 0 {
		// Shown even when noise makes it 0 or less.
		k := m.Kchat
		out = append(out, Row{Scenario: "service CPU", Measure: fmt.Sprintf("gateway per idle WebSocket, %d connections (memory)", m.Connections),
			Kchat: k.IdleCPUPerConn, Unit: "µs/s", Note: fmt.Sprintf("≈ %s idle sockets per core; gateway %s µs/s with none, %s µs/s with them, %.0f s windows%s",
				fmtRate(perCore(k.IdleCPUPerConn)), fmtNum(k.IdleCPUBefore), fmtNum(k.IdleCPUAfter), k.IdleSeconds, pingNote(k.IdleSeconds))})
	}
	return out
}

// idleNote splits a scale run's CPU per question of svc into its idle
// cost and the rest, and gives the per-core rate that split implies: a
// core pays the idle cost once and each question's share above it.
func idleNote(r *ScaleRun, svc string, seconds float64) string {
	idle, ok := r.IdleCPU[svc]
	if !ok {
		return ""
	}
	above := r.aboveIdle(svc, seconds)
	return fmt.Sprintf("; idle %s µs/s, above idle %s µs per question: ≈ %s questions/s per core ((1e6 − idle) ÷ above idle)",
		fmtNum(idle), fmtNum(above), fmtRate(ratio(1e6-idle, above)))
}

// chatBehind warns when a chat run answered fewer questions than were
// due in its window: its CPU per answered question is overstated.
func chatBehind(c ChatRun) string {
	if c.Answered < c.Due {
		return "; **fell behind**: CPU per question overstated"
	}
	return ""
}

// pingNote warns when an idle-CPU window is shorter than the ping interval
// and so holds no ping of some connections.
func pingNote(seconds float64) string {
	if seconds < memoryPingInterval.Seconds() {
		return fmt.Sprintf(" (shorter than the %s ping interval: pings not all counted)", memoryPingInterval)
	}
	return fmt.Sprintf(" (one ping of each connection, every %s)", memoryPingInterval)
}

// serviceCPUMarkdown is the section of benchmarks.md that lists each
// run's CPU per operation by process.
func serviceCPUMarkdown(b *strings.Builder, r *Results) {
	splits := cpuSplits(r)
	m := r.Memory
	if len(splits) == 0 && (m == nil || m.Kchat.IdleSeconds == 0) {
		return
	}
	b.WriteString("\n## service CPU\n\nThe CPU per operation of each process on its own: user+system time from `/proc/<pid>/stat` of each service process over the measured window (several gateways of a run added up under *gateway*), and kbench's own (`getrusage`) as *kbench*, the load generator; divided by the operations of the window. \"Per core\" is 1e6 ÷ µs: what one core would do if the process had it alone, at this load's batching (the broker and Redis not counted; at a higher rate per process, fixed costs such as polls and timers weigh less per operation). The scale scenario also measures each process's CPU before any session connects (*idle*, µs a second, the gateways added up) and subtracts it over the window: *above idle* is what each further question costs. docs/scaling.md builds the capacity model from these figures.\n\n")
	if len(splits) > 0 {
		b.WriteString("| scenario | run | per | ops/s | process | CPU µs | per core | idle µs/s | above idle µs |\n|---|---|---|---:|---|---:|---:|---:|---:|\n")
		for _, s := range splits {
			names := make([]string, 0, len(s.byPro))
			for name := range s.byPro {
				names = append(names, name)
			}
			// Services first, by name; the load generator last.
			slices.SortFunc(names, func(a, b string) int {
				if (a == loadGenerator) != (b == loadGenerator) {
					if a == loadGenerator {
						return 1
					}
					return -1
				}
				return strings.Compare(a, b)
			})
			for _, name := range names {
				idle, above := "—", "—"
				if v, ok := s.idle[name]; ok {
					idle, above = fmtNum(v), fmtNum(s.above[name])
				}
				fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.scenario, s.run, s.per, fmtRate(s.rate), name, fmtNum(s.byPro[name]), fmtRate(perCore(s.byPro[name])), idle, above)
			}
		}
	}
	if m != nil && m.Kchat.IdleSeconds > 0 {
		k := m.Kchat
		fmt.Fprintf(b, "\nIdle sockets (memory scenario): the gateway used %s µs of CPU a second with no connection and %s µs a second with %d idle ones that answer its pings, over %.0f s each%s: %s µs a second per connection, ≈ %s idle sockets per core.\n",
			fmtNum(k.IdleCPUBefore), fmtNum(k.IdleCPUAfter), m.Connections, k.IdleSeconds, pingNote(k.IdleSeconds), fmtNum(k.IdleCPUPerConn), fmtRate(perCore(k.IdleCPUPerConn)))
	}
}
