package rag

import (
	"go.uber.org/fx"

	"github.com/kchat/kchat/ports"
)

// Module provides the knowledge-base index as *Index and as
// ports.Retriever, closed when the app stops. It needs a Config.
var Module = fx.Module("rag",
	fx.Provide(fx.Annotate(newLifecycleIndex, fx.As(fx.Self()), fx.As(new(ports.Retriever)))),
)

func newLifecycleIndex(lc fx.Lifecycle, cfg Config) (*Index, error) {
	ix, err := New(cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(ix.Close))
	return ix, nil
}
