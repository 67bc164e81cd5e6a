package ws

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config bounds what one WebSocket connection and one user may do.
type Config struct {
	// AllowedOrigins lists the browser origins allowed to connect
	// (scheme://host:port); empty allows only the gateway's own host.
	AllowedOrigins []string `env:"KCHAT_ALLOWED_ORIGINS" envSeparator:","`
	// MaxFrame is the largest frame a client may send (larger: close 1009).
	MaxFrame int64 `env:"KCHAT_WS_MAX_FRAME" envDefault:"65536"`
	// WriteTimeout drops a client that does not read within it.
	WriteTimeout time.Duration `env:"KCHAT_WS_WRITE_TIMEOUT" envDefault:"10s"`
	// SendQueue is how many frames may wait for a slow client before it
	// is dropped.
	SendQueue int `env:"KCHAT_WS_SEND_QUEUE" envDefault:"64"`
	// PingInterval is how often the server pings; a client silent for two
	// intervals is dropped.
	PingInterval time.Duration `env:"KCHAT_WS_PING_INTERVAL" envDefault:"30s"`
	// ConnRate and ConnBurst limit queries per connection (per second);
	// the per-user limit is the chat use cases' (adapters/ratelimit).
	ConnRate  float64 `env:"KCHAT_WS_RATE" envDefault:"5"`
	ConnBurst int     `env:"KCHAT_WS_BURST" envDefault:"10"`
	// MaxStrikes is how many rate-limited frames in a row close the
	// connection with 1008.
	MaxStrikes int `env:"KCHAT_WS_MAX_STRIKES" envDefault:"20"`
	// MaxConnsPerUser caps a user's open connections.
	MaxConnsPerUser int `env:"KCHAT_WS_MAX_CONNS_PER_USER" envDefault:"20"`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{
		MaxFrame: 64 << 10, WriteTimeout: 10 * time.Second, SendQueue: 64, PingInterval: 30 * time.Second,
		ConnRate: 5, ConnBurst: 10, MaxStrikes: 20, MaxConnsPerUser: 20,
	}
}

// Validate reports the first wrong setting, naming its variable.
func (c Config) Validate() error {
	for _, o := range c.AllowedOrigins {
		// An origin is scheme://host[:port] and nothing else: a path,
		// query or user info could never match a browser's Origin.
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.TrimSuffix(u.Path, "/") != "" {
			return fmt.Errorf("KCHAT_ALLOWED_ORIGINS: %q is not scheme://host[:port]", o)
		}
	}
	switch {
	case c.MaxFrame < 1024 || c.MaxFrame > 16<<20:
		return errors.New("KCHAT_WS_MAX_FRAME must be between 1024 and 16777216")
	case c.WriteTimeout < 100*time.Millisecond:
		return errors.New("KCHAT_WS_WRITE_TIMEOUT must be at least 100ms")
	case c.SendQueue < 1:
		return errors.New("KCHAT_WS_SEND_QUEUE must be at least 1")
	case c.PingInterval < time.Second:
		return errors.New("KCHAT_WS_PING_INTERVAL must be at least 1s")
	case c.ConnRate <= 0 || c.ConnBurst < 1:
		return errors.New("KCHAT_WS_RATE must be positive and KCHAT_WS_BURST at least 1")
	case c.MaxStrikes < 1:
		return errors.New("KCHAT_WS_MAX_STRIKES must be at least 1")
	case c.MaxConnsPerUser < 1:
		return errors.New("KCHAT_WS_MAX_CONNS_PER_USER must be at least 1")
	}
	return nil
}
