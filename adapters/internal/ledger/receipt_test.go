package ledger_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/internal/ledger"
)

func TestParseReceiptReadsWhatTakeIssues(t *testing.T) {
	for _, tag := range []string{"query", "prompt", "answer", "kchat.it-7.answer"} {
		l := ledger.New[int64](tag, 0)
		fill(l, []int32{0, 1, 2147483647}, 200) // seq runs past one base-36 digit
		l.Assign(5, 1)
		l.Add(5, 1, []int64{1 << 50}, []int64{0})
		got := l.Take(1000, t0, time.Minute, false)
		if len(got) != 601 {
			t.Fatalf("took %d, want 601", len(got))
		}
		for _, x := range got {
			r, ok := ledger.ParseReceipt(x.Receipt)
			want := ledger.Receipt{Tag: tag, Partition: x.Partition, Offset: x.Offset}
			if !ok || r != want {
				t.Fatalf("ParseReceipt(%q) = %+v, %v; want %+v", x.Receipt, r, ok, want)
			}
			if !l.Owns(x.Receipt) {
				t.Fatalf("the ledger does not own its receipt %q", x.Receipt)
			}
		}
	}
}

func TestParseReceiptRejectsMalformed(t *testing.T) {
	l := ledger.New[int64]("query", 0)
	fill(l, []int32{3}, 1)
	issued := l.Take(1, t0, time.Minute, false)[0].Receipt
	instance := strings.Split(strings.TrimPrefix(issued, "query~"), ".")[0]
	tests := []struct{ name, give string }{
		{"empty", ""},
		{"no instance", "query"},
		{"empty tag", "~" + instance + ".3.0.1"},
		{"short instance", "query~" + instance[:7] + ".3.0.1"},
		{"long instance", "query~" + instance + "0.3.0.1"},
		{"upper-case instance", "query~0123ABCD.3.0.1"},
		{"instance not hex", "query~0123abcg.3.0.1"},
		{"two tildes", "query~~" + instance + ".3.0.1"},
		{"tilde in tag", "a~query~" + instance + ".3.0.1"},
		{"space in tag", "a query~" + instance + ".3.0.1"},
		{"three fields", "query~" + instance + ".3.0"},
		{"five fields", issued + ".1"},
		{"empty partition", "query~" + instance + "..0.1"},
		{"negative partition", "query~" + instance + ".-3.0.1"},
		{"signed partition", "query~" + instance + ".+3.0.1"},
		{"partition past int32", "query~" + instance + ".2147483648.0.1"},
		{"negative offset", "query~" + instance + ".3.-1.1"},
		{"offset past int64", "query~" + instance + ".3.9223372036854775808.1"},
		{"empty seq", "query~" + instance + ".3.0."},
		{"upper-case seq", "query~" + instance + ".3.0.Z"},
		{"seq past uint64", "query~" + instance + ".3.0.zzzzzzzzzzzzz"},
		{"trailing space", issued + " "},
		{"leading space", " " + issued},
		{"trailing newline", issued + "\n"},
	}
	if _, ok := ledger.ParseReceipt(issued); !ok {
		t.Fatalf("ParseReceipt rejects the issued %q", issued)
	}
	var all []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, ok := ledger.ParseReceipt(tt.give); ok {
				t.Errorf("ParseReceipt(%q) = %+v, want rejected", tt.give, r)
			}
		})
		all = append(all, tt.give)
	}
	if unknown := l.Ack(all); len(unknown) != len(all) {
		t.Errorf("Ack accepted %d malformed receipts", len(all)-len(unknown))
	}
}

func TestForgedReceiptsParseButAreNotOwned(t *testing.T) {
	l := ledger.New[int64]("query", 0)
	fill(l, []int32{0}, 1)
	issued := l.Take(1, t0, time.Minute, false)[0].Receipt
	// Well formed, but from no ledger here: another instance, and this
	// instance's record under a seq it never issued.
	for _, forged := range []string{"query~deadbeef.0.0.1", strings.TrimSuffix(issued, ".1") + ".2"} {
		if forged == issued {
			t.Fatalf("forged receipt %q equals the issued one", forged)
		}
		r, ok := ledger.ParseReceipt(forged)
		if !ok || r != (ledger.Receipt{Tag: "query", Partition: 0, Offset: 0}) {
			t.Errorf("ParseReceipt(%q) = %+v, %v; want query/0/0", forged, r, ok)
		}
		if unknown := l.Ack([]string{forged}); len(unknown) != 1 {
			t.Errorf("Ack accepted the forged receipt %q", forged)
		}
	}
	if c := l.Commits(); len(c) != 0 {
		t.Fatalf("forged receipts moved the commit point: %v", c)
	}
	if unknown := l.Ack([]string{issued}); len(unknown) != 0 {
		t.Fatalf("the issued receipt is unknown after forged ones: %v", unknown)
	}
}

func TestNewRefusesTagsReceiptsCannotCarry(t *testing.T) {
	for _, tag := range []string{"", "a~b", "a b", "query\n"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%q) did not panic", tag)
				}
			}()
			ledger.New[int](tag, 0)
		}()
	}
}
