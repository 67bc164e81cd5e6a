package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/proctest"
)

// TestIntegrationReceiptsThatCannotBeAcknowledged replays issue 13's probe
// of POST /messages/ack against consumer processes on the real broker: two
// replicas of one group, one process of another group, and one of a third
// group with another key. A made-up receipt, an own receipt with its type
// swapped, another replica's expired receipt, another replica's receipt
// acknowledged twice and another group's receipt each get 404 naming it,
// and nothing is applied; another replica's live receipt gets 200 once.
func TestIntegrationReceiptsThatCannotBeAcknowledged(t *testing.T) {
	w := newWorld(t, "it-receipts")
	a, b := w.consumer("KCHAT_CONSUMER_LEASE=2s"), w.consumer("KCHAT_CONSUMER_LEASE=2s")
	other := w.consumer("KCHAT_CONSUMER_GROUP=" + w.prefix + "other")
	otherKey := w.consumer("KCHAT_CONSUMER_GROUP="+w.prefix+"third", "KCHAT_RECEIPT_KEY=another-receipt-key-0123456789abcdef")
	replicas := []*proctest.Proc{a, b}
	// Let both replicas join before anything is leased: a rebalance hands a
	// leased message to the new owner, which serves it again by design.
	for _, p := range replicas {
		mustGet(t, p.URL+"/messages?type=prompt&wait=3s")
	}
	w.publish(domain.TypePrompt, 4, func(i int) string { return fmt.Sprintf("prompt %d", i) })

	ack := func(p *proctest.Proc, receipts ...string) (int, string) {
		t.Helper()
		quoted := make([]string, len(receipts))
		for i, r := range receipts {
			quoted[i] = fmt.Sprintf("%q", r)
		}
		return body(t, http.MethodPost, p.URL+"/messages/ack", `{"receipts":[`+strings.Join(quoted, ",")+`]}`)
	}
	refused := func(what string, p *proctest.Proc, receipts ...string) {
		t.Helper()
		status, raw := ack(p, receipts...)
		if status != http.StatusNotFound {
			t.Fatalf("%s: %d %s, want 404", what, status, raw)
		}
		for _, r := range receipts {
			if !strings.Contains(raw, r) {
				t.Fatalf("%s: the 404 does not name %s: %s", what, r, raw)
			}
		}
	}
	// lease takes one prompt with ack=manual from whichever replica has
	// one, and returns it with that replica's index.
	lease := func() (int, served) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			for i, p := range replicas {
				if f := mustGet(t, p.URL+"/messages?type=prompt&ack=manual&wait=300ms"); f.Count == 1 {
					return i, f.Messages[0]
				}
			}
		}
		t.Fatal("no replica served a prompt")
		return 0, served{}
	}

	owner, m := lease()
	peer := replicas[1-owner]
	r := m.Receipt
	refused("a made-up receipt", peer, r[:len(r)-8]+"00000000")
	refused("an own receipt altered", replicas[owner], r[:len(r)-8]+"00000000")
	refused("an own receipt with its type swapped", replicas[owner],
		strings.Replace(r, "prompt~", "query~", 1), strings.Replace(r, "prompt~", "answer~", 1))
	refused("another group's receipt", other, r)
	refused("a receipt signed with another key", otherKey, r)
	// Its stderr reaches the test through a pipe: the line may trail the response.
	waitUntil(t, func() bool { return strings.Contains(otherKey.Logs(), "another KCHAT_RECEIPT_KEY") }, 5*time.Second,
		"the process with another key to log an ERROR naming KCHAT_RECEIPT_KEY")
	if status, raw := ack(peer, r); status != http.StatusOK {
		t.Fatalf("another replica's live receipt: %d %s, want 200 (applied by its owner)", status, raw)
	}
	refused("another replica's receipt acknowledged already", peer, r)

	_, expiring := lease()
	time.Sleep(2500 * time.Millisecond) // past the 2 s lease
	for _, p := range replicas {
		refused("an expired receipt", p, expiring.Receipt)
	}

	// Nothing refused was applied: the other group still has every prompt,
	// and this group serves all but the one acknowledged.
	if got := collect(t, other.URL+"/messages?type=prompt&limit=10&wait=2s", 4); len(got) != 4 {
		t.Fatalf("the other group got %d prompts, want 4", len(got))
	}
	seen := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 3 && time.Now().Before(deadline) {
		for _, p := range replicas {
			for _, s := range mustGet(t, p.URL+"/messages?type=prompt&limit=10&wait=300ms").Messages {
				seen[s.id]++
			}
		}
	}
	if len(seen) != 3 || seen[m.id] != 0 || seen[expiring.id] != 1 {
		t.Fatalf("after the acknowledgements the group served %v; want the 3 prompts other than %s, once each", seen, m.id)
	}
}
