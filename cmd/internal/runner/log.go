package runner

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// LogConfig configures the process's structured logs.
type LogConfig struct {
	Level  string `env:"KCHAT_LOG_LEVEL" envDefault:"info"`
	Format string `env:"KCHAT_LOG_FORMAT" envDefault:"json"`
}

// NewLogger returns the slog logger of a service, writing to stderr.
func NewLogger(cfg LogConfig, service string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		return nil, fmt.Errorf("KCHAT_LOG_LEVEL must be debug, info, warn or error, got %q", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(cfg.Format) {
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	default:
		return nil, fmt.Errorf("KCHAT_LOG_FORMAT must be json or text, got %q", cfg.Format)
	}
	return slog.New(h).With("service", service), nil
}
