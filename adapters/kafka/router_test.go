package kafka_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
	"github.com/kchat/kchat/ports/porttest"
)

// The answer feed keeps its contract with answer routing on: one gateway
// owns every partition.
func TestRoutedAnswerFeedContractKfake(t *testing.T) {
	t.Parallel()
	porttest.RunAnswerFeed(t, func(t *testing.T) porttest.AnswerFeedHarness {
		return answerFeedHarnessOf(t, kafkatest.Fake(t), testenv.Prefix("kfake"), startRoutedFeed)
	})
}

// gateway is one gateway's router and feed, and what the feed delivered.
type gateway struct {
	router *kafka.Router
	feed   *kafka.AnswerFeed
	mu     sync.Mutex
	got    []domain.Message
}

func (g *gateway) received() []domain.Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.got)
}

// startGateway runs a router and a routed answer feed until the test ends.
func startGateway(t *testing.T, cfg kafka.Config, rcfg kafka.RoutingConfig, name string) *gateway {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("gateway", name)
	}
	r, err := kafka.NewRouter(cfg, rcfg, log, kafka.NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	f, err := kafka.NewAnswerFeed(cfg, log, kafka.NewMetrics(nil), r)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{router: r, feed: f}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	wg.Go(func() { _ = f.Run(ctx) })
	if err := f.Subscribe(ctx, func(m domain.Message) {
		g.mu.Lock()
		g.got = append(g.got, m)
		g.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return g
}

func startRoutedFeed(t *testing.T, cfg kafka.Config) ports.AnswerFeed {
	t.Helper()
	return startGateway(t, cfg, kafka.DefaultRoutingConfig(), "").feed
}

// Two gateways share the answer partitions; each names its own in its
// queries and reads only those: an answer routed to one reaches it and not
// the other.
func TestRoutedGatewaysReadTheirOwnKfake(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("kfake")
	brokers := kafkatest.Fake(t)
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix // 12 answer partitions, as publisherHarness made them
	ph := publisherHarness(t, brokers, prefix)
	_ = ph
	rcfg := kafka.DefaultRoutingConfig()
	rcfg.Grace = time.Second
	a := startGateway(t, cfg, rcfg, "a")
	b := startGateway(t, cfg, rcfg, "b")
	// Both own some partitions, and none owns one twice.
	deadline := time.Now().Add(30 * time.Second)
	for len(a.router.Owned()) == 0 || len(b.router.Owned()) == 0 || len(a.router.Owned())+len(b.router.Owned()) != 12 {
		if time.Now().After(deadline) {
			t.Fatalf("owned: a %v, b %v; want the 12 partitions shared", a.router.Owned(), b.router.Owned())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // past the grace of the first assignment and of the partitions given up, and a tick: each reads its own only
	var want = map[*gateway][]string{}
	var msgs []domain.Message
	for i, g := range []*gateway{a, b, a, b, a, b} {
		session := "s" + string(rune('a'+i))
		reply := g.feed.Reply(session)
		if !reply.Set || !slices.Contains(g.router.Owned(), reply.Partition) {
			t.Fatalf("Reply(%s) = %+v, not one of the gateway's %v", session, reply, g.router.Owned())
		}
		m := answerTo(session, reply)
		want[g] = append(want[g], m.MessageID)
		msgs = append(msgs, m)
	}
	for _, r := range ph.Publisher.PublishBatch(context.Background(), msgs) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	_ = want
	time.Sleep(3 * time.Second)
	for name, g := range map[string]*gateway{"a": a, "b": b} {
		var ids []string
		for _, m := range g.received() {
			ids = append(ids, m.MessageID)
		}
		slices.Sort(ids)
		w := slices.Clone(want[g])
		slices.Sort(w)
		if !slices.Equal(ids, w) {
			t.Errorf("gateway %s read %v, want its own %v", name, ids, w)
		}
	}
}

// answerTo is a signed-looking answer of session routed to reply.
func answerTo(session string, reply domain.Reply) domain.Message {
	q := domain.NewMessageID()
	return domain.Message{
		MessageID: domain.DerivedID(q, "answer"), SessionID: session, UserID: "u", Type: domain.TypeAnswer,
		Text: "answer", ReplyTo: q, CreatedAt: time.Now(), Reply: reply,
	}
}

// Widen has a gateway read every partition until released: an answer
// routed to another gateway (a session resumed here after its gateway
// died) reaches it; after the release, no longer.
func TestRoutedWidenKfake(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("kfake")
	brokers := kafkatest.Fake(t)
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	ph := publisherHarness(t, brokers, prefix)
	rcfg := kafka.DefaultRoutingConfig()
	rcfg.Grace = 3 * time.Second // Widen also ends by itself after it
	a := startGateway(t, cfg, rcfg, "a")
	b := startGateway(t, cfg, rcfg, "b")
	for deadline := time.Now().Add(30 * time.Second); len(a.router.Owned())+len(b.router.Owned()) != 12 || len(a.router.Owned()) == 0 || len(b.router.Owned()) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("owned: a %v, b %v", a.router.Owned(), b.router.Owned())
		}
	}
	time.Sleep(5 * time.Second) // past the grace of the first assignment: each reads its own only
	publish := func(m domain.Message) {
		t.Helper()
		for _, r := range ph.Publisher.PublishBatch(context.Background(), []domain.Message{m}) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	has := func(g *gateway, id string) bool {
		return slices.ContainsFunc(g.received(), func(m domain.Message) bool { return m.MessageID == id })
	}
	release, err := b.feed.Widen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	widened := answerTo("s1", a.feed.Reply("s1")) // a's partition
	publish(widened)
	for deadline := time.Now().Add(10 * time.Second); !has(b, widened.MessageID); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a widened gateway did not get an answer routed to another")
		}
	}
	release()
	time.Sleep(1500 * time.Millisecond) // the router's next round narrows it
	narrowed := answerTo("s2", a.feed.Reply("s2"))
	publish(narrowed)
	for deadline := time.Now().Add(10 * time.Second); !has(a, narrowed.MessageID); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the owning gateway did not get its answer")
		}
	}
	time.Sleep(500 * time.Millisecond)
	if has(b, narrowed.MessageID) {
		t.Error("a released gateway still reads another's partitions")
	}
}
