package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/internal/kafkatest"
)

// The gateway's served document describes every route it serves: its huma
// operations and the ones mounted beside them, the seed's POST /send and GET
// /messages and the WebSocket (issue 16, point 11); the committed
// openapi-gateway.yaml is the same document (make openapi-check).
func TestGatewaySpecDescribesEveryRoute(t *testing.T) {
	app := startAllInOne(t, allInOneConfig(t, kafkatest.Fake(t), "", auth.ModeNone))
	resp, err := http.Get(app.base["gateway"] + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&spec); err != nil {
		t.Fatal(err)
	}
	for path, method := range map[string]string{
		"/send": "post", "/messages": "get", "/ws": "get", "/chat": "post",
		"/sessions/{id}/history": "get", "/sessions/{id}": "delete",
	} {
		if _, ok := spec.Paths[path][method]; !ok {
			t.Errorf("the gateway's /openapi.json lacks %s %s", method, path)
		}
	}
}
