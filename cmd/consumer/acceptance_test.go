package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// world is a real-Kafka setup of its own: a topic prefix, a consumer
// group, and a publisher to fill the topics.
type world struct {
	t       *testing.T
	brokers []string
	prefix  string
	group   string
	pub     *kafka.Publisher
}

func newWorld(t *testing.T, tag string) *world {
	t.Helper()
	prefix := testenv.Prefix(tag)
	brokers := kafkatest.Real(t, prefix)
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &world{t: t, brokers: brokers, prefix: prefix, group: prefix + "group", pub: kafka.NewPublisher(cl, cfg)}
}

// publish stores n messages of typ spread over sessions and returns their ids.
func (w *world) publish(typ domain.MessageType, n int, text func(i int) string) []string {
	w.t.Helper()
	msgs := make([]domain.Message, n)
	ids := make([]string, n)
	for i := range msgs {
		msgs[i] = domain.Message{
			MessageID: domain.NewMessageID(), SessionID: fmt.Sprintf("s%d", i%97), UserID: "u",
			Type: typ, Text: text(i), CreatedAt: time.Now().UTC(),
		}
		ids[i] = msgs[i].MessageID
	}
	for start := 0; start < n; start += 500 {
		for i, r := range w.pub.PublishBatch(context.Background(), msgs[start:min(start+500, n)]) {
			if r.Err != nil {
				w.t.Fatal(r.Err)
			}
			positions[ids[start+i]] = r.Position
		}
	}
	return ids
}

var positions = map[string]domain.Position{}

// consumer starts a consumer process in this world.
func (w *world) consumer(env ...string) *proctest.Proc {
	w.t.Helper()
	return proctest.Start(w.t, proctest.Build(w.t, "github.com/kchat/kchat/cmd/consumer"), "KCHAT_CONSUMER_ADDR",
		append([]string{
			"KCHAT_KAFKA_BROKERS=" + strings.Join(w.brokers, ","),
			"KCHAT_TOPIC_PREFIX=" + w.prefix,
			"KCHAT_CONSUMER_GROUP=" + w.group,
			"KCHAT_CONSUMER_SESSION_TIMEOUT=6s",
			"KCHAT_RECEIPT_KEY=" + testReceiptKey,
		}, env...)...)
}

type served struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Censored  bool            `json:"censored"`
	Receipt   string          `json:"receipt"`
	Poison    string          `json:"poison"`
	Raw       []byte          `json:"raw"`
	id        string
	text      string
	from      string
	at        time.Time
}

type fetched struct {
	Status   string   `json:"status"`
	Count    int      `json:"count"`
	Messages []served `json:"messages"`
}

func get(url string) (int, fetched, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, fetched{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fetched{}, err
	}
	var f fetched
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &f); err != nil {
			return resp.StatusCode, f, fmt.Errorf("decode %s: %w", raw, err)
		}
		for i := range f.Messages {
			var env struct {
				MessageID string `json:"message_id"`
				Message   string `json:"message"`
			}
			_ = json.Unmarshal(f.Messages[i].Value, &env)
			f.Messages[i].id, f.Messages[i].text = env.MessageID, env.Message
		}
	}
	return resp.StatusCode, f, nil
}

// drain is a fleet of HTTP clients taking messages until want distinct ones
// arrived (then 1.5 s more, to catch late duplicates).
type drain struct {
	mu       sync.Mutex
	count    map[string]int
	perCli   [][]served
	total    int
	distinct int
}

func (d *drain) run(t *testing.T, urls func(client int) []string, clients, want int, pace time.Duration, timeout time.Duration) {
	t.Helper()
	d.count = map[string]int{}
	d.perCli = make([][]served, clients)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var reached time.Time
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			turn := 0
			for ctx.Err() == nil {
				d.mu.Lock()
				finished := !reached.IsZero() && time.Since(reached) > 1500*time.Millisecond
				d.mu.Unlock()
				if finished {
					return
				}
				// Spread over the replicas, as a load balancer would: any
				// replica can answer any request.
				us := urls(c)
				url := us[turn%len(us)]
				turn++
				status, f, err := get(url + "/messages?type=query&limit=1&wait=200ms")
				if err != nil || status != http.StatusOK {
					time.Sleep(20 * time.Millisecond) // that replica is gone
					continue
				}
				d.mu.Lock()
				for _, m := range f.Messages {
					m.from, m.at = url, time.Now()
					d.count[m.id]++
					if d.count[m.id] == 1 {
						d.distinct++
					}
					d.total++
					d.perCli[c] = append(d.perCli[c], m)
				}
				if d.distinct >= want && reached.IsZero() {
					reached = time.Now()
				}
				d.mu.Unlock()
				time.Sleep(pace)
			}
		})
	}
	wg.Wait()
}

func (d *drain) progress() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.distinct
}

// check returns how many duplicates there were, failing on any missing
// message or any out-of-order offset seen by one client.
func (d *drain) check(t *testing.T, ids []string) int {
	t.Helper()
	missing, dups := 0, 0
	for _, id := range ids {
		switch n := d.count[id]; {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d messages never served", missing, len(ids))
		byPart := map[int32][]int64{}
		for _, id := range ids {
			if d.count[id] == 0 {
				byPart[positions[id].Partition] = append(byPart[positions[id].Partition], positions[id].Offset)
			}
		}
		t.Logf("missing by partition: %v", byPart)
	}
	if dups > 0 {
		ranges := map[int32][2]int64{}
		for _, seq := range d.perCli {
			for _, m := range seq {
				if d.count[m.id] > 1 {
					r, ok := ranges[m.Partition]
					if !ok {
						r = [2]int64{m.Offset, m.Offset}
					}
					r[0], r[1] = min(r[0], m.Offset), max(r[1], m.Offset)
					ranges[m.Partition] = r
				}
			}
		}
		t.Logf("duplicated offsets by partition: %v", ranges)
		for c, seq := range d.perCli {
			for _, m := range seq {
				if d.count[m.id] > 1 {
					t.Logf("dup %s p%d@%d client %d from %s at %s", m.id[len(m.id)-6:], m.Partition, m.Offset, c, m.from, m.at.Format("15:04:05.000"))
				}
			}
		}
	}
	for c, seq := range d.perCli {
		last := map[int32]int64{}
		for _, m := range seq {
			if prev, ok := last[m.Partition]; ok && m.Offset <= prev && d.count[m.id] == 1 {
				t.Errorf("client %d: partition %d served offset %d after %d", c, m.Partition, m.Offset, prev)
			}
			last[m.Partition] = m.Offset
		}
	}
	return dups
}

func byQuery(i int) string { return fmt.Sprintf("question %d", i) }

// TestIntegrationTwoProcessesDrainExactlyOnce: 2,000 queries over 3
// partitions, 16 clients over two consumer processes in one group.
func TestIntegrationTwoProcessesDrainExactlyOnce(t *testing.T) {
	w := newWorld(t, "it-drain")
	ids := w.publish(domain.TypeQuery, 2000, byQuery)
	a, b := w.consumer(), w.consumer()
	var d drain
	d.run(t, func(c int) []string {
		if c%2 == 0 {
			return []string{a.URL, b.URL}
		}
		return []string{b.URL, a.URL}
	}, 16, len(ids), 0, 90*time.Second)
	if dups := d.check(t, ids); dups != 0 {
		t.Errorf("%d duplicates without any crash, want 0", dups)
	}
	t.Logf("served %d records, %d distinct of %d", d.total, d.distinct, len(ids))
}

// TestIntegrationSIGTERMMidDrain: one of two processes gets SIGTERM mid-drain
// and starts again; nothing is lost and nothing is served twice.
func TestIntegrationSIGTERMMidDrain(t *testing.T) {
	w := newWorld(t, "it-sigterm")
	ids := w.publish(domain.TypeQuery, 2000, byQuery)
	a, b := w.consumer(debugLog), w.consumer(debugLog)
	var mu sync.Mutex
	urls := []string{a.URL, b.URL}
	done := make(chan struct{})
	var d drain
	go func() {
		defer close(done)
		d.run(t, func(c int) []string {
			mu.Lock()
			defer mu.Unlock()
			if c%2 == 0 {
				return []string{urls[0], urls[1]}
			}
			return []string{urls[1], urls[0]}
		}, 16, len(ids), 5*time.Millisecond, 120*time.Second)
	}()
	waitUntil(t, func() bool { return d.progress() >= 500 }, 60*time.Second, "500 messages served")
	if err := a.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	t.Logf("process A stopped after %d messages", d.progress())
	a2 := w.consumer(debugLog)
	mu.Lock()
	urls[0] = a2.URL
	mu.Unlock()
	<-done
	if dups := d.check(t, ids); dups != 0 {
		t.Errorf("%d duplicates after a graceful restart, want 0", dups)
	}
	if t.Failed() {
		t.Logf("A:\n%s\nB:\n%s\nA2:\n%s", a.Logs(), b.Logs(), a2.Logs())
	}
	t.Logf("served %d records, %d distinct of %d", d.total, d.distinct, len(ids))
}

// The in-flight window (README): after kill -9 a process's partitions are
// served again from their last durable commit, and a process never has more
// than KCHAT_CONSUMER_MAX_IN_FLIGHT auto-acknowledged messages per partition
// out beyond it. The killed process owns at most all 3 partitions.
const debugLog = "KCHAT_LOG_LEVEL=info"

const (
	inFlight    = 16
	maxInFlight = "KCHAT_CONSUMER_MAX_IN_FLIGHT=16"
	window      = 3 * inFlight
)

// TestIntegrationKill9MidDrain: kill -9 one of two processes mid-drain.
func TestIntegrationKill9MidDrain(t *testing.T) {
	w := newWorld(t, "it-kill")
	ids := w.publish(domain.TypeQuery, 2000, byQuery)
	a, b := w.consumer(maxInFlight), w.consumer(maxInFlight)
	done := make(chan struct{})
	var d drain
	go func() {
		defer close(done)
		d.run(t, func(c int) []string {
			if c%2 == 0 {
				return []string{a.URL, b.URL}
			}
			return []string{b.URL, a.URL}
		}, 16, len(ids), 5*time.Millisecond, 120*time.Second)
	}()
	waitUntil(t, func() bool { return d.progress() >= 700 }, 60*time.Second, "700 messages served")
	a.Kill()
	t.Logf("process A killed after %d messages", d.progress())
	<-done
	dups := d.check(t, ids)
	if dups > window {
		t.Errorf("%d duplicates after kill -9, want at most the in-flight window %d", dups, window)
	}
	t.Logf("served %d records, %d distinct of %d, %d duplicates (window %d)", d.total, d.distinct, len(ids), dups, window)
}

func waitUntil(t *testing.T, cond func() bool, timeout time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
