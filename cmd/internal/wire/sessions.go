package wire

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/ports"
)

// Sessions provides the session store (ports.SessionStore): Redis when cfg
// names one (KCHAT_REDIS_URL, KCHAT_REDIS_CLUSTER_NODES or
// KCHAT_REDIS_SENTINEL_ADDRS with KCHAT_REDIS_SENTINEL_MASTER; NewSessions
// validates it, so a bad setting stops the start with an error naming its
// variable), with a readiness
// check, else an in-memory store that lives as long as the process (fine
// for one process, such as the all-in-one; every replica of a deployment
// needs Redis).
func Sessions(cfg redis.Config) fx.Option {
	if cfg.Enabled() {
		return fx.Options(
			fx.Provide(fx.Annotate(func(lc fx.Lifecycle) (*redis.Sessions, error) {
				s, err := redis.NewSessions(cfg)
				if err != nil {
					return nil, err
				}
				lc.Append(fx.StopHook(s.Close))
				return s, nil
			}, fx.As(fx.Self()), fx.As(new(ports.SessionStore)))),
			check(func(s *redis.Sessions) httpapi.Check { return httpapi.Check{Name: "redis", Check: s.Ping} }),
		)
	}
	return fx.Provide(fx.Annotate(func(log *slog.Logger) *memory.Sessions {
		log.Warn("none of KCHAT_REDIS_URL, KCHAT_REDIS_CLUSTER_NODES, KCHAT_REDIS_SENTINEL_ADDRS is set: sessions are kept in memory, in this process only")
		return memory.NewSessions(memory.SessionsConfig{MaxTurns: cfg.MaxTurns, TTL: cfg.TTL})
	}, fx.As(new(ports.SessionStore))))
}
