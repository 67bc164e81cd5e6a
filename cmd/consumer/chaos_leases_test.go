package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/internal/history"
)

// TestIntegrationChaosConsumerRebalanceManualLeases checks what a graceful
// rebalance does to ack=manual leases (README, "Consumer API"): a client
// holds one lease on each partition from the only process of the group,
// with minutes left on each, and acknowledged the messages after them,
// when a second process joins and the group moves partitions to it. The
// messages acknowledged after a lease are never served again (the commit
// carries them to the new owner); a lease still open when its partition
// moves (after the settle timeout) is served again by the new owner, and
// its late acknowledgement gets 404, as an expired lease's would.
func TestIntegrationChaosConsumerRebalanceManualLeases(t *testing.T) {
	rig := newChaosRig(t, "chaos-leases")
	h := history.New("consumer-leases")
	if n, why := rig.publish(h, 0, 60); n > 0 {
		t.Fatalf("%d produces not acknowledged: %v", n, why)
	}
	lease := "KCHAT_CONSUMER_LEASE=5m" // far longer than the test: no lease ends on its own
	a := rig.start(lease)
	// One lease per partition held (its oldest message), and at least two
	// messages after it acknowledged: the commit cannot pass the lease.
	held := map[int32]served{}
	acked := map[history.Position]bool{}
	ackedIn := map[int32]int{}
	ready := func() bool { return len(held) == 3 && ackedIn[0] >= 2 && ackedIn[1] >= 2 && ackedIn[2] >= 2 }
	for deadline := time.Now().Add(30 * time.Second); !ready() && time.Now().Before(deadline); {
		for _, m := range mustGet(t, a.URL+"/messages?type=query&ack=manual&limit=3&wait=1s").Messages {
			if _, ok := held[m.Partition]; !ok {
				held[m.Partition] = m
				continue
			}
			if status := ackAt(t, a.URL, m.Receipt); status != http.StatusOK {
				t.Fatalf("acknowledging %s[%d]@%d: %d", m.Topic, m.Partition, m.Offset, status)
			}
			acked[history.Position{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}] = true
			ackedIn[m.Partition]++
		}
	}
	if !ready() {
		t.Fatalf("leases on partitions %v and acknowledged after them %v, want all 3 and 2 each\n%s", sortedParts(held), ackedIn, a.Logs())
	}
	leasedAt := time.Now()

	b := rig.start(lease)
	var again, ackedAgain []string
	servedByB := 0
	for deadline := time.Now().Add(30 * time.Second); servedByB == 0 && time.Now().Before(deadline); {
		f := mustGet(t, b.URL+"/messages?type=query&ack=manual&limit=10&wait=1s")
		servedByB = f.Count // once b serves, it owns partitions and served their heads
		for _, m := range f.Messages {
			at := fmt.Sprintf("%s[%d]@%d", m.Topic, m.Partition, m.Offset)
			if h, ok := held[m.Partition]; ok && h.Offset == m.Offset {
				again = append(again, at)
			}
			if acked[history.Position{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}] {
				ackedAgain = append(ackedAgain, at)
			}
		}
	}
	if servedByB == 0 {
		t.Fatalf("the new process served nothing in 30 s: no rebalance to judge\n%s", b.Logs())
	}
	moved := map[int32]bool{}
	for _, at := range again {
		var p int32
		var off int64
		if _, err := fmt.Sscanf(at[strings.Index(at, "["):], "[%d]@%d", &p, &off); err == nil {
			moved[p] = true
		}
	}
	var wrong []string
	for _, p := range sortedParts(held) {
		status := ackAt(t, a.URL, held[p].Receipt)
		switch {
		case moved[p] && status != http.StatusNotFound:
			wrong = append(wrong, fmt.Sprintf("partition %d moved and its lease was served again, yet its acknowledgement got %d, want 404", p, status))
		case !moved[p] && status != http.StatusOK:
			wrong = append(wrong, fmt.Sprintf("partition %d stayed, yet its lease's acknowledgement got %d, want 200", p, status))
		}
	}
	t.Logf("%.0f s into leases of 5 minutes, the new process served again: leased %v (partitions moved: %v), acknowledged %v",
		time.Since(leasedAt).Seconds(), again, sortedKeys(moved), ackedAgain)
	if len(ackedAgain) > 0 {
		t.Errorf("a graceful rebalance served %d acknowledged messages again: %v", len(ackedAgain), ackedAgain)
	}
	for _, w := range wrong {
		t.Error(w)
	}
}

func sortedKeys(m map[int32]bool) []int32 {
	var out []int32
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// ackAt acknowledges receipt at url and returns the status.
func ackAt(t *testing.T, url, receipt string) int {
	t.Helper()
	body, _ := json.Marshal(map[string][]string{"receipts": {receipt}})
	resp, err := http.Post(url+"/messages/ack", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	return resp.StatusCode
}
