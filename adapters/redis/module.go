package redis

import (
	"go.uber.org/fx"

	"github.com/kchat/kchat/ports"
)

// Module provides the session store, as *Sessions (for readiness: Ping)
// and as ports.SessionStore; its client is closed when the app stops. It
// needs a Config.
var Module = fx.Module("redis",
	fx.Provide(fx.Annotate(newLifecycleSessions, fx.As(fx.Self()), fx.As(new(ports.SessionStore)))),
)

func newLifecycleSessions(lc fx.Lifecycle, cfg Config) (*Sessions, error) {
	s, err := NewSessions(cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(s.Close))
	return s, nil
}
