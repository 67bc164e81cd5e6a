package profanity

import (
	"go.uber.org/fx"

	"github.com/kchat/kchat/ports"
)

// Module provides the Censor as ports.Censor. It needs a Config.
var Module = fx.Module("profanity",
	fx.Provide(fx.Annotate(New, fx.As(new(ports.Censor)))),
)
