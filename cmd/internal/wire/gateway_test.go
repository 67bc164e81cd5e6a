package wire

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/restclient"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/adapters/ws"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
)

// started is a running gateway graph and what the test looks at in it.
type started struct {
	addr      string
	publisher ports.QueryPublisher
}

// startGateway runs the gateway's graph on brokers with the query
// publisher choice names, until the test ends.
func startGateway(t *testing.T, kcfg kafka.Config, choice string, rest restclient.Config) started {
	t.Helper()
	cfg := GatewayConfig{
		HTTP:        httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		ChatTimeout: 5 * time.Second, WS: ws.DefaultConfig(), UserLimit: ratelimit.DefaultConfig(), Auth: auth.DefaultConfig(),
		QueryPublisher: choice, REST: rest, AnswerKey: "kchat-test-answer-key-0123456789abcdef",
	}
	var (
		srv GatewayServer
		pub ports.QueryPublisher
	)
	start(t, Base(slog.New(slog.DiscardHandler), time.Second), Tracing(tracing.Config{}, "test"), Kafka(kcfg), Sessions(redis.DefaultConfig()), Gateway(cfg), fx.Populate(&srv, &pub))
	return started{addr: srv.Addr(), publisher: pub}
}

// start runs an fx app until the test ends.
func start(t *testing.T, opts ...fx.Option) {
	t.Helper()
	app := fx.New(opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := app.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

// ask asks a question over the gateway's WebSocket and returns the id its
// ack gives the query.
func ask(t *testing.T, addr, question string) string {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if err := conn.WriteJSON(map[string]string{"type": "query", "id": "q", "message": question}); err != nil {
		t.Fatal(err)
	}
	for {
		var f map[string]any
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for the ack: %v", err)
		}
		switch f["type"] {
		case "ack":
			return f["message_id"].(string)
		case "error":
			t.Fatalf("the question was refused: %v", f)
		}
	}
}

// queryOnKafka reads the query topic until the query with id shows up.
func queryOnKafka(t *testing.T, kcfg kafka.Config, id, question string) {
	t.Helper()
	for _, r := range kafkatest.ReadAll(t, kcfg.Brokers, domain.TopicName(kcfg.TopicPrefix, domain.TypeQuery), 1, 20*time.Second) {
		m, err := kafka.DecodeValue(r.Value)
		if err == nil && m.MessageID == id && m.Text == question {
			return
		}
	}
	t.Fatalf("query %s is not on the query topic", id)
}

// kafkaConfig is a fresh kfake cluster with the pipeline topics, as the
// producer or the answerer of a deployment creates them.
func kafkaConfig(t *testing.T) kafka.Config {
	t.Helper()
	return kafkaConfigOn(t, kafkatest.Fake(t), testenv.Prefix("wire"))
}

// kafkaConfigOn is brokers with fresh pipeline topics under prefix.
func kafkaConfigOn(t *testing.T, brokers []string, prefix string) kafka.Config {
	t.Helper()
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix = brokers, prefix
	cl, err := kgo.NewClient(kgo.SeedBrokers(kcfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.NewTopicAdmin(cl, kcfg, slog.New(slog.DiscardHandler), kafka.PipelineTopics(kcfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	return kcfg
}

// KCHAT_QUERY_PUBLISHER=kafka: the graph holds the Kafka publisher, and a
// question goes straight to the query topic.
func TestQueryPublisherKafka(t *testing.T) { testQueryPublisherKafka(t, kafkaConfig(t)) }

func TestIntegrationQueryPublisherKafka(t *testing.T) {
	prefix := testenv.Prefix("it-wire")
	testQueryPublisherKafka(t, kafkaConfigOn(t, kafkatest.Real(t, prefix), prefix))
}

func testQueryPublisherKafka(t *testing.T, kcfg kafka.Config) {
	// Nothing may answer on the producer URL: a request there would fail.
	g := startGateway(t, kcfg, PublishToKafka, restclient.Config{ProducerURL: "http://127.0.0.1:1", ConsumerURL: "http://127.0.0.1:1", Timeout: time.Second})
	if _, ok := g.publisher.(*kafka.Publisher); !ok {
		t.Fatalf("KCHAT_QUERY_PUBLISHER=kafka built %T, want *kafka.Publisher", g.publisher)
	}
	id := ask(t, g.addr, "straight to Kafka?")
	queryOnKafka(t, kcfg, id, "straight to Kafka?")
}

// KCHAT_QUERY_PUBLISHER=producer: the graph holds the REST client's
// publisher, and a question reaches the producer service (a real one, in
// front of the same broker, behind a proxy that counts its requests) which
// puts it on the query topic.
func TestQueryPublisherProducer(t *testing.T) { testQueryPublisherProducer(t, kafkaConfig(t)) }

func TestIntegrationQueryPublisherProducer(t *testing.T) {
	prefix := testenv.Prefix("it-wire")
	testQueryPublisherProducer(t, kafkaConfigOn(t, kafkatest.Real(t, prefix), prefix))
}

func testQueryPublisherProducer(t *testing.T, kcfg kafka.Config) {
	var producer ProducerServer
	start(t, Base(slog.New(slog.DiscardHandler), time.Second), Tracing(tracing.Config{}, "test"), Kafka(kcfg),
		Producer(ProducerConfig{HTTP: httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}}), fx.Populate(&producer))
	target, err := url.Parse("http://" + producer.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		bodies []string
	)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/messages" {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			bodies = append(bodies, string(b))
			mu.Unlock()
			r.Body = io.NopCloser(strings.NewReader(string(b)))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	rest := restclient.DefaultConfig()
	rest.ProducerURL = front.URL
	g := startGateway(t, kcfg, PublishToProducer, rest)
	if _, ok := g.publisher.(*restclient.Publisher); !ok {
		t.Fatalf("KCHAT_QUERY_PUBLISHER=producer built %T, want *restclient.Publisher", g.publisher)
	}
	id := ask(t, g.addr, "through the producer?")
	mu.Lock()
	got := strings.Join(bodies, "\n")
	mu.Unlock()
	if !strings.Contains(got, id) || !strings.Contains(got, "through the producer?") {
		t.Fatalf("the producer service got %q; want the question %s", got, id)
	}
	queryOnKafka(t, kcfg, id, "through the producer?")
}

// The same topic added by two services (the producer's and the answerer's
// pipeline topics in the all-in-one) is created once, with the answerer's
// dead-letter topics beside it.
func TestTopicsFromEveryService(t *testing.T) {
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix = kafkatest.Fake(t), testenv.Prefix("wire")
	var admin *kafka.TopicAdmin
	start(t, Base(slog.New(slog.DiscardHandler), time.Second), Tracing(tracing.Config{}, "test"), Kafka(kcfg),
		Topics(kafka.PipelineTopics), Topics(kafka.PipelineTopics), Topics(kafka.DeadLetterTopics), fx.Populate(&admin))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := admin.EnsureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kcfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range append(kafka.PipelineTopics(kcfg), kafka.DeadLetterTopics(kcfg)...) {
		if !listed.Has(topic.Name) {
			t.Errorf("topic %s was not created (have %v)", topic.Name, listed.Names())
		}
	}
	infos, err := admin.DescribeTopics(ctx)
	if err != nil || len(infos) != 3 {
		t.Fatalf("DescribeTopics = %v, %v", infos, err)
	}
}
