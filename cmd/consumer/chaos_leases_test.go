package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/internal/history"
)

// TestIntegrationChaosConsumerRebalanceManualLeases checks the README's
// promise that rebalances serve nothing twice ("graceful restarts and
// rebalances lose nothing and serve nothing twice") with ack=manual: a
// client holds one lease on each partition from the only process of the
// group, with minutes left on each, and acknowledged the messages after
// them, when a second process joins and the group moves partitions to it.
// The new process may hand out neither a leased nor an acknowledged
// message, and every lease must still be acknowledged with 200.
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
	var refused []string
	for _, p := range sortedParts(held) {
		if status := ackAt(t, a.URL, held[p].Receipt); status != http.StatusOK {
			refused = append(refused, fmt.Sprintf("partition %d: %d", p, status))
		}
	}
	t.Logf("%.0f s into leases of 5 minutes, the new process served again: leased %v, acknowledged %v; acknowledgements refused afterwards: %v",
		time.Since(leasedAt).Seconds(), again, ackedAgain, refused)
	if len(again)+len(ackedAgain)+len(refused) > 0 {
		t.Errorf("a graceful rebalance served twice %d leased and %d acknowledged messages, and refused %d live leases' acknowledgements",
			len(again), len(ackedAgain), len(refused))
	}
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
