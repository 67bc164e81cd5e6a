package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// The readiness of every service follows Kafka: each /readyz makes a real
// request to a broker (adapters/kafka/ready.go), so it is 503 soon after no
// broker is reachable and 200 soon after one is again, and it stays 200
// while one broker of three is down.

// readinessBound is how soon /readyz must follow the broker.
const readinessBound = 5 * time.Second

// TestIntegrationOutageReadiness stops the shared broker and starts it
// again: every service's /readyz turns 503 within 5 s of the stop and 200
// within 5 s of the start. It must run alone (make test-integration runs
// the Outage tests one package at a time, after the rest).
func TestIntegrationOutageReadiness(t *testing.T) {
	prefix := testenv.Prefix("it-readyz")
	brokers := kafkatest.Real(t, prefix)
	script := testenv.ServicesScript(t)
	services := startEveryService(t, brokers, prefix, 1)
	for name, url := range services {
		if s := readyz(url); s != http.StatusOK {
			t.Fatalf("%s /readyz = %d before the outage, want 200", name, s)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runScript(ctx, t, script, "stop-kafka")
	restarted := false
	t.Cleanup(func() { // never leave the shared broker down
		if !restarted {
			runScript(context.Background(), t, script, "start-kafka")
		}
	})
	for name, took := range untilEvery(t, services, http.StatusServiceUnavailable, readinessBound) {
		t.Logf("%s /readyz: 503 %s after the broker stopped", name, took.Round(10*time.Millisecond))
	}
	runScript(ctx, t, script, "start-kafka")
	restarted = true
	for name, took := range untilEvery(t, services, http.StatusOK, readinessBound) {
		t.Logf("%s /readyz: 200 %s after the broker answered again", name, took.Round(10*time.Millisecond))
	}
}

// TestIntegrationClusterReadyWithOneBrokerDown kills one broker of the
// 3-broker test cluster, restarts it, then pauses it: every service stays ready
// throughout, since a readiness check needs one broker to answer and asks
// them all at once.
func TestIntegrationClusterReadyWithOneBrokerDown(t *testing.T) {
	brokers := testenv.ClusterBrokers(t)
	prefix := testenv.Prefix("it-readyz3")
	t.Cleanup(func() { kafkatest.DeleteTopics(t, brokers, prefix) })
	services := startEveryService(t, brokers, prefix, 3)
	for name, url := range services {
		if s := readyz(url); s != http.StatusOK {
			t.Fatalf("%s /readyz = %d with the whole cluster, want 200", name, s)
		}
	}
	for _, fault := range []struct {
		node          int32
		break_, mend  testenv.BrokerCommand
		broken, whole string
	}{
		{1, testenv.KillBroker, testenv.StartBroker, "killed", "restarted"},
		// Node 1 is the first broker a client knows: a check that asked
		// the brokers one after the other would wait on it.
		{1, testenv.PauseBroker, testenv.ResumeBroker, "paused", "resumed"},
	} {
		testenv.Broker(t, fault.break_, fault.node)
		mended := false
		t.Cleanup(func() { // leave the cluster whole for the next test
			if !mended {
				testenv.Broker(t, fault.mend, fault.node)
			}
		})
		// Every service answers /readyz 20 times in a row, 250 ms apart,
		// with 200 (a check that waited on the broken node would take its
		// whole timeout, 2 s, and fail).
		for round := range 20 {
			for name, url := range services {
				start := time.Now()
				if s := readyz(url); s != http.StatusOK {
					t.Errorf("%s /readyz = %d with node %d %s (round %d, %s)", name, s, fault.node, fault.broken, round, time.Since(start).Round(time.Millisecond))
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		testenv.Broker(t, fault.mend, fault.node)
		mended = true
		t.Logf("node %d %s and %s: every service stayed ready", fault.node, fault.broken, fault.whole)
	}
}

// startEveryService runs producer, consumer, answerer and gateway as
// processes of their own on brokers (topics under prefix, replicated rf
// times) and the real Redis, and returns their base URLs by name, once
// every one is ready.
func startEveryService(t *testing.T, brokers []string, prefix string, rf int) map[string]string {
	t.Helper()
	common := []string{
		"KCHAT_KAFKA_BROKERS=" + strings.Join(brokers, ","), "KCHAT_TOPIC_PREFIX=" + prefix,
		fmt.Sprintf("KCHAT_TOPIC_REPLICATION_FACTOR=%d", rf),
		"KCHAT_REDIS_URL=" + testenv.RedisURL(t), "KCHAT_REDIS_PREFIX=" + prefix,
		"KCHAT_ANSWER_KEY=kchat-test-answer-key-0123456789abcdef",
		"KCHAT_ADMIN_ADDR=127.0.0.1:0",
	}
	start := func(name, addrVar string, env ...string) string {
		return proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/"+name), addrVar, append(common, env...)...).URL
	}
	return map[string]string{
		"producer": start("producer", "KCHAT_PRODUCER_ADDR"),
		"consumer": start("consumer", "KCHAT_CONSUMER_ADDR",
			"KCHAT_CONSUMER_GROUP="+prefix+"consumer", "KCHAT_RECEIPT_KEY=kchat-test-receipt-key-0123456789abcdef"),
		"answerer": start("answerer", "KCHAT_ANSWERER_ADDR", "KCHAT_ANSWERER_GROUP="+prefix+"answerer", "KCHAT_ANSWERER_INSTANCE=readyz"),
		"gateway":  start("gateway", "KCHAT_GATEWAY_ADDR", "KCHAT_AUTH=token", "KCHAT_AUTH_TOKENS=tok:u"),
	}
}

// readyz returns the status of url's /readyz, or 0 when it does not answer.
func readyz(url string) int {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(url + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// untilEvery polls every service's /readyz until it answers want, fails
// the test for each that does not within bound, and returns how long each
// took.
func untilEvery(t *testing.T, services map[string]string, want int, bound time.Duration) map[string]time.Duration {
	t.Helper()
	start := time.Now()
	took := map[string]time.Duration{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, url := range services {
		wg.Go(func() {
			for time.Since(start) < bound {
				if readyz(url) == want {
					mu.Lock()
					took[name] = time.Since(start)
					mu.Unlock()
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for name := range services {
		if d, ok := took[name]; !ok || d > bound {
			t.Errorf("%s /readyz did not answer %d within %s", name, want, bound)
		}
	}
	return took
}

func runScript(ctx context.Context, t *testing.T, script, command string) {
	t.Helper()
	if out, err := exec.CommandContext(ctx, "bash", script, command).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
}
