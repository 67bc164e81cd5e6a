package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
)

func body(t *testing.T, method, url, payload string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	if payload != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// collect takes messages from url until n arrived.
func collect(t *testing.T, url string, n int) []served {
	t.Helper()
	var out []served
	deadline := time.Now().Add(15 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		out = append(out, mustGet(t, url).Messages...)
	}
	if len(out) != n {
		t.Fatalf("collected %d messages, want %d", len(out), n)
	}
	return out
}

func mustGet(t *testing.T, url string) fetched {
	t.Helper()
	status, f, err := get(url)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, status, err)
	}
	return f
}

// TestIntegrationConsumerProcess drives one consumer process against the
// real broker through every route the issue names.
func TestIntegrationConsumerProcess(t *testing.T) {
	w := newWorld(t, "it-proc")
	w.publish(domain.TypeQuery, 5, byQuery)
	admin := proctest.FreeAddr(t) // /metrics is served there, not on the API
	c := w.consumer("KCHAT_CONSUMER_LEASE=2s", "KCHAT_ADMIN_ADDR="+admin)
	q := "/messages?type=query"

	t.Run("the first call after startup returns the backlog", func(t *testing.T) {
		f := mustGet(t, c.URL+q+"&limit=1&wait=0s")
		if f.Count != 1 || f.Messages[0].id == "" {
			t.Fatalf("first call: %+v", f)
		}
		rest := mustGet(t, c.URL+q+"&limit=10&wait=2s")
		if f.Count+rest.Count != 5 {
			t.Fatalf("backlog of 5 served as %d + %d", f.Count, rest.Count)
		}
	})

	t.Run("profanity is masked on the way out, not in Kafka", func(t *testing.T) {
		clean := "The assessment in Essex and Middlesex: Dickens, a cockpit, Scunthorpe, a classic."
		w.publish(domain.TypeQuery, 1, func(int) string { return "what the fuck is kchat" })
		w.publish(domain.TypeQuery, 1, func(int) string { return clean })
		for _, m := range collect(t, c.URL+q+"&limit=2&wait=5s", 2) {
			switch {
			case strings.HasPrefix(m.text, "what the"):
				if !m.Censored || strings.Contains(m.text, "fuck") {
					t.Errorf("not censored: %q censored=%v", m.text, m.Censored)
				}
				// Read until that record's partition came in: ReadAll stops
				// soon after the first record, which may be another's.
				seen, found := false, false
				for deadline := time.Now().Add(20 * time.Second); !seen && time.Now().Before(deadline); {
					for _, r := range kafkatest.ReadAll(t, w.brokers, m.Topic, 1, 10*time.Second) {
						if r.Partition == m.Partition && r.Offset == m.Offset {
							msg, _ := kafka.DecodeValue(r.Value)
							seen, found = true, msg.Text == "what the fuck is kchat"
						}
					}
				}
				if !found {
					t.Error("the record in Kafka changed or is gone")
				}
			default:
				if m.Censored || m.text != clean {
					t.Errorf("allow-listed words changed: %q censored=%v", m.text, m.Censored)
				}
			}
		}
	})

	t.Run("poison records come back flagged", func(t *testing.T) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(w.brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: w.prefix + "query", Key: []byte("s1"), Value: []byte("not an envelope")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		f := mustGet(t, c.URL+q+"&limit=5&wait=5s")
		if f.Count != 1 || f.Messages[0].Poison == "" || string(f.Messages[0].Raw) != "not an envelope" || string(f.Messages[0].Value) != "null" {
			t.Fatalf("poison: %+v", f)
		}
	})

	t.Run("seed parameters: latest=true consumes, browsing commits nothing", func(t *testing.T) {
		w.publish(domain.TypeAnswer, 3, func(i int) string { return fmt.Sprintf("answer %d", i) })
		for range 2 {
			f := mustGet(t, c.URL+"/messages?topic=answer&limit=10")
			if f.Count != 3 || f.Messages[0].Offset != 0 {
				t.Fatalf("browse: %+v", f)
			}
		}
		peek := mustGet(t, c.URL+"/messages/peek?type=answer&limit=10")
		if peek.Count != 3 {
			t.Fatalf("peek: %d", peek.Count)
		}
		got := 0
		for got < 3 {
			f := mustGet(t, c.URL+"/messages?topic=answer&latest=true&limit=10&wait=5s")
			if f.Count == 0 {
				t.Fatal("latest=true returned nothing")
			}
			got += f.Count
		}
		if f := mustGet(t, c.URL+"/messages?topic=answer&latest=true&wait=500ms"); f.Count != 0 {
			t.Fatalf("consumed answers came back: %d", f.Count)
		}
	})

	t.Run("ack=manual leases, acknowledgements and unknown receipts", func(t *testing.T) {
		w.publish(domain.TypePrompt, 1, func(int) string { return "prompt" })
		first := mustGet(t, c.URL+"/messages?type=prompt&ack=manual&wait=5s")
		if first.Count != 1 || first.Messages[0].Receipt == "" {
			t.Fatalf("manual: %+v", first)
		}
		if f := mustGet(t, c.URL+"/messages?type=prompt&ack=manual&wait=500ms"); f.Count != 0 {
			t.Fatal("a leased message was served to another caller")
		}
		again := mustGet(t, c.URL+"/messages?type=prompt&ack=manual&wait=5s") // after the 2 s lease
		if again.Count != 1 || again.Messages[0].id != first.Messages[0].id {
			t.Fatalf("after the lease expired: %+v", again)
		}
		status, raw := body(t, http.MethodPost, c.URL+"/messages/ack", fmt.Sprintf(`{"receipts":[%q]}`, first.Messages[0].Receipt))
		if status != http.StatusNotFound || !strings.Contains(raw, "not leased") {
			t.Fatalf("expired receipt: %d %s", status, raw)
		}
		status, raw = body(t, http.MethodPost, c.URL+"/messages/ack", fmt.Sprintf(`{"receipts":[%q]}`, again.Messages[0].Receipt))
		if status != http.StatusOK {
			t.Fatalf("ack: %d %s", status, raw)
		}
		if f := mustGet(t, c.URL+"/messages?type=prompt&wait=3s"); f.Count != 0 {
			t.Fatal("an acknowledged message came back")
		}
		if status, _ := body(t, http.MethodPost, c.URL+"/messages/ack", `{"receipts":["made-up"]}`); status/100 != 4 {
			t.Fatalf("unknown receipt: %d", status)
		}
	})

	t.Run("wait ends within 100 ms of a produce, or after the wait with count 0", func(t *testing.T) {
		start := time.Now()
		if f := mustGet(t, c.URL+"/messages?type=prompt&wait=5s"); f.Count != 0 {
			t.Fatalf("empty topic gave %d", f.Count)
		}
		if took := time.Since(start); took < 5*time.Second || took > 6*time.Second {
			t.Fatalf("empty wait took %s, want 5 s", took)
		}
		producedAt := make(chan time.Time, 1)
		go func() {
			time.Sleep(time.Second)
			w.publish(domain.TypePrompt, 1, func(int) string { return "late" })
			producedAt <- time.Now() // acknowledged by Kafka
		}()
		f := mustGet(t, c.URL+"/messages?type=prompt&wait=5s")
		answered := time.Now()
		produced := <-producedAt
		if f.Count != 1 {
			t.Fatalf("long poll got %d", f.Count)
		}
		lag := answered.Sub(produced)
		if lag > 100*time.Millisecond {
			t.Fatalf("answered %s after the produce was acknowledged, want within 100 ms", lag)
		}
		t.Logf("long poll answered %s after the produce was acknowledged", lag.Round(100*time.Microsecond))
	})

	t.Run("one group join per topic for the process lifetime", func(t *testing.T) {
		// Steady load for a while: produce and consume.
		for range 20 {
			w.publish(domain.TypeQuery, 5, byQuery)
			mustGet(t, c.URL+q+"&limit=5&wait=2s")
			time.Sleep(100 * time.Millisecond)
		}
		_, metrics := body(t, http.MethodGet, "http://"+admin+"/metrics", "")
		for _, typ := range domain.MessageTypes {
			re := regexp.MustCompile(`kchat_consumer_group_joins_total\{topic="` + regexp.QuoteMeta(w.prefix+string(typ)) + `"\} (\d+)`)
			m := re.FindStringSubmatch(metrics)
			if m == nil {
				t.Fatalf("no join counter for %s", typ)
			}
			if n, _ := strconv.Atoi(m[1]); n != 1 {
				t.Errorf("%s: %d group joins, want exactly 1", typ, n)
			}
		}
	})

	t.Run("bad parameters are 422 problems", func(t *testing.T) {
		for _, query := range []string{"type=shout", "type=query&limit=0", "type=query&limit=501", "type=query&wait=31s"} {
			resp, err := http.Get(c.URL + "/messages?" + query)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("GET /messages?%s: %d %s", query, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
	})

	if err := c.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}
