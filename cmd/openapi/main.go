// Command openapi prints the OpenAPI document of kchat's REST services, the
// producer and the consumer (make openapi writes it to openapi.yaml), or with
// the argument "gateway" the gateway's (openapi-gateway.yaml); CI fails when
// either file is stale.
package main

import (
	"fmt"
	"os"

	"github.com/kchat/kchat/adapters/httpapi"
)

func main() {
	render := httpapi.OpenAPI
	switch args := os.Args[1:]; {
	case len(args) == 1 && args[0] == "gateway":
		render = httpapi.GatewayOpenAPI
	case len(args) > 0:
		fmt.Fprintln(os.Stderr, "usage: openapi [gateway]")
		os.Exit(2)
	}
	spec, err := render()
	if err == nil {
		_, err = os.Stdout.Write(spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
}
