package ledger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/internal/ledger"
	"github.com/kchat/kchat/domain"
)

var (
	testKey = []byte("0123456789abcdef0123456789abcdef")
	signer  = mustSigner("g", testKey)
)

func mustSigner(group string, key []byte) *ledger.Signer {
	s, err := ledger.NewSigner(group, key)
	if err != nil {
		panic(err)
	}
	return s
}

// issued returns one receipt a "query" ledger signed by s issued for
// partition 3, offset 0.
func issued(t *testing.T, s *ledger.Signer) string {
	t.Helper()
	l := ledger.New[int64]("query", 0, s)
	fill(l, []int32{3}, 1)
	return l.Take(1, t0, time.Minute, false)[0].Receipt
}

func TestVerifyReadsWhatTakeIssues(t *testing.T) {
	for _, tag := range []string{"query", "prompt", "answer", "kchat.it-7.answer"} {
		l := ledger.New[int64](tag, 0, signer)
		fill(l, []int32{0, 1, 2147483647}, 200) // seq runs past one base-36 digit
		l.Assign(5, 1)
		l.Add(5, 1, []int64{1 << 50}, []int64{0})
		got := l.Take(1000, t0, time.Minute, false)
		if len(got) != 601 {
			t.Fatalf("took %d, want 601", len(got))
		}
		for _, x := range got {
			r, err := signer.Verify(x.Receipt)
			want := ledger.Receipt{Tag: tag, Partition: x.Partition, Offset: x.Offset}
			if err != nil || r != want {
				t.Fatalf("Verify(%q) = %+v, %v; want %+v", x.Receipt, r, err, want)
			}
			if !l.Owns(x.Receipt) {
				t.Fatalf("the ledger does not own its receipt %q", x.Receipt)
			}
		}
	}
}

func TestVerifyRejectsMalformed(t *testing.T) {
	good := issued(t, signer)
	f := strings.Split(strings.TrimPrefix(good, "query~"), ".")
	instance, seq, keyID, mac := f[0], f[3], f[4], f[5]
	with := func(p, off, s string) string {
		return "query~" + instance + "." + p + "." + off + "." + s + "." + keyID + "." + mac
	}
	tests := []struct{ name, give string }{
		{"empty", ""},
		{"no instance", "query"},
		{"empty tag", strings.TrimPrefix(good, "query")},
		{"short instance", strings.Replace(good, instance, instance[:7], 1)},
		{"long instance", strings.Replace(good, instance, instance+"0", 1)},
		{"upper-case instance", strings.Replace(good, instance, strings.ToUpper("abcdef12"), 1)},
		{"instance not hex", strings.Replace(good, instance, "0123abcg", 1)},
		{"two tildes", strings.Replace(good, "~", "~~", 1)},
		{"tilde in tag", "a~" + good},
		{"space in tag", "a " + good},
		{"no mac", strings.TrimSuffix(good, "."+mac)},
		{"seven fields", good + ".1"},
		{"empty partition", with("", "0", seq)},
		{"negative partition", with("-3", "0", seq)},
		{"signed partition", with("+3", "0", seq)},
		{"partition past int32", with("2147483648", "0", seq)},
		{"negative offset", with("3", "-1", seq)},
		{"offset past int64", with("3", "9223372036854775808", seq)},
		{"empty seq", with("3", "0", "")},
		{"upper-case seq", with("3", "0", "Z")},
		{"seq past uint64", with("3", "0", "zzzzzzzzzzzzz")},
		{"short key id", strings.Replace(good, "."+keyID+".", "."+keyID[:7]+".", 1)},
		{"upper-case mac", strings.Replace(good, mac, strings.ToUpper(mac), 1)},
		{"short mac", good[:len(good)-1]},
		{"long mac", good + "0"},
		{"trailing space", good + " "},
		{"leading space", " " + good},
		{"trailing newline", good + "\n"},
	}
	if _, err := signer.Verify(good); err != nil {
		t.Fatalf("Verify rejects the issued %q: %v", good, err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := signer.Verify(tt.give); !errors.Is(err, ledger.ErrMalformed) {
				t.Errorf("Verify(%q) = %+v, %v; want ErrMalformed", tt.give, r, err)
			}
		})
	}
}

// TestVerifyRefusesAlteredReceipts changes one field of an issued receipt
// at a time, the mac left as it was: each must fail verification, and the
// ledger must not acknowledge it.
func TestVerifyRefusesAlteredReceipts(t *testing.T) {
	l := ledger.New[int64]("query", 0, signer)
	fill(l, []int32{3}, 2)
	good := l.Take(1, t0, time.Minute, false)[0].Receipt
	f := strings.Split(good, ".")
	alter := func(i int, v string) string {
		g := append([]string(nil), f...)
		g[i] = v
		return strings.Join(g, ".")
	}
	tests := []struct{ name, give string }{
		{"type swapped", strings.Replace(good, "query~", "answer~", 1)},
		{"other instance", "query~deadbeef." + strings.SplitN(good, ".", 2)[1]},
		{"other partition", alter(1, "4")},
		{"other offset", alter(2, "1")},
		{"other seq", alter(3, "2")},
		{"mac changed", alter(5, strings.Repeat("0", 32))},
		{"made up", "query~deadbeef.0.0.1." + signer.KeyID() + "." + strings.Repeat("ab", 16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := signer.Verify(tt.give); !errors.Is(err, ledger.ErrForged) {
				t.Errorf("Verify(%q) = %+v, %v; want ErrForged", tt.give, r, err)
			}
			if unknown := l.Ack([]string{tt.give}); len(unknown) != 1 {
				t.Errorf("the ledger acknowledged %q", tt.give)
			}
		})
	}
	if c := l.Commits(); len(c) != 0 {
		t.Fatalf("altered receipts moved the commit point: %v", c)
	}
	if unknown := l.Ack([]string{good}); len(unknown) != 0 {
		t.Fatalf("the issued receipt is unknown after altered ones: %v", unknown)
	}
}

func TestVerifyBindsTheGroup(t *testing.T) {
	receipt := issued(t, signer)
	other := mustSigner("h", testKey)
	if r, err := other.Verify(receipt); !errors.Is(err, ledger.ErrForged) {
		t.Fatalf("group h verified group g's receipt: %+v, %v", r, err)
	}
}

func TestVerifyNamesAnotherKey(t *testing.T) {
	otherKey := []byte("fedcba9876543210fedcba9876543210")
	receipt := issued(t, mustSigner("g", otherKey))
	_, err := signer.Verify(receipt)
	var ok *ledger.OtherKeyError
	if !errors.As(err, &ok) || ok.KeyID != domain.KeyID(otherKey) || ok.Ours != domain.KeyID(testKey) {
		t.Fatalf("Verify(receipt of another key) = %v; want *OtherKeyError naming both key ids", err)
	}
	if strings.Contains(err.Error(), string(testKey)) || strings.Contains(err.Error(), string(otherKey)) {
		t.Fatalf("the error shows a key: %v", err)
	}
}

func TestNewSignerRefusesShortKeys(t *testing.T) {
	short := []byte("0123456789abcdef0123456789abcde") // 31 bytes
	_, err := ledger.NewSigner("g", short)
	if err == nil || strings.Contains(err.Error(), string(short)) {
		t.Fatalf("NewSigner(31 bytes) = %v; want an error that does not show the key", err)
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
			ledger.New[int](tag, 0, signer)
		}()
	}
}
