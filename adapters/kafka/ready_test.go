package kafka_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/internal/testenv"
)

// readyChecks are the readiness checks of the adapters the services use,
// each built on brokers: the producer's and answerer's (TopicAdmin), the
// consumer's (Queue) and the gateway's (AnswerFeed).
var readyChecks = []struct {
	name string
	make func(t *testing.T, brokers []string) func(context.Context) error
}{
	{"TopicAdmin", func(t *testing.T, brokers []string) func(context.Context) error {
		cfg := kafka.DefaultConfig()
		cfg.Brokers, cfg.TopicPrefix = brokers, testenv.Prefix("ready")
		cl, err := kafka.NewClient(cfg, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		admin := kafka.NewTopicAdmin(cl, cfg, slog.New(slog.DiscardHandler), kafka.PipelineTopics(cfg)...)
		if err := admin.EnsureTopics(t.Context()); err != nil {
			t.Fatal(err)
		}
		return admin.Ready
	}},
	{"Queue", func(t *testing.T, brokers []string) func(context.Context) error {
		cfg := kafka.DefaultConfig()
		cfg.Brokers = brokers
		q, err := kafka.NewQueue(cfg, queueConfig(testenv.Prefix("ready")), slog.New(slog.DiscardHandler), kafka.NewMetrics(nil))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = q.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return q.Ready
	}},
	{"AnswerFeed", func(t *testing.T, brokers []string) func(context.Context) error {
		cfg := kafka.DefaultConfig()
		cfg.Brokers = brokers
		return startFeed(t, cfg).Ready
	}},
}

// waitReady waits until ready succeeds: a client starts without broker
// information.
func waitReady(t *testing.T, ready func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ready(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 10 s on a running broker: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Each check is a request that reaches a broker, every time: a client with
// broker information in its metadata cache must not answer for the broker.
func TestReadyAsksABrokerEveryTime(t *testing.T) {
	t.Parallel()
	for _, rc := range readyChecks {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			ready := rc.make(t, c.ListenAddrs())
			waitReady(t, ready)

			var asked atomic.Int64
			c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if len(req.(*kmsg.MetadataRequest).Topics) == 0 && req.(*kmsg.MetadataRequest).Topics != nil {
					asked.Add(1)
				}
				return nil, nil, false // observe only
			})
			const checks = 5
			for range checks {
				if err := ready(t.Context()); err != nil {
					t.Fatalf("Ready on a running broker: %v", err)
				}
			}
			if got := asked.Load(); got < checks {
				t.Fatalf("%d readiness checks sent %d metadata requests to the broker: some were answered from a cache", checks, got)
			}
		})
	}
}

// With every broker gone the check fails within kafka.ReadyTimeout (and
// a little), and succeeds again once a broker listens on the address.
func TestReadyFollowsTheBroker(t *testing.T) {
	t.Parallel()
	for _, rc := range readyChecks {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
			if err != nil {
				t.Fatal(err)
			}
			ready := rc.make(t, c.ListenAddrs())
			waitReady(t, ready)

			c.Close()
			start := time.Now()
			if err := ready(t.Context()); err == nil {
				t.Fatal("Ready succeeded with the broker gone")
			}
			if took := time.Since(start); took > kafka.ReadyTimeout+time.Second {
				t.Fatalf("Ready took %s to fail, want at most %s", took, kafka.ReadyTimeout)
			}

			back, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(back.Close)
			waitReady(t, ready)
		})
	}
}

// A broker that accepts the request but never answers (paused, say) makes
// the check fail within its timeout; with others answering, one such
// broker of three does not make the service unready, and neither does one
// that is gone.
func TestReadyWithOneBrokerOfThreeDown(t *testing.T) {
	t.Parallel()
	for _, rc := range readyChecks {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			c, err := kfake.NewCluster(kfake.NumBrokers(3))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			ready := rc.make(t, c.ListenAddrs())
			waitReady(t, ready)

			// Node 0 holds every readiness request until the test ends;
			// nodes 1 and 2 answer only once node 0 holds one, so a check
			// that asks the brokers one after the other never succeeds.
			ended, reached := make(chan struct{}), make(chan struct{})
			t.Cleanup(func() { close(ended) })
			var once sync.Once
			c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if topics := req.(*kmsg.MetadataRequest).Topics; topics == nil || len(topics) != 0 {
					return nil, nil, false
				}
				if c.CurrentNode() == 0 {
					once.Do(func() { close(reached) })
					c.SleepControl(func() { <-ended })
				} else {
					c.SleepControl(func() {
						select {
						case <-reached:
						case <-ended:
						}
					})
				}
				return nil, nil, false
			})
			for range 3 {
				start := time.Now()
				if err := ready(t.Context()); err != nil {
					t.Fatalf("Ready with node 0 paused and two nodes up: %v", err)
				}
				if took := time.Since(start); took > kafka.ReadyTimeout {
					t.Fatalf("Ready took %s with node 0 paused", took)
				}
			}
			if err := c.RemoveNode(1); err != nil {
				t.Fatal(err)
			}
			if err := ready(t.Context()); err != nil {
				t.Fatalf("Ready with node 0 paused, node 1 gone and node 2 up: %v", err)
			}
		})
	}
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}
