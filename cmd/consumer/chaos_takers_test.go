package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/internal/history"
)

// pool is the set of consumer processes the clients call, as a load
// balancer would see it: any process can answer any request.
type pool struct {
	mu   sync.Mutex
	urls []string
}

func newPool(urls ...string) *pool { return &pool{urls: urls} }

func (p *pool) add(url string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.urls = append(p.urls, url)
}

func (p *pool) remove(url string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.urls = slices.DeleteFunc(p.urls, func(u string) bool { return u == url })
}

// pick returns the process for a client's turn, and the others after it.
func (p *pool) pick(turn int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.urls)
	out := make([]string, n)
	for i := range n {
		out[i] = p.urls[(turn+i)%n]
	}
	return out
}

// takersConfig says how a fleet of consumer clients behaves.
type takersConfig struct {
	name    string // names its clients: <name>-c00…
	clients int
	pool    *pool
	d       *history.Deliveries // where consumed messages are recorded
	// manual takes with ack=manual and acknowledges at once; a message
	// counts as consumed once its acknowledgement was applied.
	manual bool
	// untilEmpty stops a client at its first empty response; atMost (if
	// not 0) stops each client once the fleet consumed that many.
	untilEmpty bool
	atMost     int
}

// takers is the consumer load of the scenarios: clients goroutines, each
// taking messages one request at a time (GET /messages?type=query, limit 1
// to 3 in turn) from the processes of a pool, and recording in a
// history.Deliveries what it consumed, in the order it did. Tests wait on
// its counts to inject faults on events.
type takers struct {
	cfg  takersConfig
	hc   *http.Client // GETs, kept alive
	ackc *http.Client // acknowledgements, one connection each
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	consumed int
	bySource map[string]int // consumed per process URL
	times    []time.Time    // when each message was consumed
	errs     int            // requests that failed: a process going, gone or not ready
	lost     int            // ack=manual receipts refused (404): their lease ended in a rebalance
	resent   int            // ack=manual receipts sent to another process when the first did not answer
	ackUnk   int            // ack=manual messages no process answered the acknowledgement of, counted as consumed
	ackErr   error          // the last error of the first of them
	waits    []takenWait
}

type takenWait struct {
	n  int
	ch chan struct{}
}

func startTakers(cfg takersConfig) *takers {
	tk := &takers{
		cfg:      cfg,
		hc:       &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.clients}},
		ackc:     &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}},
		stop:     make(chan struct{}),
		bySource: map[string]int{},
	}
	for c := range cfg.clients {
		tk.wg.Go(func() { tk.client(c) })
	}
	return tk
}

func (tk *takers) client(c int) {
	name := fmt.Sprintf("%s-c%02d", tk.cfg.name, c)
	for turn := c; ; turn++ {
		select {
		case <-tk.stop:
			return
		default:
		}
		urls := tk.cfg.pool.pick(turn)
		if len(urls) == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		msgs, err := tk.take(urls[0], 1+turn%3)
		if err != nil {
			tk.count(func() { tk.errs++ })
			time.Sleep(20 * time.Millisecond) // that process is going or gone: the next turn picks another
			continue
		}
		if len(msgs) == 0 {
			if tk.cfg.untilEmpty {
				return
			}
			continue
		}
		if tk.cfg.manual {
			msgs = tk.acknowledge(urls, msgs)
		}
		if tk.record(name, urls[0], msgs) {
			return
		}
	}
}

// take asks url for up to limit queries.
func (tk *takers) take(url string, limit int) ([]served, error) {
	ack := "auto"
	if tk.cfg.manual {
		ack = "manual"
	}
	resp, err := tk.hc.Get(fmt.Sprintf("%s/messages?type=query&limit=%d&wait=300ms&ack=%s", url, limit, ack))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /messages: %d %s", resp.StatusCode, raw)
	}
	var f fetched
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("decode %s: %w", raw, err)
	}
	for i := range f.Messages {
		var env struct {
			MessageID string `json:"message_id"`
		}
		_ = json.Unmarshal(f.Messages[i].Value, &env)
		f.Messages[i].id = env.MessageID
	}
	return f.Messages, nil
}

// acknowledge posts the receipts of msgs to the process that leased them
// and returns the messages whose acknowledgement was applied. A 404 names
// the receipts that were not: their lease ended when their partition moved,
// and the group serves them again. A request that gets no answer goes to
// the next process, which forwards the receipts to the one that issued
// them: a process shutting down refuses connections once its listener is
// closed, and net/http drops, unhandled and unanswered (EOF), a request it
// reads after its shutdown began, so such a request was never applied.
func (tk *takers) acknowledge(urls []string, msgs []served) []served {
	receipts := make([]string, len(msgs))
	for i, m := range msgs {
		receipts[i] = m.Receipt
	}
	body, _ := json.Marshal(map[string][]string{"receipts": receipts})
	var last error
	for i, url := range urls {
		if i == 1 {
			tk.count(func() { tk.resent += len(msgs) })
		}
		resp, err := tk.ackc.Post(url+"/messages/ack", "application/json", strings.NewReader(string(body)))
		if err != nil {
			last = err
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return msgs
		case http.StatusNotFound:
			refused := refusedReceipts(raw)
			applied := slices.DeleteFunc(slices.Clone(msgs), func(m served) bool { return refused(m.Receipt) })
			tk.count(func() { tk.lost += len(msgs) - len(applied) })
			return applied
		default:
			last = fmt.Errorf("POST /messages/ack: %d %s", resp.StatusCode, raw)
		}
	}
	tk.count(func() { tk.ackUnk += len(msgs); tk.ackErr = cmp.Or(tk.ackErr, last) })
	return msgs
}

// refusedReceipts reads a 404 of POST /messages/ack: it names each refused
// receipt in errors[].value, cut short (with "…") when long.
func refusedReceipts(raw []byte) func(receipt string) bool {
	var p struct {
		Errors []struct {
			Value string `json:"value"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(raw, &p)
	return func(receipt string) bool {
		for _, e := range p.Errors {
			if v := strings.TrimSuffix(e.Value, "…"); v != "" && strings.HasPrefix(receipt, v) {
				return true
			}
		}
		return false
	}
}

// record adds what a client consumed and reports whether the fleet has
// consumed as many as it may.
func (tk *takers) record(client, url string, msgs []served) (enough bool) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	now := time.Now() // under the lock: times stay in order
	for _, m := range msgs {
		tk.cfg.d.Add(history.Delivery{Client: client, ID: m.id,
			Position: history.Position{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}})
		tk.times = append(tk.times, now)
	}
	tk.consumed += len(msgs)
	tk.bySource[url] += len(msgs)
	tk.waits = slices.DeleteFunc(tk.waits, func(w takenWait) bool {
		if tk.consumed >= w.n {
			close(w.ch)
			return true
		}
		return false
	})
	return tk.cfg.atMost > 0 && tk.consumed >= tk.cfg.atMost
}

func (tk *takers) count(f func()) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	f()
}

// reached returns a channel closed once the fleet consumed n messages.
func (tk *takers) reached(n int) <-chan struct{} {
	w := takenWait{n: n, ch: make(chan struct{})}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.consumed >= n {
		close(w.ch)
	} else {
		tk.waits = append(tk.waits, w)
	}
	return w.ch
}

// await waits for ch, failing the test after timeout: a guard against a
// load that stalled, never the moment of a fault.
func (tk *takers) await(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("no %s within %s (%s)", what, timeout, tk)
	}
}

// servedBy returns how many messages each process handed out so far.
func (tk *takers) servedBy() map[string]int {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	out := make(map[string]int, len(tk.bySource))
	for u, n := range tk.bySource {
		out[u] = n
	}
	return out
}

// firstAfter returns how long after from the fleet consumed its first
// message, or -1 if it consumed none after from.
func (tk *takers) firstAfter(from time.Time) time.Duration {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	for _, at := range tk.times {
		if at.After(from) {
			return at.Sub(from)
		}
	}
	return -1
}

// longestGapBetween returns the longest time the fleet consumed nothing
// between from and to: the stall a fault or a rebalance caused.
func (tk *takers) longestGapBetween(from, to time.Time) time.Duration {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	var gap time.Duration
	prev := from
	for _, at := range tk.times {
		if at.Before(from) {
			continue
		}
		if at.After(to) {
			at = to
		}
		gap = max(gap, at.Sub(prev))
		prev = at
		if at.Equal(to) {
			break
		}
	}
	return gap
}

// total returns how many messages the fleet consumed so far.
func (tk *takers) total() int {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.consumed
}

// end stops the clients and waits for their last requests to complete.
func (tk *takers) end() {
	select {
	case <-tk.stop:
	default:
		close(tk.stop)
	}
	tk.wg.Wait()
}

// wait waits for the clients to stop by themselves (untilEmpty).
func (tk *takers) wait() { tk.wg.Wait() }

func (tk *takers) String() string {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	s := fmt.Sprintf("%s: %d consumed, %d failed requests, %d receipts refused at acknowledgement (lease ended in a rebalance), %d sent again elsewhere, %d unanswered",
		tk.cfg.name, tk.consumed, tk.errs, tk.lost, tk.resent, tk.ackUnk)
	if tk.ackErr != nil {
		s += fmt.Sprintf(" (the first: %v)", tk.ackErr)
	}
	return s
}
