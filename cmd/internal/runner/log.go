package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/kchat/kchat/adapters/tracing"
)

// LogConfig configures the process's structured logs.
type LogConfig struct {
	Level string `env:"KCHAT_LOG_LEVEL" envDefault:"info"`
	// Format is json or text; unset, it is text when stderr is a terminal
	// (a person reads it) and json otherwise (a collector does).
	Format string `env:"KCHAT_LOG_FORMAT"`
}

// Text reports whether logs are written as text rather than JSON.
func (c LogConfig) Text() bool {
	if c.Format == "" {
		return term.IsTerminal(int(os.Stderr.Fd()))
	}
	return strings.EqualFold(c.Format, "text")
}

// NewLogger returns the slog logger of a service, writing to stderr. In
// text, the libraries' own chatter (fx's event per constructor with its
// stack, franz-go's per group join) is kept below info: warnings and
// errors still show, and KCHAT_LOG_LEVEL=debug shows everything.
func NewLogger(cfg LogConfig, service string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		return nil, fmt.Errorf("KCHAT_LOG_LEVEL must be debug, info, warn or error, got %q", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch f := strings.ToLower(cfg.Format); {
	case f != "" && f != "json" && f != "text":
		return nil, fmt.Errorf("KCHAT_LOG_FORMAT must be json or text, got %q", cfg.Format)
	case cfg.Text():
		h = slog.NewTextHandler(os.Stderr, opts)
		if level > slog.LevelDebug {
			h = quietLibraries{h, slog.LevelInfo}
		}
	default:
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	// Lines logged inside a span carry its trace_id and span_id.
	return slog.New(tracing.LogHandler(h)).With("service", service), nil
}

// libraries are the components (the "component" attribute) whose info
// lines are for those debugging kchat, not for those running it.
var libraries = map[string]bool{"fx": true, "franz-go": true}

// quietLibraries drops records below warn once a library's component
// attribute is attached; min is the level the rest keep.
type quietLibraries struct {
	slog.Handler
	min slog.Level
}

func (q quietLibraries) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= q.min && q.Handler.Enabled(ctx, l)
}

func (q quietLibraries) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < q.min {
		return nil
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietLibraries) WithAttrs(attrs []slog.Attr) slog.Handler {
	floor := q.min
	for _, a := range attrs {
		if a.Key == "component" && libraries[a.Value.String()] {
			floor = slog.LevelWarn
		}
	}
	return quietLibraries{q.Handler.WithAttrs(attrs), floor}
}

func (q quietLibraries) WithGroup(name string) slog.Handler {
	return quietLibraries{q.Handler.WithGroup(name), q.min}
}
