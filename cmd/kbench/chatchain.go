package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
)

// chatChain is the baseline: queries produced with kchat's producer
// options, two consume-transform-produce hops that copy the record
// (transactional like kchat's stages, or plain), and a read_committed
// reader like the gateway's answer feed.
func (b *bench) chatChain(ctx context.Context, transactional bool) (ChatRun, error) {
	name := "chainplain"
	if transactional {
		name = "chaintxn"
	}
	prefix := b.prefix(name)
	q, p, a := prefix+"query", prefix+"prompt", prefix+"answer"
	if err := createTopics(ctx, b.brokers, q, p, a); err != nil {
		return ChatRun{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, hop := range [][2]string{{q, p}, {p, a}} {
		h, err := newHop(b.brokers, prefix, hop[0], hop[1], transactional)
		if err != nil {
			return ChatRun{}, err
		}
		wg.Go(func() { h.run(runCtx) })
	}
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.ClientID = b.brokers, "kbench-chain"
	producer, err := kafka.NewClient(kcfg, b.quietLog, nil)
	if err != nil {
		return ChatRun{}, err
	}
	defer producer.Close()
	reader, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ConsumeTopics(a),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return ChatRun{}, err
	}
	defer reader.Close()

	rt := &roundTrips{lat: newLatencies()}
	var mu sync.Mutex
	waiting := map[string]time.Time{}
	pending := func() int { mu.Lock(); defer mu.Unlock(); return len(waiting) }
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	warmed := make(chan struct{}, 1)
	wg.Go(func() {
		for readCtx.Err() == nil {
			reader.PollFetches(readCtx).EachRecord(func(r *kgo.Record) {
				id := string(r.Key)
				mu.Lock()
				due, ok := waiting[id]
				delete(waiting, id)
				mu.Unlock()
				switch {
				case id == "warm":
					select {
					case warmed <- struct{}{}:
					default:
					}
				case ok:
					rt.answer(due)
				}
			})
		}
	})
	mode := map[bool]string{true: "transactional", false: "plain"}[transactional]
	// One record through both hops first, as for kchat.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: q, Key: []byte("warm"), Value: []byte("warm")}).FirstErr(); err != nil {
			return ChatRun{}, err
		}
		select {
		case <-warmed:
		case <-time.After(2 * time.Second):
			if time.Now().Before(deadline) {
				continue
			}
			return ChatRun{}, fmt.Errorf("chain (%s): no record came through within 60s", mode)
		}
		break
	}
	text := questions[0]
	start := time.Now().Add(50 * time.Millisecond)
	rt.measureFrom = start.Add(b.p.chatWarmup)
	end := rt.measureFrom.Add(b.p.chatDuration)
	cpu := b.cpu()
	var cpu0 time.Duration
	go func() { time.Sleep(time.Until(rt.measureFrom)); cpu0 = cpu.read() }()
	b.logf("chat: chain (%s), %d records/s for %s", mode, b.p.chatSessions, b.p.chatWarmup+b.p.chatDuration)
	schedule(ctx, b.p.chatSessions, start, end, func(s, seq int, due time.Time) {
		// The same envelope a gateway publishes, keyed by its id here so
		// the reader can match it.
		msg := domain.Message{MessageID: domain.NewMessageID(), SessionID: fmt.Sprintf("s%d", s), UserID: "kbench",
			Type: domain.TypeQuery, Text: text, CreatedAt: time.Now()}
		rec, err := kafka.NewRecord(q, msg)
		if err != nil {
			rt.fail(err)
			return
		}
		rec.Key = []byte(msg.MessageID)
		mu.Lock()
		waiting[msg.MessageID] = due
		mu.Unlock()
		rt.sent.Add(1)
		if err := producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
			rt.fail(err)
		}
	})
	for wait := time.Now().Add(15 * time.Second); pending() > 0 && time.Now().Before(wait); {
		time.Sleep(50 * time.Millisecond)
	}
	out := rt.result(cpu.read() - cpu0)
	stopReading()
	cancel()
	out.Hops, err = hopTimes(ctx, b.brokers, prefix)
	return out, err
}

// hop copies records from one topic to the next.
type hop struct {
	in, out string
	sess    *kgo.GroupTransactSession
	cl      *kgo.Client
}

func newHop(brokers []string, prefix, in, out string, transactional bool) (*hop, error) {
	h := &hop{in: in, out: out}
	// The options of kchat's answerer stages (adapters/kafka/stage.go).
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(prefix + "hop-" + in),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.MaxConcurrentFetches(0), // a fetch only when the hop polls
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30 * time.Second),
	}
	var err error
	if transactional {
		opts = append(opts, kgo.TransactionalID(prefix+"hop-"+in), kgo.TransactionTimeout(time.Minute))
		h.sess, err = kgo.NewGroupTransactSession(opts...)
	} else {
		h.cl, err = kgo.NewClient(append(opts, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableAutoCommit())...)
	}
	return h, err
}

func (h *hop) run(ctx context.Context) {
	if h.sess != nil {
		defer h.sess.Close()
	} else {
		defer h.cl.Close()
	}
	for ctx.Err() == nil {
		var recs []*kgo.Record
		if h.sess != nil {
			recs = h.sess.PollRecords(ctx, 100).Records()
		} else {
			recs = h.cl.PollRecords(ctx, 100).Records()
		}
		if len(recs) == 0 {
			continue
		}
		if h.sess != nil {
			h.transact(ctx, recs)
		} else {
			h.copy(ctx, recs)
		}
	}
}

// transact copies a batch in one transaction, as kchat's stages do.
func (h *hop) transact(ctx context.Context, recs []*kgo.Record) {
	if err := h.sess.Begin(); err != nil {
		return
	}
	for _, r := range recs {
		h.sess.Produce(ctx, h.echo(r), nil)
	}
	_, _ = h.sess.End(ctx, kgo.TryCommit)
}

// copy produces a batch, waits for it, and commits the input offsets.
func (h *hop) copy(ctx context.Context, recs []*kgo.Record) {
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		h.cl.Produce(ctx, h.echo(r), func(*kgo.Record, error) { wg.Done() })
	}
	wg.Wait()
	_ = h.cl.CommitRecords(ctx, recs...)
}

func (h *hop) echo(r *kgo.Record) *kgo.Record {
	return &kgo.Record{Topic: h.out, Key: r.Key, Value: r.Value, Headers: r.Headers}
}
