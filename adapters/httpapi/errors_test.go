package httpapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/kchat/kchat/adapters/httpapi"
)

// An unexpected error reaches the client as a bare 500: its text (which
// may name internals) stays in the server. This is configured on each API
// kchat builds, not by replacing huma's process-wide error constructor.
func TestUnexpectedErrorsSayNothing(t *testing.T) {
	s := httpapi.NewServer(httpapi.ServerConfig{Addr: ":0"}, "test", nil, slog.New(slog.DiscardHandler))
	huma.Register(s.API(), huma.Operation{OperationID: "boom", Method: http.MethodGet, Path: "/boom"},
		func(context.Context, *struct{}) (*struct{}, error) {
			return nil, errors.New("dial tcp 10.1.2.3:6379: secret-internal-detail")
		})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	if body := rec.Body.String(); strings.Contains(body, "secret-internal-detail") || strings.Contains(body, "10.1.2.3") {
		t.Fatalf("the 500 leaks the error's text: %s", body)
	}

	// huma's own constructor is left as huma ships it, for every other API
	// in the process.
	se := huma.NewError(http.StatusInternalServerError, "x", errors.New("kept"))
	if em, ok := se.(*huma.ErrorModel); !ok || len(em.Errors) != 1 {
		t.Fatalf("huma.NewError was replaced for the whole process: %#v", se)
	}
}
