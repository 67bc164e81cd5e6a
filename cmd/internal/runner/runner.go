// Package runner ties long-running loops (Run(ctx) error) and servers to the
// fx lifecycle, and builds the logger every binary shares.
package runner

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"go.uber.org/fx"
)

// Loop is a long-running component: Run blocks until ctx ends or it fails.
type Loop interface {
	Run(ctx context.Context) error
}

// Hook starts l in a goroutine when the app starts and cancels it, waiting
// for it to return, when the app stops. If Run fails while the app runs, the
// app is shut down with a non-zero exit code.
func Hook(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, name string, l Loop) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			wg.Go(func() {
				err := l.Run(ctx)
				if err == nil || errors.Is(err, context.Canceled) || ctx.Err() != nil {
					return
				}
				log.Error("component failed; shutting down", "component", name, "err", err)
				_ = sd.Shutdown(fx.ExitCode(1))
			})
			return nil
		},
		OnStop: func(stopCtx context.Context) error {
			cancel()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
				return nil
			case <-stopCtx.Done():
				return stopCtx.Err()
			}
		},
	})
}
