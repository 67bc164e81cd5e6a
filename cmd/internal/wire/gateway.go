package wire

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/adapters/restclient"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/adapters/web"
	"github.com/kchat/kchat/adapters/ws"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/ports"
)

// The adapters KCHAT_QUERY_PUBLISHER chooses from.
const (
	// PublishToKafka publishes queries straight to Kafka.
	PublishToKafka = "kafka"
	// PublishToProducer posts them to the producer service.
	PublishToProducer = "producer"
)

// historyLimit is the most turns a history route or a resume returns.
const historyLimit = 200

// GatewayConfig is the gateway's own configuration.
type GatewayConfig struct {
	Addr string `env:"KCHAT_GATEWAY_ADDR" envDefault:":8002"`
	HTTP httpapi.ServerConfig
	// ChatTimeout bounds how long POST /chat waits for the answer.
	ChatTimeout time.Duration `env:"KCHAT_CHAT_TIMEOUT" envDefault:"30s"`
	WS          ws.Config
	// UserLimit bounds each user's questions over every entry point.
	UserLimit ratelimit.Config
	// AddrLimit bounds each client address, whatever identities it takes.
	AddrLimit AddrLimits
	Auth      auth.Config
	// QueryPublisher is how queries reach Kafka: PublishToKafka or
	// PublishToProducer (through the generated client).
	QueryPublisher string `env:"KCHAT_QUERY_PUBLISHER" envDefault:"kafka"`
	// REST locates the producer and consumer services (the seed's /send and
	// GET /messages, and the producer query publisher).
	REST restclient.Config
	// AnswerKey checks that answers come from the answerer (AnswerKeyVar).
	AnswerKey string `env:"KCHAT_ANSWER_KEY"`
	// Routing is how the gateway gets its sockets' answers (docs/design.md,
	// "Answer routing").
	Routing kafka.RoutingConfig
}

// Validate checks every part, naming the variable at fault.
func (c *GatewayConfig) Validate() error {
	c.HTTP.Addr = c.Addr
	if err := c.HTTP.Validate("KCHAT_GATEWAY_ADDR"); err != nil {
		return err
	}
	if c.ChatTimeout < time.Second || c.ChatTimeout > 10*time.Minute {
		return fmt.Errorf("KCHAT_CHAT_TIMEOUT must be between 1s and 10m, got %s", c.ChatTimeout)
	}
	if c.QueryPublisher != PublishToKafka && c.QueryPublisher != PublishToProducer {
		return fmt.Errorf("KCHAT_QUERY_PUBLISHER must be kafka or producer, got %q", c.QueryPublisher)
	}
	if _, err := AnswerKey(c.AnswerKey); err != nil {
		return err
	}
	for _, v := range []func() error{c.REST.Validate, c.WS.Validate, c.UserLimit.Validate, c.AddrLimit.Validate, c.Auth.Validate, c.Routing.Validate} {
		if err := v(); err != nil {
			return err
		}
	}
	return nil
}

// GatewayServer is the gateway's HTTP server: the web page, /ws, the chat
// and session routes.
type GatewayServer struct {
	*httpapi.Server
}

// QueryPublisher binds ports.QueryPublisher to the adapter choice names:
// the Kafka publisher, or the producer service through the generated REST
// client (with a readiness check of the producer).
func QueryPublisher(choice string, rest restclient.Config) fx.Option {
	if choice == PublishToProducer {
		return fx.Options(
			fx.Provide(fx.Annotate(func(tr *tracing.Provider) *restclient.Publisher { return restclient.NewPublisher(rest, tr) },
				fx.As(fx.Self()), fx.As(new(ports.QueryPublisher)))),
			check(func(p *restclient.Publisher) httpapi.Check { return httpapi.Check{Name: "producer", Check: p.Ready} }),
		)
	}
	return fx.Provide(func(p *kafka.Publisher) ports.QueryPublisher { return p })
}

// Gateway is the gateway service: the chat use cases, the WebSocket
// handler, the HTTP chat routes, the seed's routes and the web page. It
// needs Base, Kafka (the answer feed; the publisher unless queries go
// through the producer) and Sessions in the graph.
func Gateway(cfg GatewayConfig) fx.Option {
	return fx.Module("gateway",
		QueryPublisher(cfg.QueryPublisher, cfg.REST),
		fx.Provide(
			func(log *slog.Logger, reg prometheus.Registerer) (*auth.Authenticator, error) {
				return auth.New(cfg.Auth, log, reg)
			},
			newGatewayMetrics,
			func(m *gatewayMetrics) ports.Limiter {
				return gatewayLimiter(cfg.UserLimit, cfg.AddrLimit, m.rateLimited)
			},
			newAnswers(cfg.AnswerKey),
			func(s ports.SessionStore, p ports.QueryPublisher, l ports.Limiter, a *app.Answers) *app.Ask {
				return &app.Ask{Sessions: s, Publisher: p, Limiter: l, Answers: a}
			},
			func(s ports.SessionStore, a *app.Answers) *app.OpenSession {
				return &app.OpenSession{Sessions: s, Answers: a, HistoryLimit: historyLimit, PendingWithin: cfg.Routing.Grace}
			},
			func(kcfg kafka.Config, m *kafka.Metrics, log *slog.Logger) (*kafka.Router, error) {
				if cfg.Routing.Mode == kafka.RouteBroadcast {
					return nil, nil // every gateway reads every answer
				}
				return kafka.NewRouter(kcfg, cfg.Routing, log, m)
			},
			func(ask *app.Ask, a *app.Answers) *app.Chat {
				return &app.Chat{Ask: ask, Answers: a, Timeout: cfg.ChatTimeout}
			},
			func(ask *app.Ask, a *app.Answers) *app.StreamChat {
				return &app.StreamChat{Ask: ask, Answers: a, Timeout: cfg.ChatTimeout}
			},
			func(s ports.SessionStore, a *app.Answers) *app.SessionHistory {
				return &app.SessionHistory{Sessions: s, Answers: a, Limit: historyLimit}
			},
			func(open *app.OpenSession, ask *app.Ask, a *auth.Authenticator, reg prometheus.Registerer, gm *gatewayMetrics, tr *tracing.Provider, hops *tracing.Hops, log *slog.Logger) *ws.Handler {
				m := ws.NewMetrics(reg)
				m.Asked, m.Delivered = gm.asked.WithLabelValues(entryWebSocket), gm.delivered.WithLabelValues(entryWebSocket)
				opts := append(wsOptions(a, cfg.AddrLimit), ws.WithMetrics(m), ws.WithTracing(tr, hops))
				return ws.New(cfg.WS, open, ask, a.AuthenticateUpgrade, log, opts...)
			},
			func(chat *app.Chat, stream *app.StreamChat, h *app.SessionHistory, a *auth.Authenticator, gm *gatewayMetrics, log *slog.Logger) *httpapi.Gateway {
				return &httpapi.Gateway{Chat: chat, StreamChat: stream, History: h, Authenticate: a.Authenticate, Log: log,
					Asked: gm.asked.WithLabelValues(entryChat), Delivered: gm.delivered.WithLabelValues(entryChat)}
			},
		),
		check(func(feed *kafka.AnswerFeed, deltas *kafka.DeltaFeed) httpapi.Check {
			// Each feed has a client of its own: both must reach a broker.
			return httpapi.Check{Name: "kafka", Check: func(ctx context.Context) error {
				if err := feed.Ready(ctx); err != nil {
					return err
				}
				return deltas.Ready(ctx)
			}}
		}),
		fx.Provide(fx.Annotate(func(checks []httpapi.Check, g *httpapi.Gateway, wsh *ws.Handler, a *auth.Authenticator, l ports.Limiter, open *app.OpenSession, m *httpapi.HTTPMetrics, gm *gatewayMetrics, tr *tracing.Provider, log *slog.Logger) GatewayServer {
			// Every route behind the edge: the client's address, and the
			// visitor's cookie (KCHAT_AUTH=none); each route authenticates.
			s := httpapi.NewServer(cfg.HTTP, "kchat gateway", checks, log, httpapi.Tracing(tr, "gateway"), m.Middleware("gateway"), a.Edge)
			g.Register(s.API())
			httpapi.DocumentGatewayRoutes(s.API()) // the routes mounted below, in /openapi.yaml
			s.Mount("/ws", wsh)
			// The seed's routes, through the generated REST client.
			seed := seedRoutes(cfg.REST, a, l, open, log)
			seed.Asked = gm.asked.WithLabelValues(entrySend)
			s.Mount("/send", seed.Send())
			s.Mount("/messages", seed.Messages())
			s.Mount("/*", a.Visitors(web.Handler()))
			return GatewayServer{s}
		}, fx.ParamTags(checks))),
		// Readers first, then the server; on stop the server goes first,
		// then the sockets are closed with 1001 and the feed stops.
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, r *kafka.Router) {
			if r != nil {
				runner.Hook(lc, sd, log, "answer-router", r)
			}
		}),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, feed *kafka.AnswerFeed) {
			runner.Hook(lc, sd, log, "answer-feed", feed)
		}),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, feed *kafka.DeltaFeed) {
			runner.Hook(lc, sd, log, "delta-feed", feed)
		}),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, a *app.Answers) {
			runner.Hook(lc, sd, log, "answers", a)
		}),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, h *ws.Handler) {
			runner.Hook(lc, sd, log, "websockets", h)
		}),
		fx.Invoke(func(lc fx.Lifecycle, s GatewayServer, a *auth.Authenticator, log *slog.Logger) {
			lc.Append(fx.StartStopHook(s.Start, s.Stop))
			lc.Append(fx.StartHook(func() { warnIfOpen(a, s.Addr(), log) }))
		}),
	)
}
