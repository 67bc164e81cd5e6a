package ledger_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/internal/ledger"
)

// A partition whose oldest lease is still open while later records were
// acknowledged hands over its commit point and those records; the next
// owner skips them and moves the commit over them once the lease's record
// is done.
func TestHandoverAndSkip(t *testing.T) {
	old := ledger.New[int64]("q", 0, signer)
	fill(old, []int32{0}, 6)
	leases := old.Take(6, t0, time.Minute, false)
	// 0 stays leased; 1, 2 and 4 are acknowledged; 3 and 5 stay leased.
	if unknown := old.Ack([]string{leases[1].Receipt, leases[2].Receipt, leases[4].Receipt}); len(unknown) > 0 {
		t.Fatal(unknown)
	}
	commit, done, ok := old.Handover(0)
	if !ok || commit != 0 || !slices.Equal(done, []int64{1, 2, 4}) {
		t.Fatalf("Handover = %d, %v, %v; want 0, [1 2 4], true", commit, done, ok)
	}
	meta := ledger.EncodeDone(done, 3000)
	if meta != "kchat-done:1-2,4" {
		t.Fatalf("metadata %q", meta)
	}

	next := ledger.New[int64]("q", 0, signer)
	next.Assign(0, 7)
	next.Skip(0, 7, commit, ledger.DecodeDone(meta, commit))
	next.Add(0, 7, []int64{0, 1, 2, 3, 4, 5}, []int64{0, 1, 2, 3, 4, 5})
	var served []int64
	var first string
	for _, x := range next.Take(10, t0, time.Minute, false) {
		served = append(served, x.Offset)
		if x.Offset == 0 {
			first = x.Receipt
		}
	}
	if !slices.Equal(served, []int64{0, 3, 5}) {
		t.Fatalf("the next owner served %v, want only 0, 3 and 5: the others were acknowledged", served)
	}
	if c := next.Commits(); len(c) != 0 {
		t.Fatalf("commits %v before 0 is done, want none", c)
	}
	next.Ack([]string{first})
	if c := next.Commits(); c[0] != 3 {
		t.Fatalf("commits %v once 0 is done, want partition 0 at 3 (over 1 and 2)", c)
	}
}

func TestSkipMovesTheCommitOverTheHead(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	l.Assign(0, 1)
	l.Skip(0, 1, 10, []int64{10, 11})
	l.Add(0, 1, []int64{10, 11, 12}, []int64{10, 11, 12})
	if c := l.Commits(); c[0] != 12 {
		t.Fatalf("commits %v, want partition 0 at 12: its first two records were acknowledged before", c)
	}
	// A skip for another epoch (the partition changed hands again) is
	// ignored.
	l.Assign(1, 2)
	l.Skip(1, 1, 0, []int64{0})
	l.Add(1, 2, []int64{0}, []int64{0})
	if got := l.Take(5, t0, time.Minute, false); len(got) != 2 {
		t.Fatalf("took %d, want 12 of partition 0 and 0 of partition 1", len(got))
	}
}

func TestEncodeDecodeDone(t *testing.T) {
	offsets := []int64{5, 6, 7, 9, 100, 101}
	meta := ledger.EncodeDone(offsets, 3000)
	if got := ledger.DecodeDone(meta, 0); !slices.Equal(got, offsets) {
		t.Fatalf("round trip %v, want %v (metadata %q)", got, offsets, meta)
	}
	if got := ledger.DecodeDone(meta, 7); !slices.Equal(got, []int64{7, 9, 100, 101}) {
		t.Fatalf("from 7: %v", got)
	}
	// Too long for the bound: what fits is kept, whole ranges only.
	many := make([]int64, 0, 2000)
	for i := range int64(2000) {
		many = append(many, 2*i) // no ranges: every offset its own entry
	}
	meta = ledger.EncodeDone(many, 100)
	if len(meta) > 100 || !strings.HasPrefix(meta, "kchat-done:0,2,4") {
		t.Fatalf("bounded metadata %d bytes: %.40q", len(meta), meta)
	}
	for _, other := range []string{"", "member-1234", "kchat-done:", "kchat-done:x", "kchat-done:9-3", "kchat-done:1-99999999999"} {
		if got := ledger.DecodeDone(other, 0); got != nil {
			t.Errorf("DecodeDone(%q) = %v, want nothing", other, got)
		}
	}
	if ledger.EncodeDone(nil, 3000) != "" {
		t.Error("nothing done encodes to something")
	}
}

// A partition handed over again before its new owner fetched the offsets
// it was handed passes them on, at the commit it got.
func TestHandoverPassesOnWhatWasNotFetched(t *testing.T) {
	l := ledger.New[int64]("q", 0, signer)
	l.Assign(2, 1)
	l.Skip(2, 1, 40, []int64{41, 42, 45})
	commit, done, ok := l.Handover(2)
	if !ok || commit != 40 || !slices.Equal(done, []int64{41, 42, 45}) {
		t.Fatalf("Handover = %d, %v, %v; want 40, [41 42 45], true", commit, done, ok)
	}
	l.Assign(3, 1)
	if _, _, ok := l.Handover(3); ok {
		t.Fatal("a partition that holds nothing has something to hand over")
	}
}
