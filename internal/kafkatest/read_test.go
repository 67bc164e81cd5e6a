package kafkatest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const topic = "t"

func client(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, values ...string) {
	t.Helper()
	for _, v := range values {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
}

// inTxn produces values in one transaction of cl and ends it with commit
// (false: abort), or leaves it open when end is nil.
func inTxn(t *testing.T, cl *kgo.Client, end *kgo.TransactionEndTry, values ...string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, cl, values...)
	if end == nil {
		return
	}
	if err := cl.EndTransaction(context.Background(), *end); err != nil {
		t.Fatal(err)
	}
}

var commit, abort = kgo.TryCommit, kgo.TryAbort

func values(recs []*kgo.Record) string {
	var vs []string
	for _, r := range recs {
		vs = append(vs, string(r.Value))
	}
	return strings.Join(vs, " ")
}

func read(t *testing.T, brokers []string, opts ReadOptions, timeout time.Duration) ([]*kgo.Record, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return ReadToEnd(ctx, brokers, opts, topic)
}

// A topic that ends with a transaction's commit or abort marker is read to
// its end at once: the marker is an offset the reader must pass, and
// franz-go drops control records unless asked to keep them.
func TestReadToEndPassesTransactionMarkers(t *testing.T) {
	brokers := Fake(t, kfake.SeedTopics(1, topic))
	produce(t, client(t, brokers), "a", "b")
	txn := client(t, brokers, kgo.TransactionalID("txn"))
	inTxn(t, txn, &commit, "c", "d")
	inTxn(t, txn, &abort, "x")

	recs, err := read(t, brokers, ReadOptions{Committed: true}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(recs); got != "a b c d" {
		t.Fatalf("read_committed read %q, want %q", got, "a b c d")
	}
	recs, err = read(t, brokers, ReadOptions{}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(recs); got != "a b c d x" {
		t.Fatalf("read_uncommitted read %q, want %q (the aborted record too)", got, "a b c d x")
	}
}

// Records of a transaction open when the end offsets are measured are
// below those ends: the read waits for the transaction to end (here it
// commits once the reader measured) instead of stopping at the last stable
// offset or after a quiet while.
func TestReadToEndWaitsForATransactionOpenAtTheEnd(t *testing.T) {
	brokers := Fake(t, kfake.SeedTopics(1, topic))
	produce(t, client(t, brokers), "a")
	txn := client(t, brokers, kgo.TransactionalID("txn"))
	inTxn(t, txn, nil, "b", "c")

	var once sync.Once
	opts := ReadOptions{Committed: true, afterMeasure: func() {
		once.Do(func() {
			if err := txn.EndTransaction(context.Background(), kgo.TryCommit); err != nil {
				t.Error(err)
			}
		})
	}}
	recs, err := read(t, brokers, opts, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(recs); got != "a b c" {
		t.Fatalf("read %q, want %q", got, "a b c")
	}
}

// A read that cannot reach its end offsets fails and says why; it never
// returns what it got so far as if it were everything.
func TestReadToEndFailsWhenItCannotReachTheEnd(t *testing.T) {
	brokers := Fake(t, kfake.SeedTopics(1, topic))
	produce(t, client(t, brokers), "a")
	inTxn(t, client(t, brokers, kgo.TransactionalID("txn")), nil, "b")

	recs, err := read(t, brokers, ReadOptions{Committed: true}, 2*time.Second)
	if err == nil {
		t.Fatalf("read %q with a transaction open below the end offsets, want an error", values(recs))
	}
	for _, want := range []string{"t[0] at 1 of 2", "transaction is open"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// With Want, the read waits for records written after it was called, then
// reads to the end offsets measured once they are there: the extra record
// written with them is read too.
func TestReadToEndWaitsForWantThenReadsToTheEnd(t *testing.T) {
	brokers := Fake(t, kfake.SeedTopics(3, topic))
	cl := client(t, brokers)
	produce(t, cl, "a")
	var once sync.Once
	opts := ReadOptions{Want: 3, afterMeasure: func() {
		once.Do(func() { produce(t, cl, "b", "c", "extra") })
	}}
	recs, err := read(t, brokers, opts, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("read %q, want a b c extra in some order", values(recs))
	}
	for i := 1; i < len(recs); i++ {
		if p, q := recs[i-1], recs[i]; p.Partition > q.Partition || (p.Partition == q.Partition && p.Offset >= q.Offset) {
			t.Fatalf("records not ordered by partition and offset: %d@%d before %d@%d", p.Partition, p.Offset, q.Partition, q.Offset)
		}
	}
}

// Fewer records than wanted by the deadline is an error naming the count.
func TestReadToEndFailsWithFewerThanWant(t *testing.T) {
	brokers := Fake(t, kfake.SeedTopics(1, topic))
	produce(t, client(t, brokers), "a")
	_, err := read(t, brokers, ReadOptions{Want: 2}, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("1 records in %s, want at least 2", topic)) {
		t.Fatalf("got %v, want an error saying 1 of 2 records", err)
	}
}

// A topic that does not exist holds no record.
func TestReadToEndOfAMissingTopic(t *testing.T) {
	recs, err := read(t, Fake(t), ReadOptions{Committed: true}, 10*time.Second)
	if err != nil || len(recs) != 0 {
		t.Fatalf("got %d records, %v; want none and no error", len(recs), err)
	}
}
