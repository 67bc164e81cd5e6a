package kafka_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestCompressionFromEnv(t *testing.T) {
	tests := []struct {
		give    string // KCHAT_KAFKA_COMPRESSION; "-" leaves it unset
		want    kafka.Compression
		wantErr bool
	}{
		{give: "-", want: kafka.DefaultCompression},
		{give: "none", want: kafka.CompressionNone},
		{give: "gzip", want: kafka.CompressionGzip},
		{give: "snappy", want: kafka.CompressionSnappy},
		{give: "lz4", want: kafka.CompressionLz4},
		{give: "zstd", want: kafka.CompressionZstd},
		{give: "ZSTD", want: kafka.CompressionZstd},
		{give: "brotli", wantErr: true},
		{give: "", want: kafka.DefaultCompression}, // empty is unset, as for every KCHAT_* variable
		{give: "gzip,zstd", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			vars := map[string]string{"KCHAT_KAFKA_BROKERS": "127.0.0.1:9092"}
			if tt.give != "-" {
				vars["KCHAT_KAFKA_COMPRESSION"] = tt.give
			}
			var cfg kafka.Config
			err := env.ParseWithOptions(&cfg, env.Options{Environment: vars})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "KCHAT_KAFKA_COMPRESSION") || !strings.Contains(err.Error(), "none, gzip, snappy, lz4, zstd") {
					t.Fatalf("err = %v, want one naming KCHAT_KAFKA_COMPRESSION and the codecs", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Compression != tt.want {
				t.Fatalf("Compression = %s, want %s", cfg.Compression, tt.want)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCompressionDefaultIsTheDocumentedOne: the env default, DefaultConfig
// and the zero value agree, and the default is a codec that readers
// without snappy (kafka-python without python-snappy) decode.
func TestCompressionDefaultIsTheDocumentedOne(t *testing.T) {
	var cfg kafka.Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if cfg.Compression != kafka.DefaultCompression || kafka.DefaultConfig().Compression != kafka.DefaultCompression {
		t.Fatalf("env default %s, DefaultConfig %s, DefaultCompression %s", cfg.Compression, kafka.DefaultConfig().Compression, kafka.DefaultCompression)
	}
	if zero := (kafka.Compression{}); zero.CodecType() != kafka.DefaultCompression.CodecType() || zero.String() != kafka.DefaultCompression.String() {
		t.Fatalf("the zero value is %s, want the default %s", zero, kafka.DefaultCompression)
	}
	if c := kafka.DefaultCompression.CodecType(); c != kgo.CodecNone && c != kgo.CodecGzip {
		t.Fatalf("default %s: old Python readers decode only none and gzip", kafka.DefaultCompression)
	}
}

func TestCompressionReachesTheBatchKfake(t *testing.T) {
	t.Parallel()
	testCompressionReachesTheBatch(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationCompressionReachesTheBatch(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-codec")
	testCompressionReachesTheBatch(t, kafkatest.Real(t, prefix), prefix)
}

// compressible is a question long and repetitive enough that every codec
// makes its batch smaller: franz-go sends a batch uncompressed otherwise.
var compressible = strings.Repeat("How do I resume a WebSocket session after reconnecting? ", 12)

// testCompressionReachesTheBatch publishes a query with each setting, and
// runs a stage with a codec that is neither the default nor franz-go's
// own, and reads the codec from each record's batch attributes.
func testCompressionReachesTheBatch(t *testing.T, brokers []string, prefix string) {
	log := slog.New(slog.DiscardHandler)
	base := kafka.DefaultConfig()
	base.Brokers, base.TopicPrefix = brokers, prefix
	admin, err := kafka.NewClient(base, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	if err := kafka.NewTopicAdmin(admin, base, log, append(kafka.PipelineTopics(base), kafka.DeadLetterTopics(base)...)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}

	want := map[string]kafka.Compression{} // message id → the setting it was published with
	for _, c := range kafka.Compressions() {
		cfg := base
		cfg.Compression = c
		cl, err := kafka.NewClient(cfg, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		q := domain.Message{MessageID: domain.NewMessageID(), SessionID: "s-" + c.String(), UserID: "u", Type: domain.TypeQuery, Text: compressible, CreatedAt: time.Now()}
		_, err = kafka.NewPublisher(cl, cfg).Publish(t.Context(), q)
		cl.Close()
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		want[q.MessageID] = c
	}
	queries := kafkatest.ReadAll(t, brokers, prefix+"query", len(want), 20*time.Second)
	checkCodecs(t, queries, func(m domain.Message) string { return m.MessageID }, want)

	// The answerer's stages build their transactional clients apart.
	stageCodec := kafka.CompressionLz4
	if stageCodec == kafka.DefaultCompression {
		stageCodec = kafka.CompressionZstd
	}
	cfg := base
	cfg.Compression = stageCodec
	transform := func(_ context.Context, q domain.Message) (domain.Message, error) {
		return domain.NewPromptMessage(q, domain.Prompt{Question: q.Text}, time.Now()), nil
	}
	scfg := kafka.StageConfig{Group: prefix + "answerer", Instance: "test", RetryBackoff: 10 * time.Millisecond, SessionTimeout: 6 * time.Second, Concurrency: 4}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kafka.NewStage("retrieve", domain.TypeQuery, cfg, scfg, log, nil, transform).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stage: %v", err)
		}
	})
	prompts := kafkatest.ReadAll(t, brokers, prefix+"prompt", len(want), 60*time.Second)
	wantPrompts := map[string]kafka.Compression{}
	for id := range want {
		wantPrompts[id] = stageCodec
	}
	checkCodecs(t, prompts, func(m domain.Message) string { return m.ReplyTo }, wantPrompts)
}

// checkCodecs checks that each record, found by the id idOf gives its
// envelope, was written in a batch compressed with the codec want names.
func checkCodecs(t *testing.T, recs []*kgo.Record, idOf func(domain.Message) string, want map[string]kafka.Compression) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range recs {
		m, err := kafka.DecodeValue(r.Value)
		if err != nil {
			t.Fatalf("%s@%d: %v", r.Topic, r.Offset, err)
		}
		c, ok := want[idOf(m)]
		if !ok {
			continue
		}
		seen[idOf(m)] = true
		if got := kgo.CompressionCodecType(r.Attrs.CompressionType()); got != c.CodecType() {
			t.Errorf("%s: record written with %s is in a batch with codec %d, want %d (%s)", r.Topic, c, got, c.CodecType(), c)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("found %d of the %d records", len(seen), len(want))
	}
}
