package main

import (
	"io"

	"github.com/kchat/kchat/cmd/internal/config"
	"github.com/kchat/kchat/cmd/internal/runner"
)

const about = `kchat runs every kchat service in one process: producer :8000, consumer :8001,
gateway (chat page, WebSocket) :8002, answerer :8003. It takes no arguments but -h/--help.
`

// computedDefaults are the defaults the all-in-one works out at startup
// (Config.Validate, useEmbeddedBroker), which env tags cannot say.
var computedDefaults = map[string]string{
	"KCHAT_KAFKA_BROKERS":     "an embedded in-memory broker on 127.0.0.1:9092, or a free port",
	"KCHAT_ANSWER_KEY":        "random per process",
	"KCHAT_RECEIPT_KEY":       "random per process",
	"KCHAT_COOKIE_KEY":        "random per process",
	"KCHAT_ANSWERER_INSTANCE": "kchat",
	"KCHAT_ADMIN_ADDR":        runner.AdminAddrs["kchat"],
}

// usage lists every variable kchat reads, with its default.
func usage(out io.Writer) error {
	vars, err := config.Vars(computedDefaults, &Config{})
	if err != nil {
		return err
	}
	return config.Help(out, about, vars)
}
