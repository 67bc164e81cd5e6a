// Command openapi prints the OpenAPI document of kchat's REST services
// (make openapi writes it to openapi.yaml; CI fails when that file is stale).
package main

import (
	"fmt"
	"os"

	"github.com/kchat/kchat/adapters/httpapi"
)

func main() {
	spec, err := httpapi.OpenAPI()
	if err == nil {
		_, err = os.Stdout.Write(spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
}
