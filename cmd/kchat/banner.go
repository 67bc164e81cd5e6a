package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/cmd/internal/wire"
)

// servers are the listeners the banner names, taken from the graph.
type servers struct {
	producer wire.ProducerServer
	consumer wire.ConsumerServer
	answerer wire.AnswererServer
	gateway  wire.GatewayServer
	admin    *runner.AdminServer
}

// bannerWait bounds how long the banner waits for every service to be
// ready (topics created, a broker answering) before it says what is not.
const bannerWait = 5 * time.Second

// printBanner writes where to go once every service is ready, or after
// bannerWait with what does not answer: it comes after the startup logs,
// where a person looks, and says when a dependency does not answer rather
// than leaving them to find out from a request.
func printBanner(ctx context.Context, out io.Writer, cfg Config, s servers, embedded bool) {
	down := unready(ctx, map[string]string{
		"producer": s.producer.Addr(), "consumer": s.consumer.Addr(),
		"answerer": s.answerer.Addr(), "gateway": s.gateway.Addr(),
	})
	var b strings.Builder
	if len(down) == 0 {
		b.WriteString("kchat is running:\n")
	} else {
		b.WriteString("kchat is running, but a dependency does not answer (see below):\n")
	}
	chat := url(s.gateway.Addr())
	fmt.Fprintf(&b, "  chat page  %s/  (WebSocket at /ws)\n", chat)
	fmt.Fprintf(&b, "  API docs   %s/docs  gateway\n", chat)
	fmt.Fprintf(&b, "             %s/docs  producer (spec at /openapi.yaml)\n", url(s.producer.Addr()))
	fmt.Fprintf(&b, "             %s/docs  consumer (spec at /openapi.yaml)\n", url(s.consumer.Addr()))
	fmt.Fprintf(&b, "  answerer   %s/readyz  (generator %s)\n", url(s.answerer.Addr()), cfg.Answerer.LLM.Generator)
	if s.admin.Addr() != "" {
		fmt.Fprintf(&b, "  metrics    %s/metrics  (profiles at /debug/pprof/; admin listener, this machine only by default)\n", url(s.admin.Addr()))
	}
	kafka := strings.Join(cfg.Kafka.Brokers, ",")
	if embedded {
		kafka += " (embedded, in memory)"
	}
	fmt.Fprintf(&b, "  kafka      %s: %s\n", kafka, state(down["kafka"]))
	sessions := "in memory (KCHAT_REDIS_URL unset)"
	if cfg.Redis.Enabled() { // one node, a cluster or Sentinel
		sessions = "redis: " + state(down["redis"])
	}
	fmt.Fprintf(&b, "  sessions   %s\n", sessions)
	for _, dep := range slices.Sorted(maps.Keys(down)) {
		if dep != "kafka" && dep != "redis" {
			fmt.Fprintf(&b, "  %-10s %s\n", dep, state(down[dep]))
		}
	}
	b.WriteString("Ctrl-C stops it.\n")
	_, _ = io.WriteString(out, b.String())
}

// state says whether a dependency answered every service that checks it.
func state(services []string) string {
	if len(services) == 0 {
		return "answers"
	}
	return fmt.Sprintf("DOES NOT ANSWER (%s): their /readyz, and requests that need it (the consumer's GET /messages among them), "+
		"answer 503 until it does; kchat keeps trying", strings.Join(services, ", "))
}

// unready asks each service's /readyz (a real round trip to its
// dependencies) until it answers 200 or bannerWait passes, and returns the
// checks still failing with the services that report them.
func unready(ctx context.Context, addrs map[string]string) map[string][]string {
	ctx, cancel := context.WithTimeout(ctx, bannerWait)
	defer cancel()
	var mu sync.Mutex
	down := map[string][]string{}
	var wg sync.WaitGroup
	for service, addr := range addrs {
		wg.Go(func() {
			// Few rounds, backing off: each failed check logs a warning.
			failed := readyz(ctx, url(addr)+"/readyz")
			for pause := 250 * time.Millisecond; len(failed) > 0 && sleep(ctx, pause); pause *= 2 {
				failed = readyz(ctx, url(addr)+"/readyz")
			}
			mu.Lock()
			defer mu.Unlock()
			for _, dep := range failed {
				if !slices.Contains(down[dep], service) {
					down[dep] = append(down[dep], service)
					slices.Sort(down[dep])
				}
			}
		})
	}
	wg.Wait()
	return down
}

// sleep waits d, or less if ctx ends first: it reports whether ctx is
// still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// readyz returns the names of the checks a /readyz reported unavailable;
// a /readyz that does not answer is reported as the service itself.
func readyz(ctx context.Context, u string) []string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return []string{"readyz"}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return []string{"readyz"}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var problem struct {
		Errors []struct {
			Location string `json:"location"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&problem); err != nil || len(problem.Errors) == 0 {
		return []string{"readyz"}
	}
	var failed []string
	for _, e := range problem.Errors {
		failed = append(failed, e.Location)
	}
	return failed
}

// url turns a listen address into a URL a person can open.
func url(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
