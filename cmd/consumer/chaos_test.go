package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kchat/kchat/internal/history"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// The consumer service's fault scenarios (issue 14, Build 3 d and e; see
// docs/reliability.md, "The consumer's fault scenarios"), on the 3-broker cluster of make cluster-up, with the real
// cmd/consumer binary as several processes of one group and HTTP clients
// taking queries from whichever is up (chaos_takers_test.go). Every
// message's fate is judged by history.CheckConsumer against the topic read
// to its end offsets after the run.

// TestIntegrationChaosConsumerScaling scales the consumers of a group
// 1 → 3 → 1 under load, with ack=auto and with ack=manual: a producer
// writes a known set of queries while eight clients take them; two more
// processes start after a third of them was consumed, and once both serve
// and another third was consumed, two of the three get SIGTERM at once.
// Graceful rebalances re-serve nothing (docs/design.md, "Consumer"): every
// message is consumed, none twice, each client in partition order.
func TestIntegrationChaosConsumerScaling(t *testing.T) {
	for _, manual := range []bool{false, true} {
		mode := map[bool]string{false: "auto", true: "manual"}[manual]
		t.Run("ack="+mode, func(t *testing.T) { testScaling(t, mode, manual) })
	}
}

func testScaling(t *testing.T, mode string, manual bool) {
	total := sized(9000, 2400)
	rig := newChaosRig(t, "chaos-scale-"+mode)
	h := history.New("consumer-scale-" + mode)
	start := time.Now()
	a := rig.start()
	pl := newPool(a.URL)
	var d history.Deliveries
	tk := startTakers(takersConfig{name: "scale", clients: 8, pool: pl, d: &d, manual: manual})
	defer tk.end()
	var unknown int
	var why error
	produced := make(chan struct{})
	go func() { defer close(produced); unknown, why = rig.produceAlong(h, tk, total, 300) }()

	tk.await(t, tk.reached(total/3), 2*time.Minute, "a third consumed by one process")
	upAt := time.Now()
	b := rig.start()
	pl.add(b.URL)
	c := rig.start()
	pl.add(c.URL)
	before := tk.servedBy()
	waitUntil(t, func() bool { s := tk.servedBy(); return s[b.URL] > 0 && s[c.URL] > 0 }, time.Minute,
		"both new processes to serve (the group gave them partitions)")
	tk.await(t, tk.reached(tk.total()+total/3), 2*time.Minute, "another third consumed by three processes")
	during := tk.servedBy()

	downAt := time.Now()
	stopped := make(chan error, 2)
	for _, p := range []*proctest.Proc{a, b} {
		go func() { stopped <- p.Stop(30 * time.Second) }()
	}
	for range 2 {
		if err := <-stopped; err != nil {
			t.Errorf("SIGTERM: %v", err)
		}
	}
	pl.remove(a.URL)
	pl.remove(b.URL)
	stoppedIn := time.Since(downAt)

	select {
	case <-produced:
		if unknown > 0 {
			t.Logf("%d produces were not acknowledged (the cluster's doing; they count as unknown): %v", unknown, why)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("the producer did not finish (%s)", tk)
	}
	rig.waitDrained(2 * time.Minute)
	tk.end()
	took := time.Since(start)

	recs := history.Reader{Brokers: rig.brokers}.Read(t, rig.topic)
	prep := history.Check(h, recs)
	rep := history.CheckConsumer(h.Scenario(), recs, d.List(), 0)
	t.Logf("producer: %s", prep)
	t.Logf("consumers: %s", rep)
	t.Logf("%s; served by a %d, b %d, c %d while three ran (of %d, %d, %d in all); SIGTERM of two took %s; longest stall in consumption after the scale-up %s, after the scale-down %s; %s in all",
		tk, during[a.URL]-before[a.URL], during[b.URL]-before[b.URL], during[c.URL]-before[c.URL],
		during[a.URL], during[b.URL], tk.servedBy()[c.URL], stoppedIn.Round(time.Millisecond),
		tk.longestGapBetween(upAt, downAt).Round(time.Millisecond), tk.longestGapBetween(downAt, time.Now()).Round(time.Millisecond),
		took.Round(time.Second))
	if err := prep.Err(); err != nil {
		t.Errorf("the produced messages: %v", err)
	}
	if err := rep.Err(); err != nil {
		t.Errorf("graceful rebalances must lose, repeat and reorder nothing: %v", err)
	}
}

// TestIntegrationChaosConsumerKill9 builds the worst case of the kill -9
// duplicate bound (issue 14, point 3) and checks the duplicates are exactly
// that and no more. The README promises that after kill -9 at most
// KCHAT_CONSUMER_MAX_IN_FLIGHT × (partitions the process owned) messages
// are delivered twice. One process, owning all three partitions, serves a
// quarter of the queries under load, and the test waits until the group
// committed all of it (kadm). Then the group coordinator is frozen
// (SIGSTOP): the process still serves from what it buffered, but none of
// its commits completes, so clients take messages until it refuses, which
// it must do with exactly MAX_IN_FLIGHT delivered beyond the last durable
// commit on every partition. That is the moment of the kill -9. The frozen
// broker is killed too, so the commit requests waiting unread in its socket
// buffers never apply, and another process of the group takes over and
// serves everything. Expected: nothing missing, and exactly MAX_IN_FLIGHT
// duplicates on each partition, the ones delivered after the freeze.
func TestIntegrationChaosConsumerKill9(t *testing.T) {
	const bound = 8 // KCHAT_CONSUMER_MAX_IN_FLIGHT of the processes, small so that the bound is reached at once
	inFlight := fmt.Sprintf("KCHAT_CONSUMER_MAX_IN_FLIGHT=%d", bound)
	total := sized(4000, 1200)
	rig := newChaosRig(t, "chaos-kill9")
	h := history.New("consumer-kill9")
	start := time.Now()
	if n, why := rig.publish(h, 0, total); n > 0 {
		t.Fatalf("%d of %d produces were not acknowledged: %v", n, total, why)
	}
	a := rig.start(inFlight)
	pl := newPool(a.URL)
	var d history.Deliveries

	// A quarter under load, then every delivery committed: the base.
	load := startTakers(takersConfig{name: "load", clients: 8, pool: pl, d: &d})
	load.await(t, load.reached(total/4), time.Minute, "a quarter consumed")
	load.end()
	base := rig.waitCommitted(furthest(d.List()), 30*time.Second, "the load's commits")
	if len(base) != 3 {
		t.Fatalf("the load reached partitions %v, want all 3", sortedParts(base))
	}

	// Freeze the coordinator; take until the process refuses.
	coord := rig.coordinator()
	t.Cleanup(func() { testenv.Broker(t, testenv.StartBroker, coord) }) // resumes or restarts it
	testenv.Broker(t, testenv.PauseBroker, coord)
	frozen := time.Now()
	mark := len(d.List())
	burst := startTakers(takersConfig{name: "burst", clients: 8, pool: pl, d: &d, untilEmpty: true, atMost: 4 * bound * len(base)})
	burst.wait()
	beyond := map[int32][]int64{}
	for _, dl := range d.List()[mark:] {
		beyond[dl.Partition] = append(beyond[dl.Partition], dl.Offset)
	}
	a.Kill()
	killed := time.Now()
	heldFor := killed.Sub(frozen)

	// The commits sent since the freeze die unread with the broker.
	testenv.Broker(t, testenv.KillBroker, coord)
	script := testenv.ServicesScript(t)
	restarted := make(chan error, 1)
	go func() { restarted <- testenv.RunBroker(context.Background(), script, testenv.StartBroker, coord) }()
	after := rig.waitCommitted(base, 30*time.Second, "the committed offsets after the kills")

	b := rig.start(inFlight)
	pl.remove(a.URL)
	pl.add(b.URL)
	takeover := startTakers(takersConfig{name: "takeover", clients: 8, pool: pl, d: &d})
	rig.waitDrained(2 * time.Minute)
	takeover.end()
	if err := <-restarted; err != nil {
		t.Errorf("restarting broker %d: %v", coord, err)
	}
	recovery := takeover.firstAfter(killed)

	recs := history.Reader{Brokers: rig.brokers}.Read(t, rig.topic)
	rep := history.CheckConsumer(h.Scenario(), recs, d.List(), bound)
	dups := duplicatesByPartition(d.List())
	t.Logf("consumers: %s", rep)
	t.Logf("base (committed before the freeze) %v; delivered after the freeze, by partition: %v; coordinator node %d frozen %s before the kill; committed after the kills %v; duplicates by partition %v; the takeover's first delivery %s after the kill; %s in all",
		base, beyond, coord, heldFor.Round(time.Millisecond), after, dups, recovery.Round(time.Millisecond), time.Since(start).Round(time.Second))

	if err := rep.Err(); err != nil {
		t.Errorf("after kill -9, at most %d duplicates per partition and nothing missing: %v", bound, err)
	}
	// The worst case was built, or the bound proves nothing: each partition
	// had exactly offsets base..base+bound-1 delivered beyond its durable
	// commit, by the clients' count and by the broker's.
	for _, p := range sortedParts(base) {
		want := make([]int64, bound)
		for i := range want {
			want[i] = base[p] + int64(i)
		}
		got := slices.Sorted(slices.Values(beyond[p]))
		if !slices.Equal(got, want) {
			t.Errorf("partition %d: after the freeze the process delivered offsets %v, want exactly %v (MAX_IN_FLIGHT beyond the commit %d)", p, got, want, base[p])
		}
		if after[p] != base[p] {
			t.Errorf("partition %d: committed %d after the kills, %d before the freeze: a commit landed (the freeze lasted %s; franz-go gives up a commit request after 10 s)", p, after[p], base[p], heldFor)
		}
		if !slices.Equal(dups[p], want) {
			t.Errorf("partition %d: offsets %v delivered twice, want exactly %v: every message delivered beyond the durable commit, and nothing else, is served again", p, dups[p], want)
		}
	}
}

// duplicatesByPartition lists, per partition and in order, the offset of
// every delivery beyond the first of its position.
func duplicatesByPartition(ds []history.Delivery) map[int32][]int64 {
	seen := map[history.Position]bool{}
	out := map[int32][]int64{}
	for _, d := range ds {
		if seen[d.Position] {
			out[d.Partition] = append(out[d.Partition], d.Offset)
		}
		seen[d.Position] = true
	}
	for p := range out {
		slices.Sort(out[p])
	}
	return out
}
