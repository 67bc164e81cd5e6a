package history

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestCleanRunKfake(t *testing.T) {
	testCleanRun(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationCleanRun(t *testing.T) {
	prefix := testenv.Prefix("it-history")
	testCleanRun(t, kafkatest.Real(t, prefix), prefix)
}

// testCleanRun produces from concurrent clients, plainly and in
// transactions (one aborted), reads both topics back to their end offsets
// at read_committed, has a group consumer read them too, and checks a clean
// history: nothing lost, unexpected, duplicated, reordered or misplaced.
func testCleanRun(t *testing.T, brokers []string, prefix string) {
	plain, txn := prefix+"plain", prefix+"txn"
	createTopics(t, brokers, plain, txn)
	h := New("clean run")

	const clients, perClient = 8, 50
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			cl := newClient(t, brokers)
			for i := range perClient {
				produce(t, h, cl, plain, fmt.Sprintf("s%d", c), fmt.Sprintf("p-%d-%d", c, i))
			}
		})
	}
	wg.Go(func() { produceTransactions(t, h, brokers, txn) })
	wg.Wait()

	recs := Reader{Brokers: brokers, Committed: true}.Read(t, plain, txn)
	rep := Check(h, recs)
	t.Log(rep)
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	const committed, aborted = 5 * 10, 5
	if want := clients*perClient + committed; rep.OK != want || rep.Records != want || rep.Fail != aborted || rep.Unknown != 0 {
		t.Fatalf("got %s; want %d ok and read, %d failed (aborted), 0 unknown", rep, want, aborted)
	}

	var d Deliveries
	consume(t, brokers, &d, len(recs), plain, txn)
	crep := CheckConsumer("clean run, group consumer", recs, d.List(), 0)
	t.Log(crep)
	if err := crep.Err(); err != nil || crep.Duplicated != 0 {
		t.Fatalf("%v (duplicated %d)", err, crep.Duplicated)
	}
}

func createTopics(t *testing.T, brokers []string, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.CreateTopics(ctx, 3, 1, nil, topics...)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("create %v: %v", topics, err)
	}
}

func newClient(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func record(topic, key, id string) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(id), Headers: []kgo.RecordHeader{{Key: kafka.HeaderMessageID, Value: []byte(id)}}}
}

// produce sends one record and records the operation in h.
func produce(t *testing.T, h *History, cl *kgo.Client, topic, key, id string) {
	op := h.Invoke(Send{ID: id, Key: key, Payload: id})
	r, err := cl.ProduceSync(context.Background(), record(topic, key, id)).First()
	if err != nil {
		h.Unknown(op, err.Error())
		t.Errorf("produce %s: %v", id, err)
		return
	}
	h.OKAt(op, Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset})
}

// produceTransactions writes five committed transactions of ten records
// and one aborted of five: acknowledged only when committed, failed for
// certain when aborted.
func produceTransactions(t *testing.T, h *History, brokers []string, topic string) {
	cl := newClient(t, brokers, kgo.TransactionalID(topic+"-producer"))
	for n := range 6 {
		commit := n < 5
		size := 10
		if !commit {
			size = 5
		}
		if err := cl.BeginTransaction(); err != nil {
			t.Error(err)
			return
		}
		type sent struct {
			op  Handle
			rec *kgo.Record
		}
		var batch []sent
		for i := range size {
			id := fmt.Sprintf("t-%d-%d", n, i)
			op := h.Invoke(Send{ID: id, Key: fmt.Sprintf("t%d", i%3), Payload: id})
			rec := record(topic, fmt.Sprintf("t%d", i%3), id)
			batch = append(batch, sent{op, rec})
			cl.Produce(context.Background(), rec, nil)
		}
		flushErr := cl.Flush(context.Background())
		end := kgo.TryCommit
		if !commit {
			end = kgo.TryAbort
		}
		if err := cl.EndTransaction(context.Background(), end); err != nil || flushErr != nil {
			for _, s := range batch {
				h.Unknown(s.op, fmt.Sprint(flushErr, err))
			}
			t.Errorf("transaction %d: flush %v, end %v", n, flushErr, err)
			continue
		}
		for _, s := range batch {
			if commit {
				h.OKAt(s.op, Position{Topic: s.rec.Topic, Partition: s.rec.Partition, Offset: s.rec.Offset})
			} else {
				h.Fail(s.op, "aborted")
			}
		}
	}
}

// consume reads topics with a group consumer until it was handed n
// distinct records (or a minute passed), recording each delivery.
func consume(t *testing.T, brokers []string, d *Deliveries, n int, topics ...string) {
	cl := newClient(t, brokers, kgo.ConsumeTopics(topics...), kgo.ConsumerGroup(topics[0]+"-group"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	distinct := map[Position]bool{}
	for len(distinct) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			p := Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
			distinct[p] = true
			d.Add(Delivery{Client: "c1", ID: HeaderID(r), Position: p})
		})
	}
}
