package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The tracing scenario (issue 18): the chat load's CPU per question with
// tracing off as shipped, with tracing on, and on a build of the services
// from before tracing was added: the "no tracing code paths" baseline that
// tracing off is judged against. A no-op provider is not that baseline:
// it is what tracing off already is (tracing.Disabled), and it leaves the
// code paths in (the stages' no-op spans, the hop histograms, the
// kchat-asked-at header, domain.Trace on every message). Only a build
// without the tracing commit leaves them out.
const (
	tracingBaseline = "baseline"
	tracingOff      = "off"
	tracingOn       = "on"
)

// tracingGoal is issue 18's: tracing off costs at most 5% more CPU per
// question than the same load without the tracing code.
const tracingGoal = 1.05

// TracingResult holds the tracing scenario's raw figures.
type TracingResult struct {
	Sessions        int     `json:"sessions"`
	Rate            float64 `json:"questions_per_second"`
	RunsPerVariant  int     `json:"runs_per_variant"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	MeasuredSeconds float64 `json:"measured_seconds"`
	// Exporter is where tracing on sent its spans.
	Exporter string      `json:"exporter"`
	Base     TracingBase `json:"baseline_build"`
	// Variants are baseline (when it could be built), off and on; each
	// run's Order says when it ran.
	Variants []TracingVariant `json:"variants"`
}

// TracingBase is the build of the baseline variant.
type TracingBase struct {
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit,omitempty"`
	// TracingCommit is the commit that added tracing, whose parent the
	// baseline is by default (KCHAT_BENCH_TRACING_BASE unset).
	TracingCommit string `json:"tracing_commit,omitempty"`
	// Head is the commit off and on were built from
	// (KCHAT_BENCH_TRACING_HEAD); empty: the working tree.
	Head string `json:"head_commit,omitempty"`
	// OtherChanges are the non-test Go files of the gateway's and the
	// answerer's packages that differ between the build under test and
	// the tracing commit (or the baseline, when another ref was asked
	// for): what else off vs baseline compares.
	OtherChanges []string `json:"other_changes"`
	// Skipped says why there is no baseline variant.
	Skipped string `json:"skipped,omitempty"`
}

// TracingVariant is one variant's runs and their medians.
type TracingVariant struct {
	Name string `json:"name"`
	// Build is "working tree" or the commit it was built from.
	Build string `json:"build"`
	// Env is what the variant sets on top of the chat scenario's settings.
	Env  []string     `json:"env"`
	Runs []TracingRun `json:"runs"`
	// ServicesCPU is the median of the runs' CPU per question of the
	// gateway and the answerer, what the goal is judged on; ServicesMin
	// and ServicesMax are the runs' range.
	ServicesCPU float64 `json:"services_cpu_us_per_question_median"`
	ServicesMin float64 `json:"services_cpu_us_per_question_min"`
	ServicesMax float64 `json:"services_cpu_us_per_question_max"`
	// CPUPerOp is the median with the load generator's CPU added, as the
	// other scenarios count it.
	CPUPerOp float64 `json:"cpu_us_per_question_median"`
	P50      float64 `json:"latency_p50_ms_median"`
	P99      float64 `json:"latency_p99_ms_median"`
	// SpansPerQuestion is the median of the runs' spans received per
	// question asked (tracing on, into kbench's receiver).
	SpansPerQuestion float64 `json:"spans_per_question_median,omitempty"`
}

// TracingRun is one run of a variant.
type TracingRun struct {
	// Order is the run's place in the scenario, from 1.
	Order int   `json:"order"`
	Sent  int64 `json:"sent"`
	// Due is the questions due in the measured window; Answered those of
	// them answered. CPU per question is only meaningful when they match:
	// a run that falls behind is charged for work on questions it did not
	// finish.
	Due      int64   `json:"due_in_window"`
	Answered int64   `json:"answered_in_window"`
	Errors   int64   `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	CPUPerOp float64 `json:"cpu_us_per_question"`
	// ServicesCPU is the gateway's and the answerer's share of CPUPerOp.
	ServicesCPU float64     `json:"services_cpu_us_per_question"`
	Latency     Percentiles `json:"latency"`
	// Sink is what kbench's OTLP receiver got (tracing on).
	Sink             *SinkStats `json:"otlp_received,omitempty"`
	SpansPerQuestion float64    `json:"spans_per_question,omitempty"`
}

// spread is the range of the runs' services CPU as a share of their
// median, in percent.
func (v TracingVariant) spread() float64 {
	return ratio(v.ServicesMax-v.ServicesMin, v.ServicesCPU) * 100
}

// summarize sets the variant's medians from its runs.
func (v *TracingVariant) summarize() {
	var svc, cpu, p50, p99, spans []float64
	for _, r := range v.Runs {
		svc, cpu = append(svc, r.ServicesCPU), append(cpu, r.CPUPerOp)
		p50, p99 = append(p50, r.Latency.P50), append(p99, r.Latency.P99)
		if r.Sink != nil {
			spans = append(spans, r.SpansPerQuestion)
		}
	}
	v.ServicesCPU, v.CPUPerOp, v.P50, v.P99, v.SpansPerQuestion = medianOf(svc), medianOf(cpu), medianOf(p50), medianOf(p99), medianOf(spans)
	if len(svc) > 0 {
		v.ServicesMin, v.ServicesMax = slices.Min(svc), slices.Max(svc)
	}
}

// medianOf is the median of xs (the mean of the middle two for an even
// count); 0 for none.
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// tracingVariant is a variant as the scenario runs it.
type tracingVariant struct {
	res  *TracingVariant
	bins *binaries
}

// runTracing runs each variant b.p.tracingRuns times under the chat load
// (b.p.tracingSessions questions a second), rotating the order every
// round so that each variant runs first, second and last once in three.
func (b *bench) runTracing(ctx context.Context) (*TracingResult, error) {
	res := &TracingResult{
		Sessions: b.p.tracingSessions, Rate: float64(b.p.tracingSessions), RunsPerVariant: b.p.tracingRuns,
		WarmupSeconds: b.p.tracingWarmup.Seconds(), MeasuredSeconds: b.p.tracingDuration.Seconds(),
		Exporter: "kbench's receiver (`kbench otlpsink`, a process of its own, which counts the spans and drops them)",
	}
	if b.cfg.OTLPEndpoint != "" {
		res.Exporter = b.cfg.OTLPEndpoint + " (KCHAT_BENCH_OTLP_ENDPOINT)"
	}
	headBins, headBuild := b.bins, "working tree"
	if b.cfg.TracingHead != "" {
		commit, err := resolveCommit(ctx, b.cfg.TracingHead)
		if err != nil {
			return nil, fmt.Errorf("KCHAT_BENCH_TRACING_HEAD: %w", err)
		}
		if headBins, err = b.buildAt(ctx, commit, "head"); err != nil {
			return nil, err
		}
		res.Base.Head, headBuild = commit, "commit "+shortCommit(commit)
	}
	var variants []tracingVariant
	baseBins, err := b.tracingBaseline(ctx, &res.Base)
	if err != nil {
		// The comparison is the scenario's point, but a clone without the
		// history (or a baseline that no longer builds) must not stop the
		// rest of the bench: the summary says what is missing.
		res.Base.Skipped = err.Error()
		b.logf("tracing: no baseline: %v", err)
	} else {
		variants = append(variants, tracingVariant{bins: baseBins,
			res: &TracingVariant{Name: tracingBaseline, Build: "commit " + shortCommit(res.Base.Commit)}})
	}
	variants = append(variants,
		tracingVariant{bins: headBins, res: &TracingVariant{Name: tracingOff, Build: headBuild, Env: []string{"KCHAT_TRACING=off"}}},
		tracingVariant{bins: headBins, res: &TracingVariant{Name: tracingOn, Build: headBuild,
			Env: []string{"KCHAT_TRACING=otlp", "OTEL_TRACES_SAMPLER=parentbased_always_on"}}})
	if !b.cfg.Short {
		// A discarded run first: the broker's transaction paths and the
		// machine's caches warm on it, so the first measured run of
		// whichever variant comes first is not charged for them.
		b.logf("tracing: a discarded warm-up run (tracing off)")
		if _, err := b.kchatChat(ctx, kchatChat{bins: headBins, label: "tracing-warm", env: []string{"KCHAT_TRACING=off"},
			sessions: b.p.tracingSessions, warmup: 5 * time.Second, duration: 5 * time.Second}); err != nil {
			return nil, err
		}
	}
	order := 0
	for round := range b.p.tracingRuns {
		for i := range variants {
			v := variants[(round+i)%len(variants)]
			order++
			run, err := b.tracingRun(ctx, v, round, order)
			if err != nil {
				return nil, fmt.Errorf("%s, run %d: %w", v.res.Name, round+1, err)
			}
			v.res.Runs = append(v.res.Runs, run)
			b.logf("tracing: %s run %d: %.0f µs CPU per question (services %.0f), p50 %.1f ms", v.res.Name, round+1, run.CPUPerOp, run.ServicesCPU, run.Latency.P50)
		}
	}
	for _, v := range variants {
		v.res.summarize()
		res.Variants = append(res.Variants, *v.res)
	}
	return res, nil
}

// tracingRun is one run of v; with tracing on, into a receiver of its own
// (unless KCHAT_BENCH_OTLP_ENDPOINT names a collector), read once the
// services have stopped and so exported what they buffered.
func (b *bench) tracingRun(ctx context.Context, v tracingVariant, round, order int) (TracingRun, error) {
	env := slices.Clone(v.res.Env)
	var sink *sinkProc
	if v.res.Name == tracingOn {
		endpoint := b.cfg.OTLPEndpoint
		if endpoint == "" {
			var err error
			if sink, err = startSink(ctx); err != nil {
				return TracingRun{}, err
			}
			defer sink.stop()
			endpoint = sink.endpoint()
		}
		endpoint = strings.TrimSuffix(endpoint, "/")
		env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+endpoint+"/v1/traces")
	}
	c, err := b.kchatChat(ctx, kchatChat{bins: v.bins, label: fmt.Sprintf("tracing-%s-%d", v.res.Name, round+1), env: env,
		sessions: b.p.tracingSessions, warmup: b.p.tracingWarmup, duration: b.p.tracingDuration})
	if err != nil {
		return TracingRun{}, err
	}
	run := TracingRun{Order: order, Sent: c.Sent, Answered: c.Answered, Errors: c.Errors, FirstErr: c.FirstErr,
		CPUPerOp: c.CPUPerOp, ServicesCPU: c.ServicesCPUPerOp, Latency: c.Latency,
		// Each session asks one question a second of the measured window.
		Due: int64(b.p.tracingSessions) * int64(b.p.tracingDuration/time.Second)}
	if sink != nil {
		st, err := sink.stats(ctx)
		if err != nil {
			return TracingRun{}, fmt.Errorf("OTLP receiver: %w", err)
		}
		run.Sink = &st
		// Every question sent, the warm-up's and the first one included.
		run.SpansPerQuestion = ratio(float64(st.Spans), float64(c.Sent+1))
	}
	return run, nil
}

// tracingBaseline builds the gateway and the answerer from the baseline
// commit: KCHAT_BENCH_TRACING_BASE, or the parent of the commit that added
// adapters/tracing/provider.go. It fills in base (base.Head set: the
// build under test is that commit, else the working tree).
func (b *bench) tracingBaseline(ctx context.Context, base *TracingBase) (*binaries, error) {
	ref := b.cfg.TracingBase
	if ref == "" {
		out, err := git(ctx, "log", "--diff-filter=A", "--format=%H", "--", "adapters/tracing/provider.go")
		if err != nil {
			return nil, fmt.Errorf("the commit that added tracing: %w", err)
		}
		added := strings.Fields(out)
		if len(added) == 0 {
			return nil, errors.New("no commit adds adapters/tracing/provider.go in this clone's history (shallow?): set KCHAT_BENCH_TRACING_BASE")
		}
		base.TracingCommit = added[len(added)-1] // the oldest, should it have been re-added
		ref = base.TracingCommit + "^"
	}
	base.Ref = ref
	commit, err := resolveCommit(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	base.Commit = commit
	if base.OtherChanges, err = otherChanges(ctx, cmp.Or(base.TracingCommit, base.Commit), base.Head); err != nil {
		return nil, err
	}
	return b.buildAt(ctx, commit, "baseline")
}

func resolveCommit(ctx context.Context, ref string) (string, error) {
	out, err := git(ctx, "rev-parse", "--verify", "--end-of-options", ref+"^{commit}")
	return strings.TrimSpace(out), err
}

// buildAt builds the gateway and the answerer of commit into the run's
// scratch folder, from `git archive`: the working tree and the
// repository's state are left alone.
func (b *bench) buildAt(ctx context.Context, commit, name string) (*binaries, error) {
	src := filepath.Join(b.tmp, name+"-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	b.logf("tracing: building the gateway and the answerer of %s (%s)", shortCommit(commit), name)
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", commit)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	var err error
	if untar.Stdin, err = archive.StdoutPipe(); err != nil {
		return nil, err
	}
	var archiveErr bytes.Buffer
	archive.Stderr, untar.Stderr = &archiveErr, os.Stderr
	if err := archive.Start(); err != nil {
		return nil, err
	}
	if err := errors.Join(untar.Run(), archive.Wait()); err != nil {
		return nil, fmt.Errorf("git archive %s: %w %s", commit, err, archiveErr.String())
	}
	dir := filepath.Join(b.tmp, name+"-bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), "./cmd/gateway", "./cmd/answerer")
	build.Dir, build.Stdout, build.Stderr = src, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("go build of %s at %s: %w", name, shortCommit(commit), err)
	}
	return &binaries{dir: dir, profiles: b.bins.profiles}, nil
}

// otherChanges lists the non-test Go files of the packages the gateway and
// the answerer are built from (as the working tree has them) that differ
// between since and head, or the working tree (untracked files included)
// when head is empty.
func otherChanges(ctx context.Context, since, head string) ([]string, error) {
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	deps, err := command(ctx, "go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/gateway", "./cmd/answerer")
	if err != nil {
		return nil, err
	}
	pkgs := map[string]bool{}
	for _, d := range strings.Fields(deps) {
		if rel, err := filepath.Rel(root, d); err == nil && !strings.HasPrefix(rel, "..") {
			pkgs[filepath.ToSlash(rel)] = true
		}
	}
	var changed, untracked string
	if head != "" {
		changed, err = git(ctx, "diff", "--name-only", since, head, "--", "*.go")
	} else {
		changed, err = git(ctx, "diff", "--name-only", since, "--", "*.go")
		if err == nil {
			untracked, err = git(ctx, "ls-files", "--others", "--exclude-standard", "--", "*.go")
		}
	}
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, f := range strings.Fields(changed + "\n" + untracked) {
		if !strings.HasSuffix(f, "_test.go") && pkgs[filepath.ToSlash(filepath.Dir(f))] && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out, nil
}

func git(ctx context.Context, args ...string) (string, error) {
	return command(ctx, "git", args...)
}

func command(ctx context.Context, name string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func shortCommit(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}
