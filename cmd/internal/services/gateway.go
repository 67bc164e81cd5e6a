package services

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/restclient"
	"github.com/kchat/kchat/adapters/web"
	"github.com/kchat/kchat/adapters/ws"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/ports"
)

// GatewayConfig is the gateway's own configuration.
type GatewayConfig struct {
	Addr string `env:"KCHAT_GATEWAY_ADDR" envDefault:":8002"`
	HTTP httpapi.ServerConfig
	// ChatTimeout bounds how long POST /chat waits for the answer.
	ChatTimeout time.Duration `env:"KCHAT_CHAT_TIMEOUT" envDefault:"30s"`
	WS          ws.Config
	Auth        auth.Config
	// QueryPublisher is how queries reach Kafka: "kafka" (directly) or
	// "producer" (the producer service, through the generated client).
	QueryPublisher string `env:"KCHAT_QUERY_PUBLISHER" envDefault:"kafka"`
	// REST locates the producer and consumer services (the seed's /send and
	// GET /messages, and the producer query publisher).
	REST restclient.Config
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
	if c.QueryPublisher != "kafka" && c.QueryPublisher != "producer" {
		return fmt.Errorf("KCHAT_QUERY_PUBLISHER must be kafka or producer, got %q", c.QueryPublisher)
	}
	if err := c.REST.Validate(); err != nil {
		return err
	}
	if err := c.WS.Validate(); err != nil {
		return err
	}
	return c.Auth.Validate()
}

// GatewayServer is the gateway's HTTP server: the web page, /ws, the chat
// and session routes.
type GatewayServer struct {
	*httpapi.Server
}

// Gateway is the gateway service. It needs Base, kafka.Module (queries are
// published straight to Kafka; the answer feed reads answers) and Sessions
// in the graph.
func Gateway(cfg GatewayConfig) fx.Option {
	return fx.Module("gateway",
		fx.Supply(cfg.Auth),
		auth.Module,
		fx.Provide(
			func(s ports.SessionStore, p ports.QueryPublisher) *app.Ask {
				return &app.Ask{Sessions: s, Publisher: p}
			},
			func(s ports.SessionStore) *app.SessionHistory { return &app.SessionHistory{Sessions: s, Limit: 200} },
			func(ask *app.Ask, h *app.SessionHistory, feed ports.AnswerFeed, a *auth.Authenticator, log *slog.Logger) *ws.Handler {
				return ws.New(cfg.WS, ask, h, feed, a.Authenticate, log)
			},
			func(ask *app.Ask, h *app.SessionHistory, feed ports.AnswerFeed, a *auth.Authenticator, log *slog.Logger) *httpapi.Gateway {
				return &httpapi.Gateway{Ask: ask, History: h, Feed: feed, Authenticate: a.Authenticate, Timeout: cfg.ChatTimeout, Log: log}
			},
			fx.Annotate(func(feed *kafka.AnswerFeed) httpapi.Check {
				return httpapi.Check{Name: "kafka", Check: feed.Ready}
			}, fx.ResultTags(`group:"checks"`)),
			fx.Annotate(func(reg *prometheus.Registry, checks []httpapi.Check, g *httpapi.Gateway, wsh *ws.Handler, log *slog.Logger) GatewayServer {
				s := httpapi.NewServer(cfg.HTTP, "kchat gateway", reg, checks, log)
				g.Register(s.API())
				s.Mount("/ws", wsh)
				// The seed's routes, through the generated REST client.
				s.Mount("/send", restclient.SendHandler(cfg.REST))
				s.Mount("/messages", restclient.MessagesHandler(cfg.REST))
				s.Mount("/*", web.Handler())
				return GatewayServer{s}
			}, fx.ParamTags(``, `group:"checks"`)),
		),
		// Readers first, then the server; on stop the server goes first,
		// then the sockets are closed with 1001 and the feed stops.
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, feed *kafka.AnswerFeed) {
			runner.Hook(lc, sd, log, "answer-feed", feed)
		}),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, g *httpapi.Gateway) {
			runner.Hook(lc, sd, log, "chat-waiters", g)
		}),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, h *ws.Handler) {
			runner.Hook(lc, sd, log, "websockets", h)
		}),
		fx.Invoke(func(lc fx.Lifecycle, s GatewayServer) { lc.Append(fx.StartStopHook(s.Start, s.Stop)) }),
	)
}
