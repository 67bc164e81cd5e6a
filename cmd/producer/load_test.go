package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// loadResult is what a load run saw: which ids got a 202 and which got no
// answer at all.
type loadResult struct {
	mu                 sync.Mutex
	accepted, rejected int
	slowest            time.Duration
	acceptedIDs        map[string]bool
	failedIDs          map[string]bool
}

// postLoad posts from clients goroutines until each has posted max messages,
// one every pace; a transport error ends a client when endOnError.
func postLoad(url string, clients, perClient int, pace time.Duration, endOnError bool) *loadResult {
	res := &loadResult{acceptedIDs: map[string]bool{}, failedIDs: map[string]bool{}}
	hc := &http.Client{Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				time.Sleep(pace)
				start := time.Now()
				id := fmt.Sprintf("load-%d-%d-%d", time.Now().UnixNano(), c, i)
				body := fmt.Sprintf(`{"session_id":"s%d","user_id":"u","message_id":%q,"type":"query","message":"m"}`, c, id)
				resp, err := hc.Post(url+"/messages", "application/json", strings.NewReader(body))
				res.mu.Lock()
				res.slowest = max(res.slowest, time.Since(start))
				switch {
				case err != nil:
					res.failedIDs[id] = true
				case resp.StatusCode == http.StatusAccepted:
					res.accepted++
					res.acceptedIDs[id] = true
				default:
					res.rejected++
				}
				res.mu.Unlock()
				if resp != nil {
					resp.Body.Close()
				}
				if err != nil && endOnError {
					return
				}
			}
		})
	}
	wg.Wait()
	return res
}

// checkStored asserts that every accepted id is in the topic exactly once,
// that no id is there twice, and that no request without an answer was
// processed; it returns how many records the topic holds.
func checkStored(t *testing.T, brokers []string, topic string, res *loadResult) int {
	t.Helper()
	recs := kafkatest.ReadAll(t, brokers, topic, len(res.acceptedIDs), 60*time.Second)
	seen := map[string]int{}
	for _, r := range recs {
		msg, err := kafka.DecodeValue(r.Value)
		if err != nil {
			t.Fatalf("%s[%d]@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		seen[msg.MessageID]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("message %s is in the topic %d times", id, n)
		}
	}
	for id := range res.acceptedIDs {
		if seen[id] != 1 {
			t.Errorf("message %s got 202 but is in the topic %d times", id, seen[id])
		}
	}
	for id := range res.failedIDs {
		if seen[id] > 0 {
			t.Errorf("message %s got no answer but was published: an in-flight request was cut", id)
		}
	}
	return len(recs)
}

func TestSIGTERMUnderLoad(t *testing.T) {
	testSIGTERMUnderLoad(t, kafkatest.Fake(t), "")
}

func TestIntegrationSIGTERMUnderLoad(t *testing.T) {
	prefix := testenv.Prefix("it-sigterm")
	testSIGTERMUnderLoad(t, kafkatest.Real(t, prefix), prefix)
}

// testSIGTERMUnderLoad runs the producer as its own process, posts to it
// from 10 clients, sends SIGTERM mid-load, and checks the process drains
// and exits within 30 s with every 202'd message in Kafka.
func testSIGTERMUnderLoad(t *testing.T, brokers []string, prefix string) {
	addr := proctest.FreeAddr(t)
	cmd := exec.Command(proctest.Build(t, "github.com/kchat/kchat/cmd/producer"))
	cmd.Env = append(os.Environ(),
		"KCHAT_KAFKA_BROKERS="+strings.Join(brokers, ","),
		"KCHAT_TOPIC_PREFIX="+prefix,
		"KCHAT_PRODUCER_ADDR="+addr,
		"KCHAT_LOG_LEVEL=warn",
	)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	url := "http://" + addr
	waitFor(t, func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, "the producer to be ready")

	done := make(chan *loadResult)
	go func() { done <- postLoad(url, 10, 5000, 0, true) }()
	time.Sleep(time.Second)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var res *loadResult
	select {
	case err := <-exited:
		took := time.Since(start)
		if err != nil {
			t.Fatalf("producer exited with %v after SIGTERM; stderr:\n%s", err, stderr.String())
		}
		t.Logf("exited %s after SIGTERM", took.Round(time.Millisecond))
		res = <-done
	case <-time.After(30 * time.Second):
		t.Fatalf("producer still running 30 s after SIGTERM; stderr:\n%s", stderr.String())
	}
	if res.accepted == 0 {
		t.Fatal("no message was accepted before SIGTERM: the load never ran")
	}
	n := checkStored(t, brokers, prefix+"query", res)
	t.Logf("202s: %d, other statuses: %d, no answer: %d, records in topic: %d", res.accepted, res.rejected, len(res.failedIDs), n)
}

// TestIntegrationOutageBrokerRestart stops and restarts the real broker
// while 20 clients post 1,000 messages. It must run alone (make
// test-integration runs the Outage tests serially after the rest).
func TestIntegrationOutageBrokerRestart(t *testing.T) {
	prefix := testenv.Prefix("it-restart")
	brokers := kafkatest.Real(t, prefix)
	script := testenv.ServicesScript(t)
	cfg := testConfig(brokers, prefix)
	cfg.Kafka.DeliveryTimeout = 15 * time.Second
	url := startApp(t, cfg)
	waitFor(t, func() bool { return status(t, url+"/readyz") == http.StatusOK }, 30*time.Second, "readyz")

	done := make(chan *loadResult)
	go func() { done <- postLoad(url, 20, 50, 100*time.Millisecond, false) }()
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "bash", script, "stop-kafka").CombinedOutput(); err != nil {
		t.Fatalf("stop-kafka: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second)
	if out, err := exec.CommandContext(ctx, "bash", script, "start-kafka").CombinedOutput(); err != nil {
		t.Fatalf("start-kafka: %v\n%s", err, out)
	}
	res := <-done
	if res.slowest < time.Second {
		t.Fatalf("the slowest request took %s: the outage did not overlap the load", res.slowest)
	}
	if res.accepted+res.rejected+len(res.failedIDs) != 1000 {
		t.Fatalf("posted %d messages, want 1000", res.accepted+res.rejected+len(res.failedIDs))
	}
	// The producer recovers by itself: a message posted now is accepted.
	waitFor(t, func() bool {
		p := post(t, url+"/messages", `{"session_id":"after","user_id":"u","type":"query","message":"back?"}`)
		return p.status == http.StatusAccepted
	}, 30*time.Second, "a 202 after the broker restarted")
	n := checkStored(t, brokers, prefix+"query", res)
	t.Logf("202s: %d, 503s and other statuses: %d, no answer: %d, records in topic: %d (1 posted after recovery), slowest request %s",
		res.accepted, res.rejected, len(res.failedIDs), n, res.slowest.Round(time.Millisecond))
}
