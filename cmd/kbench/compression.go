package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
)

// CompressionResult holds the compression scenario's raw figures: for each
// number of clients, each KCHAT_KAFKA_COMPRESSION codec by name.
type CompressionResult struct {
	ValueBytes float64                        `json:"record_value_bytes_avg"`
	Runs       map[string]map[string]CodecRun `json:"runs"`
}

// CodecRun is one codec at one concurrency: the produce run, what it left
// on the broker, and reading it all back.
type CodecRun struct {
	Produce Throughput `json:"produce"`
	// Records and LogBytes are the topic's records (warm-up included) and
	// the size of its log segments on the broker (DescribeLogDirs).
	Records        int64   `json:"records"`
	LogBytes       int64   `json:"log_bytes"`
	BytesPerRecord float64 `json:"log_bytes_per_record"`
	// Compressed is the share of records whose batch is compressed:
	// franz-go sends a batch uncompressed when the codec would not make it
	// smaller.
	Compressed float64 `json:"compressed_share"`
	// ReadPerSecond and ReadCPUPerRecord are one group-less client reading
	// the whole topic from the start (decompression included).
	ReadPerSecond    float64 `json:"read_records_per_second"`
	ReadCPUPerRecord float64 `json:"read_cpu_us_per_record"`
}

// compressionClients are the concurrencies the compression scenario
// measures: one client (every request its own one-record batch) and 64
// (requests share batches while one is in flight, as under load).
var compressionClients = []int{1, 64}

// chatQuestions are questions as users ask them of kchat's knowledge base;
// the scenario's records carry them in the producer's v1 envelope.
var chatQuestions = []string{
	"How do I start kchat on my laptop?",
	"Do I need Docker or Kafka installed to try it out?",
	"What happens if I don't acknowledge a message in manual mode?",
	"How long does the consumer wait with long polling?",
	"Can I look at messages without consuming them?",
	"What does a 202 from the producer mean?",
	"How many messages can I send in one batch request?",
	"How many duplicates can I get after kill -9?",
	"Can a message be skipped when a partition moves to another replica?",
	"How do I resume a WebSocket session after reconnecting? I lost my connection on the train and the page shows nothing.",
	"Which close code do I get when my frame is too big?",
	"How can I ask a question with curl and wait for the reply?",
	"Where can I read the history of a session?",
	"How do I use Ollama to generate answers instead of the extractive generator, and which model works best?",
	"Which environment variable sets the Kafka brokers?",
	"Why does readyz return 503?",
	"My question was acknowledged but no answer ever came back, what should I check first?",
	"Should I expose the producer service to the internet?",
	"What fields does the message envelope have?",
	"hi",
}

// runCompression produces the same chat questions, as kchat's producer
// writes them (kafka.NewClient, kafka.NewRecord, ProduceSync per message),
// with each codec to a topic of its own, then measures the topic's log on
// the broker and reads it back. Ratios are to none in the same run.
func (b *bench) runCompression(ctx context.Context) (*CompressionResult, error) {
	prefix := b.prefix("compression")
	res := &CompressionResult{Runs: map[string]map[string]CodecRun{}}
	var valueBytes, values int
	for _, q := range chatQuestions {
		rec, err := kafka.NewRecord("t", chatQuery(newSessionID(), newVisitorID(), q))
		if err != nil {
			return nil, err
		}
		valueBytes += len(rec.Value)
		values++
	}
	res.ValueBytes = float64(valueBytes) / float64(values)
	for _, n := range compressionClients {
		key := fmt.Sprint(n)
		res.Runs[key] = map[string]CodecRun{}
		for _, c := range kafka.Compressions() {
			topic := fmt.Sprintf("%squery-%s-%d", prefix, c, n)
			b.logf("compression: %s, %d client(s)", c, n)
			run, err := b.compressionRun(ctx, c, n, topic)
			if err != nil {
				return nil, fmt.Errorf("%s, %d clients: %w", c, n, err)
			}
			res.Runs[key][c.String()] = run
		}
	}
	return res, nil
}

func (b *bench) compressionRun(ctx context.Context, c kafka.Compression, clients int, topic string) (CodecRun, error) {
	if err := createTopics(ctx, b.brokers, topic); err != nil {
		return CodecRun{}, err
	}
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.ClientID, kcfg.Compression = b.brokers, "kbench-compression", c
	cl, err := kafka.NewClient(kcfg, b.quietLog, nil)
	if err != nil {
		return CodecRun{}, err
	}
	defer cl.Close()
	produce := func(client int) op {
		session, user := newSessionID(), newVisitorID()
		i := client
		return func(ctx context.Context) error {
			i++
			rec, err := kafka.NewRecord(topic, chatQuery(session, user, chatQuestions[i%len(chatQuestions)]))
			if err != nil {
				return err
			}
			return cl.ProduceSync(ctx, rec).FirstErr()
		}
	}
	run := CodecRun{Produce: closedLoop(ctx, b.cpu(), clients, b.p.warmup, b.p.duration, produce)}
	if run.Produce.Ops == 0 {
		return run, fmt.Errorf("nothing produced: %s", run.Produce.FirstErr)
	}
	if err := b.measureLog(ctx, topic, &run); err != nil {
		return run, err
	}
	return run, b.readBack(ctx, topic, &run)
}

// measureLog counts the topic's records and the bytes of its log.
func (b *bench) measureLog(ctx context.Context, topic string, run *CodecRun) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("end offsets: %w", err)
	}
	ends.Each(func(o kadm.ListedOffset) { run.Records += o.Offset })
	set := kadm.TopicsSet{topic: {}}
	for p := range int32(benchPartitions) {
		set[topic][p] = struct{}{}
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return fmt.Errorf("describe log dirs: %w", err)
	}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == topic {
				run.LogBytes += p.Size
			}
		})
	})
	if run.Records > 0 {
		run.BytesPerRecord = float64(run.LogBytes) / float64(run.Records)
	}
	return nil
}

// readBack reads the whole topic with one client and counts the records
// of compressed batches.
func (b *bench) readBack(ctx context.Context, topic string, run *CodecRun) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cpu := b.cpu()
	cpu0, start := cpu.read(), time.Now()
	var read, compressed int64
	for read < run.Records {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read back %d of %d records: %w", read, run.Records, err)
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			if r.Attrs.CompressionType() != uint8(kgo.CodecNone) {
				compressed++
			}
		})
	}
	elapsed, used := time.Since(start), cpu.read()-cpu0
	run.Compressed = float64(compressed) / float64(read)
	run.ReadPerSecond = float64(read) / elapsed.Seconds()
	run.ReadCPUPerRecord = used.Seconds() * 1e6 / float64(read)
	return nil
}

// chatQuery is a question as the gateway and the producer publish it.
func chatQuery(session, user, text string) domain.Message {
	return domain.Message{
		MessageID: domain.NewMessageID(), SessionID: session, UserID: user,
		Type: domain.TypeQuery, Text: text, CreatedAt: time.Now().UTC(),
	}
}

// newSessionID and newVisitorID look like the ids kchat hands out (a UUID
// v7, a visitor's 128 random bits): they do not compress.
func newSessionID() string { return domain.NewMessageID() }

func newVisitorID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "visitor-" + hex.EncodeToString(b)
}
