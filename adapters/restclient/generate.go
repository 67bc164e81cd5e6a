package restclient

// client.gen.go is generated from the committed spec and committed too; CI
// fails when it drifts (go generate ./adapters/restclient/ && git diff --exit-code adapters/restclient/).
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapi-codegen.yaml ../../openapi.yaml
