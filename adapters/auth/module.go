package auth

import "go.uber.org/fx"

// Module provides the *Authenticator. It needs a Config.
var Module = fx.Module("auth", fx.Provide(New))
