package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
)

// ChatResult holds the chat round-trip scenario's raw figures.
type ChatResult struct {
	Sessions int     `json:"sessions"`
	Rate     float64 `json:"queries_per_second"`
	Kchat    ChatRun `json:"kchat"`
	// Chain is the baseline: the same three hops with echo transforms, as
	// transactional consume-transform-produce like kchat's stages.
	Chain ChatRun `json:"chain_transactional"`
	// Plain is the same chain without transactions (at-least-once): what
	// Kafka allows when exactly-once is not asked for. For information.
	Plain ChatRun `json:"chain_plain"`
}

// ChatRun is one open-loop round-trip run.
type ChatRun struct {
	Sent     int64       `json:"sent"`
	Answered int64       `json:"answered"`
	Errors   int64       `json:"errors"`
	FirstErr string      `json:"first_error,omitempty"`
	CPUPerOp float64     `json:"cpu_us_per_op"`
	Latency  Percentiles `json:"latency"`
	Hops     Hops        `json:"hops"`
}

// questions are asked in turn; the knowledge base can answer them.
var questions = []string{
	"How do I run kchat?",
	"What does the consumer service do?",
	"How are answers delivered to my socket?",
	"Which Kafka topics does kchat use?",
	"How do I run the tests?",
}

// roundTrips tracks queries in flight and the latencies of the answers.
type roundTrips struct {
	measureFrom time.Time
	lat         *latencies
	sent        atomic.Int64
	answered    atomic.Int64
	errs        atomic.Int64
	firstErr    atomic.Value
}

func (r *roundTrips) fail(err error) {
	r.errs.Add(1)
	r.firstErr.CompareAndSwap(nil, err.Error())
}

func (r *roundTrips) answer(due time.Time) {
	if !due.Before(r.measureFrom) {
		r.answered.Add(1)
		r.lat.record(time.Since(due))
	}
}

func (r *roundTrips) result(cpuUsed time.Duration) ChatRun {
	c := ChatRun{Sent: r.sent.Load(), Answered: r.answered.Load(), Errors: r.errs.Load(), Latency: r.lat.percentiles()}
	if c.Answered > 0 {
		c.CPUPerOp = cpuUsed.Seconds() * 1e6 / float64(c.Answered)
	}
	if e, ok := r.firstErr.Load().(string); ok {
		c.FirstErr = e
	}
	return c
}

// schedule runs send for each of sessions at 1 query per second each,
// phases spread over the second, from start until end.
func schedule(ctx context.Context, sessions int, start, end time.Time, send func(session int, seq int, due time.Time)) {
	var wg sync.WaitGroup
	for s := range sessions {
		phase := time.Duration(s) * time.Second / time.Duration(sessions)
		wg.Go(func() {
			seq := 0
			for due := start.Add(phase); due.Before(end) && ctx.Err() == nil; due = due.Add(time.Second) {
				time.Sleep(time.Until(due))
				send(s, seq, due)
				seq++
			}
		})
	}
	wg.Wait()
}

// runChat measures a question's round trip over WebSocket through the
// gateway, Kafka, both answerer stages and back, against the three-hop
// franz-go chain.
func (b *bench) runChat(ctx context.Context) (*ChatResult, error) {
	res := &ChatResult{Sessions: b.p.chatSessions, Rate: float64(b.p.chatSessions)}
	if !b.cfg.Short {
		// A fresh broker compiles its transaction paths (JIT) under the
		// first transactional load; a discarded chain run takes that cost,
		// so it falls on neither side.
		saved := b.p
		b.p.chatWarmup, b.p.chatDuration = 5*time.Second, 10*time.Second
		b.logf("chat: warming the broker's transaction paths")
		_, err := b.chatChain(ctx, true)
		b.p = saved
		if err != nil {
			return nil, err
		}
	}
	var err error
	if res.Kchat, err = b.chatKchat(ctx); err != nil {
		return nil, err
	}
	if res.Chain, err = b.chatChain(ctx, true); err != nil {
		return nil, err
	}
	if res.Plain, err = b.chatChain(ctx, false); err != nil {
		return nil, err
	}
	return res, nil
}

func (b *bench) chatKchat(ctx context.Context) (ChatRun, error) {
	prefix := b.prefix("chat")
	env := append(b.serviceEnv(prefix), "KCHAT_QUERY_PUBLISHER=kafka", "KCHAT_AUTH=none", "KCHAT_GENERATOR=extractive")
	answerer, err := b.bins.start(ctx, b.logDir, "answerer", "KCHAT_ANSWERER_ADDR", env...)
	if err != nil {
		return ChatRun{}, err
	}
	defer func() { _ = answerer.stop() }()
	gateway, err := b.bins.start(ctx, b.logDir, "gateway", "KCHAT_GATEWAY_ADDR", env...)
	if err != nil {
		return ChatRun{}, err
	}
	defer func() { _ = gateway.stop() }()
	cpu := b.cpu(gateway.pid(), answerer.pid())

	b.logf("chat: connecting %d sessions", b.p.chatSessions)
	wsURL := "ws" + strings.TrimPrefix(gateway.url, "http") + "/ws"
	conns := make([]*chatConn, b.p.chatSessions)
	for i := range conns {
		if conns[i], err = dialChat(ctx, wsURL, i); err != nil {
			return ChatRun{}, err
		}
	}
	defer func() {
		for _, c := range conns {
			_ = c.ws.Close()
		}
	}()
	// One question through the whole pipeline first: the stages have
	// joined their groups and the feed reads.
	if err := conns[0].warm(ctx); err != nil {
		return ChatRun{}, fmt.Errorf("first answer: %w", err)
	}
	start := time.Now().Add(50 * time.Millisecond)
	rt := &roundTrips{measureFrom: start.Add(b.p.chatWarmup), lat: newLatencies()}
	end := rt.measureFrom.Add(b.p.chatDuration)
	for _, c := range conns {
		go c.read(rt)
	}
	b.logf("chat: kchat, %d queries/s for %s", b.p.chatSessions, b.p.chatWarmup+b.p.chatDuration)
	var cpu0 time.Duration
	go func() { time.Sleep(time.Until(rt.measureFrom)); cpu0 = cpu.read() }()
	waitGateway := b.bins.profile(gateway, "gateway-chat", b.p.chatWarmup+b.p.chatDuration)
	waitAnswerer := b.bins.profile(answerer, "answerer-chat", b.p.chatWarmup+b.p.chatDuration)
	defer waitGateway()
	defer waitAnswerer()
	schedule(ctx, len(conns), start, end, func(s, seq int, due time.Time) {
		conns[s].send(rt, seq, questions[(s+seq)%len(questions)], due)
	})
	waitAnswers(conns)
	out := rt.result(cpu.read() - cpu0)
	out.Hops, err = hopTimes(ctx, b.brokers, prefix)
	return out, err
}

// chatConn is one WebSocket session of the load generator.
type chatConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex // one writer at a time

	mu    sync.Mutex
	byID  map[string]time.Time // due times of queries not acked yet
	byMsg map[string]time.Time // due times of acked queries, by message_id
	early map[string]bool      // answers that came before their ack
}

func dialChat(ctx context.Context, wsURL string, i int) (*chatConn, error) {
	ws, err := dialSession(ctx, fmt.Sprintf("%s?user_id=kbench-%d", wsURL, i), i, true)
	if err != nil {
		return nil, fmt.Errorf("websocket %d: %w", i, err)
	}
	return &chatConn{ws: ws, byID: map[string]time.Time{}, byMsg: map[string]time.Time{}, early: map[string]bool{}}, nil
}

type serverFrame struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	MessageID string `json:"message_id"`
	ReplyTo   string `json:"reply_to"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// warm asks one question and waits for its answer.
func (c *chatConn) warm(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	_ = c.ws.SetReadDeadline(deadline)
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	if err := c.ws.WriteJSON(map[string]string{"type": "query", "id": "warm", "message": questions[0]}); err != nil {
		return err
	}
	for ctx.Err() == nil {
		var f serverFrame
		if err := c.ws.ReadJSON(&f); err != nil {
			return err
		}
		switch f.Type {
		case "answer":
			return nil
		case "error":
			return fmt.Errorf("%s: %s", f.Code, f.Message)
		}
	}
	return ctx.Err()
}

func (c *chatConn) send(rt *roundTrips, seq int, text string, due time.Time) {
	id := strconv.Itoa(seq)
	c.mu.Lock()
	c.byID[id] = due
	c.mu.Unlock()
	rt.sent.Add(1)
	c.wmu.Lock()
	err := c.ws.WriteJSON(map[string]string{"type": "query", "id": id, "message": text})
	c.wmu.Unlock()
	if err != nil {
		rt.fail(err)
	}
}

// read matches acks and answers to the queries' due times until the
// socket closes.
func (c *chatConn) read(rt *roundTrips) {
	for {
		var f serverFrame
		if err := c.ws.ReadJSON(&f); err != nil {
			return
		}
		c.mu.Lock()
		switch f.Type {
		case "ack":
			due := c.byID[f.ID]
			delete(c.byID, f.ID)
			if c.early[f.MessageID] {
				delete(c.early, f.MessageID)
				rt.answer(due)
			} else {
				c.byMsg[f.MessageID] = due
			}
		case "answer":
			if due, ok := c.byMsg[f.ReplyTo]; ok {
				delete(c.byMsg, f.ReplyTo)
				rt.answer(due)
			} else {
				c.early[f.ReplyTo] = true
			}
		case "error":
			delete(c.byID, f.ID)
			rt.fail(fmt.Errorf("error frame %s: %s", f.Code, f.Message))
		}
		c.mu.Unlock()
	}
}

func (c *chatConn) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID) + len(c.byMsg)
}

// waitAnswers waits up to 15 s for the answers still on their way.
func waitAnswers(conns []*chatConn) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, c := range conns {
			n += c.pending()
		}
		if n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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

// Hops splits a round trip by the Kafka timestamps of its records (set
// when each was produced): query → prompt is the retrieve stage's share
// (the query's wait for a fetch, processing, and the transaction), prompt
// → answer the generate stage's.
type Hops struct {
	Matched  int         `json:"matched"`
	ToPrompt Percentiles `json:"query_to_prompt"`
	ToAnswer Percentiles `json:"prompt_to_answer"`
}

// hopTimes reads the three topics under prefix and matches records by
// correlation id (kchat's header, or the key in the chain).
func hopTimes(ctx context.Context, brokers []string, prefix string) (Hops, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(prefix+"query", prefix+"prompt", prefix+"answer"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return Hops{}, err
	}
	defer cl.Close()
	// The end offsets now: read until every partition reached them.
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, prefix+"query", prefix+"prompt", prefix+"answer")
	if err != nil {
		return Hops{}, err
	}
	left := 0
	ends.Each(func(o kadm.ListedOffset) { left += int(o.Offset) })
	at := map[string]map[string]time.Time{"query": {}, "prompt": {}, "answer": {}}
	for left > 0 && ctx.Err() == nil {
		pollCtx, cancelPoll := context.WithTimeout(ctx, 2*time.Second)
		fetches := cl.PollFetches(pollCtx)
		cancelPoll()
		fetches.EachRecord(func(r *kgo.Record) {
			left--
			id := string(r.Key)
			for _, h := range r.Headers {
				if h.Key == "kchat-correlation-id" {
					id = string(h.Value)
				}
			}
			at[strings.TrimPrefix(r.Topic, prefix)][id] = r.Timestamp
		})
		// Transaction markers take offsets too: stop once nothing more comes.
		if fetches.NumRecords() == 0 {
			break
		}
	}
	var hops Hops
	toPrompt, toAnswer := newLatencies(), newLatencies()
	for id, q := range at["query"] {
		p, okP := at["prompt"][id]
		a, okA := at["answer"][id]
		if okP && okA {
			hops.Matched++
			toPrompt.record(p.Sub(q))
			toAnswer.record(a.Sub(p))
		}
	}
	hops.ToPrompt, hops.ToAnswer = toPrompt.percentiles(), toAnswer.percentiles()
	return hops, nil
}
