package ledger_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/internal/ledger"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// fill assigns partitions and adds offsets 0..n-1 to each.
func fill(l *ledger.Ledger[int64], parts []int32, n int) {
	for _, p := range parts {
		l.Assign(p, 1)
		offs := make([]int64, n)
		items := make([]int64, n)
		for i := range n {
			offs[i], items[i] = int64(i), int64(i)
		}
		l.Add(p, 1, offs, items)
	}
}

func receipts[T any](ls []ledger.Leased[T]) []string {
	out := make([]string, len(ls))
	for i, x := range ls {
		out[i] = x.Receipt
	}
	return out
}

func TestLedgerServesInOrderAndFairly(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	fill(l, []int32{0, 1, 2}, 4)
	got := l.Take(6, t0, time.Minute, true)
	if len(got) != 6 {
		t.Fatalf("took %d, want 6", len(got))
	}
	perPart := map[int32][]int64{}
	for _, x := range got {
		perPart[x.Partition] = append(perPart[x.Partition], x.Offset)
	}
	for p, offs := range perPart {
		if !slices.Equal(offs, []int64{0, 1}) {
			t.Errorf("partition %d served %v, want [0 1]: oldest first, two from each", p, offs)
		}
	}
	next := l.Take(100, t0, time.Minute, true)
	if len(next) != 6 {
		t.Fatalf("second take got %d, want the other 6", len(next))
	}
	if more := l.Take(1, t0, time.Minute, true); len(more) != 0 {
		t.Fatalf("took %d from an empty ledger", len(more))
	}
}

func TestLedgerCommitsOnlyContiguousRuns(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	fill(l, []int32{0}, 4)
	got := l.Take(4, t0, time.Minute, true)
	if unknown := l.Ack([]string{got[1].Receipt, got[2].Receipt}); len(unknown) != 0 {
		t.Fatalf("unknown %v", unknown)
	}
	if c := l.Commits(); len(c) != 0 {
		t.Fatalf("committed %v while offset 0 is still leased", c)
	}
	l.Ack([]string{got[0].Receipt})
	if c := l.Commits(); c[0] != 3 {
		t.Fatalf("commits = %v, want partition 0 at 3", c)
	}
	if c := l.Commits(); len(c) != 0 {
		t.Fatalf("commits reported twice: %v", c)
	}
	l.Ack([]string{got[3].Receipt})
	c := l.Commits()
	if c[0] != 4 {
		t.Fatalf("commits = %v, want 4", c)
	}
	l.Redirty(0, 4)
	if c := l.Commits(); c[0] != 4 {
		t.Fatalf("after Redirty commits = %v, want 4 again", c)
	}
}

func TestLedgerCommitsAcrossOffsetGaps(t *testing.T) {
	l := ledger.New[string]("q", 0, signer)
	l.Assign(0, 1)
	l.Add(0, 1, []int64{10, 12, 15}, []string{"a", "b", "c"}) // 11, 13, 14: transaction markers
	got := l.Take(3, t0, time.Minute, true)
	if items := []string{got[0].Item, got[1].Item, got[2].Item}; !slices.Equal(items, []string{"a", "b", "c"}) {
		t.Fatalf("items = %v, want a b c: each record keeps its item", items)
	}
	l.Ack(receipts(got))
	if c := l.Commits(); c[0] != 16 {
		t.Fatalf("commits = %v, want 16", c)
	}
}

func TestLedgerReleasePutsBackAtTheHead(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	fill(l, []int32{0}, 3)
	first := l.Take(1, t0, time.Minute, true)
	second := l.Take(1, t0, time.Minute, true)
	l.Release([]string{first[0].Receipt})
	again := l.Take(1, t0, time.Minute, true)
	if again[0].Offset != 0 {
		t.Fatalf("after release served offset %d, want 0 again", again[0].Offset)
	}
	if unknown := l.Ack([]string{first[0].Receipt}); len(unknown) != 1 {
		t.Fatalf("the released receipt was still accepted")
	}
	l.Ack([]string{again[0].Receipt, second[0].Receipt})
	if c := l.Commits(); c[0] != 2 {
		t.Fatalf("commits = %v, want 2", c)
	}
}

func TestLedgerExpiredLeasesAreServedAgain(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	fill(l, []int32{0}, 1)
	first := l.Take(1, t0, time.Second, false)
	if n := l.Expire(t0.Add(500 * time.Millisecond)); n != 0 {
		t.Fatalf("expired %d leases early", n)
	}
	if got := l.Take(1, t0, time.Second, false); len(got) != 0 {
		t.Fatal("a leased record was served twice")
	}
	if n := l.Expire(t0.Add(2 * time.Second)); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	again := l.Take(1, t0, time.Second, false)
	if len(again) != 1 || again[0].Offset != 0 || again[0].Receipt == first[0].Receipt {
		t.Fatalf("re-served %v, want offset 0 under a new receipt", again)
	}
	if unknown := l.Ack([]string{first[0].Receipt}); len(unknown) != 1 {
		t.Fatal("the expired receipt was accepted")
	}
	if unknown := l.Ack([]string{again[0].Receipt, again[0].Receipt}); len(unknown) != 1 {
		t.Fatalf("acknowledging twice: unknown %v, want the second one", unknown)
	}
}

func TestLedgerRevokeDropsEverything(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	fill(l, []int32{0, 1}, 2)
	got := l.Take(4, t0, time.Minute, true)
	var p0 []string
	for _, x := range got {
		if x.Partition == 0 {
			p0 = append(p0, x.Receipt)
		}
	}
	l.Ack(p0[:1])
	if l.Settling(0) != 1 {
		t.Fatalf("settling = %d, want 1", l.Settling(0))
	}
	commit, ok := l.Revoke(0)
	if !ok || commit != 1 {
		t.Fatalf("Revoke = %d %v, want the unreported commit 1", commit, ok)
	}
	if unknown := l.Ack(p0[1:]); len(unknown) != 1 {
		t.Fatal("a receipt of a revoked partition was accepted")
	}
	if n := l.Add(0, 1, []int64{2}, []int64{2}); n != 0 {
		t.Fatal("records of a revoked partition were added")
	}
	l.Assign(0, 2)
	if n := l.Add(0, 1, []int64{2}, []int64{2}); n != 0 {
		t.Fatal("records of an old epoch were added")
	}
	if n, _ := l.Buffered(); n != 0 {
		t.Fatalf("buffered = %d after revoke, want 0", n)
	}
}

func TestLedgerSignalsArrivals(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	l.Assign(0, 1)
	_, arrived := l.Buffered()
	select {
	case <-arrived:
		t.Fatal("signalled before anything arrived")
	default:
	}
	l.Add(0, 1, []int64{0}, []int64{0})
	select {
	case <-arrived:
	case <-time.After(time.Second):
		t.Fatal("no signal after Add")
	}
}

func TestLedgerConcurrentCallersNeverShareARecord(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	fill(l, []int32{0, 1, 2}, 300)
	var mu sync.Mutex
	seen := map[[2]int64]bool{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				got := l.Take(3, t0, time.Minute, true)
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, x := range got {
					k := [2]int64{int64(x.Partition), x.Offset}
					if seen[k] {
						t.Errorf("record %v served twice", k)
					}
					seen[k] = true
				}
				mu.Unlock()
				l.Ack(receipts(got))
			}
		})
	}
	wg.Wait()
	if len(seen) != 900 {
		t.Fatalf("served %d records, want 900", len(seen))
	}
	c := l.Commits()
	for p := range int32(3) {
		if c[p] != 300 {
			t.Errorf("partition %d commit %d, want 300", p, c[p])
		}
	}
}

func TestLedgerFrozenPartitionsHandOutNothing(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	fill(l, []int32{0, 1}, 2)
	l.Freeze(0)
	got := l.Take(10, t0, time.Minute, true)
	for _, x := range got {
		if x.Partition == 0 {
			t.Fatalf("a frozen partition handed out offset %d", x.Offset)
		}
	}
	if len(got) != 2 {
		t.Fatalf("took %d, want partition 1's two records", len(got))
	}
}

func TestLedgerBoundsWhatACrashWouldServeAgain(t *testing.T) {
	l := ledger.New[int64]("q", 3, signer)
	fill(l, []int32{0}, 10)
	got := l.Take(10, t0, time.Minute, true)
	if len(got) != 3 {
		t.Fatalf("took %d auto-acknowledged records, want the bound 3", len(got))
	}
	l.Ack(receipts(got))
	if more := l.Take(10, t0, time.Minute, true); len(more) != 0 {
		t.Fatalf("took %d more before anything was durably committed", len(more))
	}
	if manual := l.Take(1, t0, time.Minute, false); len(manual) != 1 {
		t.Fatal("manual leases are not bounded: the client acknowledges them")
	}
	c := l.Commits()
	l.Committed(0, c[0])
	if more := l.Take(10, t0, time.Minute, true); len(more) != 3 {
		t.Fatalf("after the commit took %d, want 3 again", len(more))
	}
}

// A record held back by the in-flight bound is waiting for a commit (the
// queue waits for it instead of answering "none"); frozen partitions and
// manual leases are not.
func TestLedgerTellsWhatWaitsForACommit(t *testing.T) {
	l := ledger.New[int64]("q", 2, signer)
	fill(l, []int32{0}, 3)
	if l.WaitsForCommit() {
		t.Fatal("nothing is out yet, nothing waits for a commit")
	}
	l.Ack(receipts(l.Take(10, t0, time.Minute, true)))
	if !l.WaitsForCommit() {
		t.Fatal("the third record waits for the commit of the first two")
	}
	c := l.Commits()
	l.Committed(0, c[0])
	if l.WaitsForCommit() {
		t.Fatal("after the commit nothing waits")
	}
	l.Ack(receipts(l.Take(10, t0, time.Minute, true)))
	if l.WaitsForCommit() {
		t.Fatal("nothing is buffered any more")
	}
	fill(l, []int32{1}, 3)
	l.Take(2, t0, time.Minute, true)
	l.Freeze(1)
	if l.WaitsForCommit() {
		t.Fatal("a frozen partition's records wait for no commit here")
	}
}
