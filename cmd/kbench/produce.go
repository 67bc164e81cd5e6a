package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
)

// ProduceResult holds the produce scenario's raw figures.
type ProduceResult struct {
	RecordBytes int                   `json:"record_value_bytes"`
	Kchat       map[string]Throughput `json:"kchat"`
	Baseline    map[string]Throughput `json:"baseline"`
	Latency     []LatencyPair         `json:"latency"`
}

// LatencyPair is kchat and its baseline at the same fixed arrival rate.
type LatencyPair struct {
	Load     string   `json:"load"`
	Kchat    OpenLoop `json:"kchat"`
	Baseline OpenLoop `json:"baseline"`
}

// produceClients are the concurrencies the produce scenario measures.
var produceClients = []int{1, 64}

// runProduce compares POST /messages on the producer service with raw
// franz-go ProduceSync on a client built by the same constructor (so
// linger, acks, idempotence and timeouts are the same), for the same
// records on the same topic.
func (b *bench) runProduce(ctx context.Context) (*ProduceResult, error) {
	prefix := b.prefix("produce")
	producer, err := b.bins.start(ctx, b.logDir, "producer", "KCHAT_PRODUCER_ADDR", b.serviceEnv(prefix)...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = producer.stop() }()
	cpu := b.cpu(producer)

	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.ClientID = b.brokers, "kbench-baseline"
	cl, err := kafka.NewClient(kcfg, b.quietLog, nil)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	baseCPU := b.cpu()

	topic := prefix + string(domain.TypeQuery)
	text := strings.Repeat("x", b.p.messageBytes)
	body := func(client int) []byte {
		in := map[string]string{"session_id": fmt.Sprintf("s%d", client), "user_id": "kbench", "type": "query", "message": text}
		data, _ := json.Marshal(in)
		return data
	}
	var conns []*loadConn
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	httpOp := func(client int) op {
		lc := &loadConn{addr: strings.TrimPrefix(producer.url, "http://")}
		conns = append(conns, lc)
		req := request(http.MethodPost, lc.addr, "/messages", body(client))
		return func(ctx context.Context) error {
			status, resp, err := lc.do(ctx, req)
			if err == nil && status != http.StatusAccepted {
				err = fmt.Errorf("POST /messages: %d: %.200s", status, resp)
			}
			return err
		}
	}
	kafkaOp := func(client int) op {
		session := fmt.Sprintf("s%d", client)
		return func(ctx context.Context) error {
			rec, err := kafka.NewRecord(topic, domain.Message{
				MessageID: domain.NewMessageID(), SessionID: session, UserID: "kbench",
				Type: domain.TypeQuery, Text: text, CreatedAt: time.Now(),
			})
			if err != nil {
				return err
			}
			return cl.ProduceSync(ctx, rec).FirstErr()
		}
	}
	res := &ProduceResult{Kchat: map[string]Throughput{}, Baseline: map[string]Throughput{}}
	sample, _ := kafka.NewRecord(topic, domain.Message{MessageID: domain.NewMessageID(), SessionID: "s0", UserID: "kbench", Type: domain.TypeQuery, Text: text, CreatedAt: time.Now()})
	res.RecordBytes = len(sample.Value)

	for _, n := range produceClients {
		key := fmt.Sprint(n)
		b.logf("produce: %d client(s), kchat", n)
		wait := b.bins.profile(producer, "producer-"+key, b.p.warmup+b.p.duration)
		res.Kchat[key] = closedLoop(ctx, cpu, n, b.p.warmup, b.p.duration, httpOp)
		wait()
		b.logf("produce: %d client(s), baseline", n)
		res.Baseline[key] = closedLoop(ctx, baseCPU, n, b.p.warmup, b.p.duration, kafkaOp)
	}
	// Latency at 50% and 80% of the lower of the two maxima (64 clients),
	// so both systems see the same offered load.
	top := min(res.Kchat["64"].PerSecond, res.Baseline["64"].PerSecond)
	for _, load := range []float64{0.5, 0.8} {
		rate := top * load
		if rate < 1 {
			return nil, fmt.Errorf("produce: measured maximum %.1f/s is too low for a latency run (kchat: %s; baseline: %s)",
				top, res.Kchat["64"].FirstErr, res.Baseline["64"].FirstErr)
		}
		p := LatencyPair{Load: fmt.Sprintf("%.0f%%", load*100)}
		b.logf("produce: open loop at %.0f/s, kchat", rate)
		p.Kchat = openLoop(ctx, cpu, rate, 64, b.p.warmup, b.p.latencyDuration, httpOp)
		b.logf("produce: open loop at %.0f/s, baseline", rate)
		p.Baseline = openLoop(ctx, baseCPU, rate, 64, b.p.warmup, b.p.latencyDuration, kafkaOp)
		res.Latency = append(res.Latency, p)
	}
	return res, nil
}
