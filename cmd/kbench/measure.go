package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency figures are kept in microseconds, from 1 µs to 2 minutes, with
// three significant digits.
const (
	histMin = 1
	histMax = int64(2 * time.Minute / time.Microsecond)
)

// latencies is a concurrency-safe HDR histogram.
type latencies struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newLatencies() *latencies {
	return &latencies{h: hdrhistogram.New(histMin, histMax, 3)}
}

func (l *latencies) record(d time.Duration) {
	us := d.Microseconds()
	us = max(histMin, min(us, histMax))
	l.mu.Lock()
	_ = l.h.RecordValue(us) // in range by construction
	l.mu.Unlock()
}

// Percentiles is what a report shows of a histogram, in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

func (l *latencies) percentiles() Percentiles {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Percentiles{
		Count: l.h.TotalCount(),
		P50:   ms(l.h.ValueAtQuantile(50)), P99: ms(l.h.ValueAtQuantile(99)),
		P999: ms(l.h.ValueAtQuantile(99.9)), Max: ms(l.h.Max()),
	}
}

// op is one measured operation; an error counts as a failed operation.
type op func(ctx context.Context) error

// Throughput is the outcome of a closed-loop run.
type Throughput struct {
	Clients   int     `json:"clients"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"ops_per_second"`
	CPUPerOp  float64 `json:"cpu_us_per_op"`
	// CPUByProcess splits CPUPerOp between the load generator (kbench)
	// and each service; absent for a baseline, which runs in kbench.
	CPUByProcess map[string]float64 `json:"cpu_us_per_op_by_process,omitempty"`
	Latency      Percentiles        `json:"latency"`
	FirstErr     string             `json:"first_error,omitempty"`
}

// closedLoop runs clients goroutines, each doing one operation after the
// other, for warmup (not counted) and then for d. newOp gives each client
// its own operation (its own connection or session). Operations still
// running at the end finish (uncounted) rather than being cancelled, so a
// scenario that checks what was consumed sees every response.
func closedLoop(ctx context.Context, cpu *cpuMeter, clients int, warmup, d time.Duration, newOp func(client int) op) Throughput {
	var (
		counting atomic.Bool
		ops      atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		lat      = newLatencies()
		wg       sync.WaitGroup
	)
	var stopping atomic.Bool
	for i := range clients {
		do := newOp(i)
		wg.Go(func() {
			for !stopping.Load() && ctx.Err() == nil {
				start := time.Now()
				err := do(ctx)
				if !counting.Load() {
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				lat.record(time.Since(start))
				ops.Add(1)
			}
		})
	}
	sleep(ctx, warmup)
	cpu0 := cpu.sample()
	start := time.Now()
	counting.Store(true)
	sleep(ctx, d)
	counting.Store(false)
	elapsed := time.Since(start)
	cpu1 := cpu.sample()
	stopping.Store(true)
	wg.Wait()
	t := Throughput{Clients: clients, Ops: ops.Load(), Errors: errs.Load(), Seconds: elapsed.Seconds(), Latency: lat.percentiles()}
	t.PerSecond = float64(t.Ops) / t.Seconds
	if t.Ops > 0 {
		t.CPUPerOp = (cpu1.total() - cpu0.total()).Seconds() * 1e6 / float64(t.Ops)
		t.CPUByProcess = cpu1.perOp(cpu0, t.Ops)
	}
	if e, ok := firstErr.Load().(string); ok {
		t.FirstErr = e
	}
	return t
}

// OpenLoop is the outcome of a fixed-arrival-rate run.
type OpenLoop struct {
	Rate     float64 `json:"target_rate"`
	Achieved float64 `json:"achieved_rate"`
	Errors   int64   `json:"errors"`
	CPUPerOp float64 `json:"cpu_us_per_op"`
	// CPUByProcess splits CPUPerOp as Throughput's does.
	CPUByProcess map[string]float64 `json:"cpu_us_per_op_by_process,omitempty"`
	Latency      Percentiles        `json:"latency"`
	FirstErr     string             `json:"first_error,omitempty"`
}

// openLoop starts operations at a fixed rate for warmup+d, on at most
// workers concurrent operations. Latency runs from when an operation was
// due, not from when a worker got to it, so a stalled system is charged
// for the requests it held up (no coordinated omission). Only operations
// due after the warm-up are recorded.
func openLoop(ctx context.Context, cpu *cpuMeter, rate float64, workers int, warmup, d time.Duration, newOp func(worker int) op) OpenLoop {
	type job struct {
		due    time.Time
		record bool
	}
	jobs := make(chan job, int(rate*(warmup+d).Seconds())+1)
	var (
		done     atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		lat      = newLatencies()
		wg       sync.WaitGroup
	)
	for i := range workers {
		do := newOp(i)
		wg.Go(func() {
			for j := range jobs {
				if wait := time.Until(j.due); wait > 0 {
					time.Sleep(wait)
				}
				err := do(ctx)
				if !j.record {
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat.record(time.Since(j.due))
				done.Add(1)
			}
		})
	}
	start := time.Now().Add(10 * time.Millisecond)
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(d)
	interval := time.Duration(float64(time.Second) / rate)
	var cpu0 cpuSample
	for due := start; due.Before(end) && ctx.Err() == nil; due = due.Add(interval) {
		// The dispatcher runs ahead of time by at most a few ms; workers
		// sleep until the job is due.
		if wait := time.Until(due) - 2*time.Millisecond; wait > 0 {
			time.Sleep(wait)
		}
		record := !due.Before(measureFrom)
		if record && cpu0 == nil {
			cpu0 = cpu.sample()
		}
		jobs <- job{due: due, record: record}
	}
	close(jobs)
	wg.Wait()
	cpu1 := cpu.sample()
	o := OpenLoop{Rate: rate, Errors: errs.Load(), Latency: lat.percentiles()}
	o.Achieved = float64(done.Load()) / time.Since(measureFrom).Seconds()
	if n := done.Load(); n > 0 {
		o.CPUPerOp = (cpu1.total() - cpu0.total()).Seconds() * 1e6 / float64(n)
		o.CPUByProcess = cpu1.perOp(cpu0, n)
	}
	if e, ok := firstErr.Load().(string); ok {
		o.FirstErr = e
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// cpuMeter reads the CPU time (user+system) of this process, the load
// generator, and of the service processes a scenario runs, each apart, so
// a run reports CPU per operation in all (the load generator and the
// system under test) and per service. The broker and Redis are the same
// for a scenario and its baseline and are not counted.
type cpuMeter struct {
	mu    sync.Mutex
	procs []meteredProc
}

// meteredProc is a service process and the name its CPU is added up
// under: the gateways of a run share "gateway".
type meteredProc struct {
	name string
	pid  int
}

// loadGenerator is kbench's own process in a cpuSample.
const loadGenerator = "kbench"

func (c *cpuMeter) add(name string, pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs = append(c.procs, meteredProc{name: name, pid: pid})
}

// sample reads the CPU time each process has used so far.
func (c *cpuMeter) sample() cpuSample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := cpuSample{loadGenerator: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		s[p.name] += procCPU(p.pid)
	}
	return s
}

// read is the CPU time of the load generator and the services together.
func (c *cpuMeter) read() time.Duration { return c.sample().total() }

// cpuSample is the CPU time used so far by the load generator (under
// loadGenerator) and by the service processes, summed by service name.
type cpuSample map[string]time.Duration

func (s cpuSample) total() time.Duration {
	var t time.Duration
	for _, d := range s {
		t += d
	}
	return t
}

func (s cpuSample) services() time.Duration { return s.total() - s[loadGenerator] }

// perSecond is the CPU µs each name used a second from before to s, d
// apart.
func (s cpuSample) perSecond(before cpuSample, d time.Duration) map[string]float64 {
	if d <= 0 {
		return nil
	}
	out := make(map[string]float64, len(s))
	for name, used := range s {
		out[name] = max(0, (used-before[name]).Seconds()*1e6/d.Seconds())
	}
	return out
}

// perOp is the CPU µs each name used per operation from before to s, over
// ops operations: the figures that say which process the CPU per
// operation went to. Nil without operations or without a service process
// (a baseline's CPU is its load generator's alone).
func (s cpuSample) perOp(before cpuSample, ops int64) map[string]float64 {
	if ops <= 0 || len(s) < 2 {
		return nil
	}
	out := make(map[string]float64, len(s))
	for name, d := range s {
		// A process that exited reads as 0: charge it nothing rather than
		// a negative time.
		out[name] = max(0, (d-before[name]).Seconds()*1e6/float64(ops))
	}
	return out
}

// procCPU reads utime+stime of pid from /proc (0 when it is gone).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return statCPU(string(b))
}

// statCPU is utime+stime of a /proc/<pid>/stat line (0 if it is not one).
func statCPU(s string) time.Duration {
	// Fields after the command name, which is in parentheses and may hold
	// spaces and parentheses.
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// rssBytes reads the resident set size of pid.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
