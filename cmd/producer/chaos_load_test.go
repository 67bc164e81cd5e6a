package main

import (
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

// httpLoad is the load of the producer's fault scenarios: clients
// goroutines, each posting one message at a time to POST /messages until
// stopped, every post recorded in a history. A client writes keysPerClient
// keys of its own in turn, so the clients spread over the partitions and a
// key's messages never overlap in time: the checker judges their order
// strictly.
// Tests wait on its counts (acked, unknown) to inject faults on events.
type httpLoad struct {
	h    *history.History
	url  string
	hc   *http.Client
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	acks  map[int32]int64 // by partition
	unk   int64
	waits []countWait
}

// countWait is a channel closed when a count reaches n: of unknowns, or of
// acknowledgements on parts (every partition when nil).
type countWait struct {
	unknown bool
	parts   map[int32]bool
	n       int64
	ch      chan struct{}
}

const keysPerClient = 3

// startLoad starts clients posting to the producer at url.
func startLoad(h *history.History, url string, clients int) *httpLoad {
	l := &httpLoad{
		h: h, url: url, stop: make(chan struct{}), acks: map[int32]int64{},
		// One kept-alive connection per client; no request outlives the
		// producer's delivery timeout by much, so a minute means it hung.
		hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}},
	}
	for c := range clients {
		l.wg.Go(func() { l.client(c) })
	}
	return l
}

func (l *httpLoad) client(c int) {
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		send := history.Send{
			ID:      fmt.Sprintf("%s-c%02d-%06d", l.h.Scenario(), c, i),
			Key:     fmt.Sprintf("%s-k%02d-%d", l.h.Scenario(), c, i%keysPerClient),
			Payload: fmt.Sprintf("client %d message %d", c, i),
		}
		op := l.h.Invoke(send)
		body := fmt.Sprintf(`{"session_id":%q,"user_id":"chaos","message_id":%q,"type":"query","message":%q}`, send.Key, send.ID, send.Payload)
		status, pos, err := l.post(body)
		switch outcome := history.HTTPOutcome(status, err); {
		case outcome == history.OK && pos != nil:
			l.h.OKAt(op, *pos)
		case err != nil:
			l.h.Complete(op, outcome, err.Error())
		default:
			l.h.Complete(op, outcome, statusReason(status))
		}
		l.count(history.HTTPOutcome(status, err), pos)
	}
}

// post sends one message and returns the status and, on a 2xx, where the
// producer said it landed (nil if the body did not say).
func (l *httpLoad) post(body string) (int, *history.Position, error) {
	resp, err := l.hc.Post(l.url+"/messages", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer (status %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, nil, nil
	}
	var q struct {
		Topic     string `json:"topic"`
		Partition *int32 `json:"partition"`
		Offset    *int64 `json:"offset"`
	}
	if json.Unmarshal(raw, &q) != nil || q.Topic == "" || q.Partition == nil || q.Offset == nil {
		return resp.StatusCode, nil, nil
	}
	return resp.StatusCode, &history.Position{Topic: q.Topic, Partition: *q.Partition, Offset: *q.Offset}, nil
}

// statusReason is the reason recorded for a post answered with status.
func statusReason(status int) string { return fmt.Sprintf("status %d", status) }

func (l *httpLoad) count(o history.Outcome, pos *history.Position) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case o == history.OK && pos != nil:
		l.acks[pos.Partition]++
	case o == history.OK:
		l.acks[-1]++ // acknowledged without saying where: counts in every total
	case o == history.Unknown:
		l.unk++
	default:
		return
	}
	l.waits = slices.DeleteFunc(l.waits, func(w countWait) bool {
		if l.countOf(w) >= w.n {
			close(w.ch)
			return true
		}
		return false
	})
}

// countOf is the count w waits on (called locked).
func (l *httpLoad) countOf(w countWait) int64 {
	if w.unknown {
		return l.unk
	}
	var n int64
	for p, c := range l.acks {
		if w.parts == nil || w.parts[p] {
			n += c
		}
	}
	return n
}

// acked returns a channel closed once n posts in all were acknowledged.
func (l *httpLoad) acked(n int64) <-chan struct{} { return l.when(countWait{n: n}) }

// ackedOn returns a channel closed once n more posts than now were
// acknowledged on parts.
func (l *httpLoad) ackedOn(parts map[int32]bool, n int64) <-chan struct{} {
	l.mu.Lock()
	n += l.countOf(countWait{parts: parts})
	l.mu.Unlock()
	return l.when(countWait{parts: parts, n: n})
}

// moreAcked returns a channel closed once n more posts than now were
// acknowledged.
func (l *httpLoad) moreAcked(n int64) <-chan struct{} { return l.ackedOn(nil, n) }

// unknown returns a channel closed once n posts in all ended unknown.
func (l *httpLoad) unknown(n int64) <-chan struct{} { return l.when(countWait{unknown: true, n: n}) }

func (l *httpLoad) when(w countWait) <-chan struct{} {
	w.ch = make(chan struct{})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.countOf(w) >= w.n {
		close(w.ch)
	} else {
		l.waits = append(l.waits, w)
	}
	return w.ch
}

// counts returns the acknowledgements and unknowns so far.
func (l *httpLoad) counts() (acks, unknown int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.countOf(countWait{}), l.unk
}

// await waits for ch (from acked or unknown), failing the test after
// timeout: a guard against a load that stalled, never the moment of a fault.
func (l *httpLoad) await(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		acks, unk := l.counts()
		t.Fatalf("no %s within %s (%d acknowledged, %d unknown so far)", what, timeout, acks, unk)
	}
}

// end stops the clients and waits for their last posts to complete.
func (l *httpLoad) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// acksOf returns the completion times of the acknowledged operations,
// in order, of partitions in parts (every partition when parts is nil).
func acksOf(ops []history.Op, parts map[int32]bool) []time.Time {
	var at []time.Time
	for _, op := range ops {
		if op.Outcome == history.OK && (parts == nil || op.Placed && parts[op.At.Partition]) {
			at = append(at, op.CompletedAt)
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	return at
}

// firstAfter is how long after from the first of acks (sorted) came, or
// -1 when none came after it.
func firstAfter(acks []time.Time, from time.Time) time.Duration {
	i, _ := slices.BinarySearchFunc(acks, from, func(a, b time.Time) int { return a.Compare(b) })
	if i == len(acks) {
		return -1
	}
	return acks[i].Sub(from)
}

// longestGap is the longest wait between two consecutive acks (sorted)
// that overlaps [from, to]: the longest the producer acknowledged nothing
// around a fault.
func longestGap(acks []time.Time, from, to time.Time) time.Duration {
	var gap time.Duration
	for i := 1; i < len(acks); i++ {
		if acks[i].Before(from) || acks[i-1].After(to) {
			continue
		}
		gap = max(gap, acks[i].Sub(acks[i-1]))
	}
	return gap
}
