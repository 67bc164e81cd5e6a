package restclient

import "go.uber.org/fx"

// Module provides the *Publisher. It does not bind ports.QueryPublisher:
// the gateway binary picks this publisher or Kafka's (KCHAT_* config) and
// binds the chosen one. It needs a Config. The handlers are plain
// http.Handlers the binary mounts: SendHandler and MessagesHandler.
var Module = fx.Module("restclient",
	fx.Provide(NewPublisher),
)
