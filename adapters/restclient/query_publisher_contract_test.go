package restclient_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/restclient"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
	"github.com/kchat/kchat/ports/porttest"
)

// The publisher is held to the contract through a real producer service:
// its HTTP handlers and use cases, in front of a store.

func TestPublisherQueryPublisherContract(t *testing.T) {
	t.Parallel()
	porttest.RunQueryPublisher(t, func(t *testing.T) porttest.QueryPublisherHarness {
		b := memory.NewBroker("")
		return porttest.QueryPublisherHarness{
			Publisher: restclient.NewPublisher(producerConfig(producerOn(t, b)), nil),
			Read: func(t *testing.T, typ domain.MessageType, want int) []porttest.Stored {
				t.Helper()
				topic := domain.TopicName("", typ)
				var out []porttest.Stored
				for p, msgs := range b.Messages(topic) {
					for off, m := range msgs {
						pos := domain.Position{Topic: topic, Partition: int32(p), Offset: int64(off)}
						out = append(out, porttest.Stored{Position: pos, Key: m.SessionID, Message: m})
					}
				}
				if len(out) < want {
					t.Fatalf("topic %s holds %d messages, want %d", topic, len(out), want)
				}
				return out
			},
			Down: func(t *testing.T) ports.QueryPublisher {
				return restclient.NewPublisher(producerConfig(producerOn(t, downStore{})), nil)
			},
		}
	})
}

func TestIntegrationPublisherQueryPublisherContract(t *testing.T) {
	t.Parallel()
	testenv.KafkaBrokers(t)
	porttest.RunQueryPublisher(t, func(t *testing.T) porttest.QueryPublisherHarness {
		prefix := testenv.Prefix("it-restpub")
		brokers := kafkatest.Real(t, prefix)
		cfg := kafka.DefaultConfig()
		cfg.Brokers, cfg.TopicPrefix = brokers, prefix
		log := slog.New(slog.DiscardHandler)
		cl, err := kafka.NewClient(cfg, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
			t.Fatalf("EnsureTopics: %v", err)
		}
		return porttest.QueryPublisherHarness{
			Publisher: restclient.NewPublisher(producerConfig(producerOn(t, kafka.NewPublisher(cl, cfg))), nil),
			Read: func(t *testing.T, typ domain.MessageType, want int) []porttest.Stored {
				t.Helper()
				var out []porttest.Stored
				for _, r := range kafkatest.ReadAll(t, brokers, domain.TopicName(prefix, typ), want, 20*time.Second) {
					msg, err := kafka.DecodeValue(r.Value)
					if err != nil {
						t.Fatalf("%s[%d]@%d: %v", r.Topic, r.Partition, r.Offset, err)
					}
					pos := domain.Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
					out = append(out, porttest.Stored{Position: pos, Key: string(r.Key), Message: msg})
				}
				return out
			},
			Down: func(t *testing.T) ports.QueryPublisher {
				dead := cfg
				dead.Brokers, dead.DeliveryTimeout = []string{strings.TrimPrefix(deadURL(t), "http://")}, time.Second
				cl, err := kafka.NewClient(dead, slog.New(slog.DiscardHandler), nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(cl.Close)
				return restclient.NewPublisher(producerConfig(producerOn(t, kafka.NewPublisher(cl, dead))), nil)
			},
		}
	})
}

// producerOn serves the producer's routes over store until the test ends
// and returns its URL. Its topic admin is not needed to publish.
func producerOn(t *testing.T, store ports.Publisher) string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	s := httpapi.NewServer(httpapi.ServerConfig{Addr: ":0"}, "kchat producer", nil, log)
	httpapi.NewProducer(&app.SubmitMessage{Publisher: store}, &app.SubmitBatch{Publisher: store}, nil, log).Register(s.API())
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func producerConfig(url string) restclient.Config {
	cfg := config(url, "")
	cfg.Timeout = 15 * time.Second
	return cfg
}

// downStore is a store that does not answer, as Kafka during an outage.
type downStore struct{}

func (downStore) Publish(context.Context, domain.Message) (domain.Position, error) {
	return domain.Position{}, fmt.Errorf("no acknowledgement: %w", domain.ErrUnavailable)
}

func (s downStore) PublishBatch(ctx context.Context, msgs []domain.Message) []ports.PublishResult {
	out := make([]ports.PublishResult, len(msgs))
	for i, m := range msgs {
		out[i].Position, out[i].Err = s.Publish(ctx, m)
	}
	return out
}

// A query's reply partition (docs/design.md, "Answer routing") goes through
// the producer service as the Kchat-Reply-Partition header onto the query
// record; a query without one carries none.
func TestPublisherCarriesTheReplyPartitionKfake(t *testing.T) {
	prefix := testenv.Prefix("kfake")
	brokers := kafkatest.Fake(t)
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := restclient.NewPublisher(producerConfig(producerOn(t, kafka.NewPublisher(cl, cfg))), nil)
	routed, plain := query(), query()
	routed.MessageID, plain.MessageID = domain.NewMessageID(), domain.NewMessageID()
	routed.Reply = domain.ReplyTo(7)
	for _, q := range []domain.Message{routed, plain} {
		if err := p.PublishQuery(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]domain.Reply{}
	for _, r := range kafkatest.ReadAll(t, brokers, domain.TopicName(prefix, domain.TypeQuery), 2, 20*time.Second) {
		m, err := kafka.DecodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		got[m.MessageID] = m.Reply
	}
	if got[routed.MessageID] != domain.ReplyTo(7) || got[plain.MessageID].Set {
		t.Fatalf("reply partitions on the records: %v; want 7 on %s and none on %s", got, routed.MessageID, plain.MessageID)
	}
}
